"""Tests of the catalog, one module per concept; shared sample documents."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors import Document

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def doc(n: int, text_: str = "body", source: str = "news", published: datetime | None = T0) -> Document:
    return Document(
        source=source,
        external_id=f"guid-{n}",
        text=f"{text_} {n}",
        title=f"Title {n}",
        url=f"https://example.com/{n}",
        published_at=published,
        entry_hash=f"entry-{n}",
    )

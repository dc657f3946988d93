"""How a document row looks to the code: the statuses that belong in the index, a claimed row, a new row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors import Document
from indexing.schema import documents

# Statuses of documents that belong in the index (with deleted_at unset): quarantined and deleted ones do not.
LIVE_STATUSES = ("indexed", "pending", "failed")


@dataclass(frozen=True)
class DocRow:
    """A claimed document, as the indexer needs it."""

    id: str
    source: str
    url: str | None
    title: str
    text: str
    published_at: datetime | None
    published_estimated: bool
    language: str | None
    version: int
    attempts: int
    deleted: bool = False  # gone from the source: the indexer removes its points
    story_id: str | None = None  # the syndicated story (indexing.story_fingerprints); None before it is assigned
    story: tuple[tuple[str, str | None], ...] = ()  # every live member of the story as (source, url), earliest first


_DOC_ROW_COLUMNS = (
    documents.c.id,
    documents.c.source,
    documents.c.url,
    documents.c.title,
    documents.c.text,
    documents.c.published_at,
    documents.c.published_estimated,
    documents.c.language,
    documents.c.version,
    documents.c.attempts,
    (documents.c.deleted_at.is_not(None)).label("deleted"),
    documents.c.story_id,
)


def _document_row(doc: Document, now: datetime, *, first_seen: bool) -> dict[str, Any]:
    """The columns a pulled document sets: pending again, its failures and deletion forgotten."""
    row = {
        "source": doc.source,
        "external_id": doc.external_id,
        "url": doc.url,
        "title": doc.title or "",
        "author": doc.author,
        "language": doc.language,
        "published_at": doc.published_at or now,
        "published_estimated": doc.published_at is None,
        "text": doc.text,
        "content_hash": doc.content_hash,
        "entry_hash": doc.entry_hash,
        "extraction": doc.extraction,
        "extraction_note": doc.extraction_note,
        "meta": doc.metadata,
        "status": "pending",
        "updated_at": now,
        "attempts": 0,
        "next_attempt_at": None,
        "last_error": None,
        "deleted_at": None,
    }
    if first_seen:
        row.update(id=doc.id, first_seen_at=now, version=1)
    return row

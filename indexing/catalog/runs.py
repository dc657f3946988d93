"""The refresh run log and what the catalog reports about itself: freshness lags and status."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from indexing.catalog.engine import CatalogEngine
from indexing.schema import documents, failures, refresh_runs, source_state


class Runs(CatalogEngine):
    """One row per refresh run, and the read-only views the dashboard and the CLI show."""

    def record_refresh(self, started_at: datetime, finished_at: datetime, summary: dict[str, Any]) -> None:
        with self._write() as conn:
            conn.execute(refresh_runs.insert().values(started_at=started_at, finished_at=finished_at, summary=summary))

    def last_refresh(self) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(select(refresh_runs).order_by(refresh_runs.c.id.desc()).limit(1)).first()
        return dict(row._mapping) if row else None

    def freshness_lags(self, since: datetime, limit: int = 10_000) -> list[float]:
        """Seconds from publication to indexing for documents indexed since ``since`` (dated ones only)."""
        with self._read() as conn:
            rows = conn.execute(
                select(documents.c.published_at, documents.c.indexed_at)
                .where(
                    documents.c.indexed_at >= since,
                    documents.c.published_estimated.is_(False),
                    documents.c.published_at.is_not(None),
                    documents.c.status == "indexed",
                )
                .order_by(documents.c.indexed_at.desc())
                .limit(limit)
            ).all()
        return [max(0.0, (r.indexed_at - r.published_at).total_seconds()) for r in rows]

    def status(self) -> dict[str, Any]:
        """Counts per source and status, source health, and open failures (newest first)."""
        with self._read() as conn:
            counts = conn.execute(
                select(documents.c.source, documents.c.status, func.count()).group_by(
                    documents.c.source, documents.c.status
                )
            ).all()
            states = conn.execute(select(source_state)).all()
            open_failures = conn.execute(
                select(failures).where(failures.c.resolved_at.is_(None)).order_by(failures.c.last_at.desc()).limit(50)
            ).all()
            quarantined = conn.execute(
                select(documents.c.source, documents.c.external_id, documents.c.last_error)
                .where(documents.c.status == "quarantined")
                .order_by(documents.c.updated_at.desc())
                .limit(50)
            ).all()
        per_source: dict[str, Counter] = {}
        for source, status, n in counts:
            per_source.setdefault(source, Counter())[status] = n
        return {
            "documents": {s: dict(c) for s, c in sorted(per_source.items())},
            "sources": [dict(r._mapping) for r in states],
            "failures": [dict(r._mapping) for r in open_failures],
            "quarantined": [dict(r._mapping) for r in quarantined],
        }

"""Failures of sources and article pages: recorded with their reason and retry time, resolved when they pass."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from errors.redact import mask_text
from indexing.catalog.engine import CatalogEngine, _chunks, now_utc
from indexing.schema import failures

SOURCE_ITEM = "(source)"  # the failure item of a source failing as a whole (a feed, a database)


class Failures(CatalogEngine):
    """The failures table: one open row per (source, item, stage), its attempts counted."""

    def _record_failure(
        self,
        conn: Connection,
        source: str,
        item: str,
        stage: str,
        reason: str,
        now: datetime,
        next_retry_at: datetime | None,
    ) -> None:
        insert = self._insert()
        stmt = insert(failures).values(
            source=source,
            item=item,
            stage=stage,
            reason=mask_text(reason)[:2000],
            attempts=1,
            first_at=now,
            last_at=now,
            next_retry_at=next_retry_at,
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["source", "item", "stage"],
                set_={
                    "reason": stmt.excluded.reason,
                    "last_at": now,
                    "next_retry_at": next_retry_at,
                    "attempts": failures.c.attempts + 1,
                    "resolved_at": None,
                },
            )
        )

    def record_article_failures(
        self, source: str, items: Iterable[tuple[str, str]], now: datetime | None = None, *, max_attempts: int = 4
    ) -> None:
        """Remember (doc id, reason) pairs whose page failed; retried at 5, 20, 80 minutes, then given up."""
        now = now or now_utc()
        with self._write() as conn:
            for doc_id, reason in items:
                attempts = (
                    conn.execute(
                        select(failures.c.attempts).where(
                            failures.c.source == source, failures.c.item == doc_id, failures.c.stage == "article"
                        )
                    ).scalar()
                    or 0
                )
                retry = now + timedelta(minutes=5 * 4**attempts) if attempts + 1 < max_attempts else None
                self._record_failure(conn, source, doc_id, "article", reason, now, retry)

    def resolve_failures(self, source: str, items: Sequence[str], stage: str, now: datetime | None = None) -> None:
        now = now or now_utc()
        with self._write() as conn:
            for chunk in _chunks(list(items)):
                conn.execute(
                    update(failures)
                    .where(
                        failures.c.source == source,
                        failures.c.stage == stage,
                        failures.c.item.in_(chunk),
                        failures.c.resolved_at.is_(None),
                    )
                    .values(resolved_at=now)
                )

"""Per-source state: the cursor, when a failing source may be tried again, and its failure streak."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from errors.redact import mask_text
from indexing.catalog.engine import now_utc
from indexing.catalog.failures import SOURCE_ITEM, Failures
from indexing.schema import documents, failures, source_state

MAX_SOURCE_WAIT = timedelta(hours=1)  # the longest a failing source is left alone, whatever a server asks


def backoff(attempts: int, *, base: float = 60.0, cap: float = MAX_SOURCE_WAIT.total_seconds()) -> timedelta:
    """Wait before retry number ``attempts`` (1-based): 1, 2, 4 ... minutes, at most an hour."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


class Sources(Failures):
    """The source_state table: one row per source, moved only after the work before it is committed."""

    def source_names(self) -> set[str]:
        """Every source the catalog holds documents or state for (what a search may name)."""
        with self._read() as conn:
            held = conn.execute(select(documents.c.source).distinct()).scalars().all()
            known = conn.execute(select(source_state.c.source)).scalars().all()
        return set(held) | set(known)

    def source_cursor(self, source: str) -> dict[str, Any] | None:
        with self._read() as conn:
            return conn.execute(select(source_state.c.cursor).where(source_state.c.source == source)).scalar()

    def save_cursor(self, source: str, kind: str, cursor: dict[str, Any]) -> None:
        """Move a source's cursor: called only after the rows before it are committed."""
        with self._write() as conn:
            self._upsert_source(conn, source, kind, {"cursor": cursor})

    def source_due(self, source: str, now: datetime | None = None) -> datetime | None:
        """When a failing source may be tried again, or None when it may be tried now."""
        now = now or now_utc()
        with self._read() as conn:
            when = conn.execute(select(source_state.c.next_attempt_at).where(source_state.c.source == source)).scalar()
        return when if when and when > now else None

    def failure_streaks(self, sources: Sequence[str] | None = None) -> dict[str, int]:
        """Each known source's count of consecutive failed pulls (0 once it succeeds); all sources when None."""
        query = select(source_state.c.source, source_state.c.consecutive_failures)
        if sources is not None:
            query = query.where(source_state.c.source.in_(list(sources)))
        with self._read() as conn:
            return {source: streak for source, streak in conn.execute(query)}

    def _upsert_source(self, conn: Connection, source: str, kind: str, values: dict[str, Any]) -> None:
        insert = self._insert()
        stmt = insert(source_state).values(
            {"source": source, "kind": kind, "cursor": {}, "consecutive_failures": 0, **values}
        )
        conn.execute(stmt.on_conflict_do_update(index_elements=["source"], set_=values))

    def record_source_success(
        self,
        source: str,
        kind: str,
        cursor: dict[str, Any] | None,
        now: datetime | None = None,
        warning: str | None = None,
    ) -> None:
        now = now or now_utc()
        values: dict[str, Any] = {
            "last_attempt_at": now,
            "last_success_at": now,
            "last_error": None,
            "consecutive_failures": 0,
            "next_attempt_at": None,
            "warning": warning,
        }
        if cursor is not None:
            values["cursor"] = cursor
        with self._write() as conn:
            self._upsert_source(conn, source, kind, values)
            conn.execute(
                update(failures)
                .where(failures.c.source == source, failures.c.item == SOURCE_ITEM, failures.c.resolved_at.is_(None))
                .values(resolved_at=now)
            )

    def record_source_failure(
        self, source: str, kind: str, reason: str, now: datetime | None = None, retry_after: float | None = None
    ) -> datetime:
        """Record that a source failed as a whole; returns when it will be tried again."""
        now = now or now_utc()
        with self._write() as conn:
            previous = (
                conn.execute(
                    select(source_state.c.consecutive_failures).where(source_state.c.source == source)
                ).scalar()
                or 0
            )
            failures_now = previous + 1
            wait = backoff(failures_now) if failures_now > 1 else timedelta(0)
            if retry_after and retry_after > 0:
                # A server's Retry-After is a wish, not an order: never park a source for longer than the cap.
                wait = max(wait, timedelta(seconds=min(float(retry_after), MAX_SOURCE_WAIT.total_seconds())))
            next_at = now + wait
            self._upsert_source(
                conn,
                source,
                kind,
                {
                    "last_attempt_at": now,
                    "last_error": mask_text(reason)[:2000],
                    "consecutive_failures": failures_now,
                    "next_attempt_at": next_at,
                },
            )
            self._record_failure(conn, source, SOURCE_ITEM, "fetch", reason, now, next_at)
        return next_at

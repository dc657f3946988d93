"""Leases on pending documents: concurrent indexers claim disjoint work, and a dead process's claims are freed."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, case, or_, select, update

from indexing.catalog.engine import _chunks, now_utc
from indexing.catalog.rows import _DOC_ROW_COLUMNS, DocRow
from indexing.catalog.sources import backoff
from indexing.catalog.story_assignment import Stories
from indexing.schema import documents

logger = logging.getLogger(__name__)

_LEASE = timedelta(minutes=15)


def lease_owner() -> str:
    """Who holds a lease: this host and process, so a dead process's leases can be taken over."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_dead(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Leases(Stories):
    """The indexer's side of the documents table: claim, then mark indexed, failed or quarantined."""

    def claim_pending(
        self, owner: str, limit: int, now: datetime | None = None, *, lease: timedelta = _LEASE
    ) -> list[DocRow]:
        """Lease up to ``limit`` documents that need indexing; concurrent runs never get the same one."""
        now = now or now_utc()
        self._reap_dead_leases(now)
        until = now + lease
        free = or_(documents.c.lease_until.is_(None), documents.c.lease_until < now)
        due = or_(
            documents.c.status == "pending",
            and_(documents.c.status == "failed", documents.c.next_attempt_at <= now),
        )
        with self._write() as conn:
            candidates = (
                select(documents.c.id)
                .where(due, free)
                .order_by(documents.c.updated_at, documents.c.id)
                .limit(limit)
                .scalar_subquery()
            )
            conn.execute(
                update(documents)
                .where(documents.c.id.in_(candidates), free)
                .values(lease_owner=owner, lease_until=until)
            )
            rows = conn.execute(
                select(*_DOC_ROW_COLUMNS).where(documents.c.lease_owner == owner, documents.c.lease_until == until, due)
            ).all()
        return self._with_stories([DocRow(**r._mapping) for r in rows])

    def _reap_dead_leases(self, now: datetime) -> None:
        with self._read() as conn:
            owners = (
                conn.execute(select(documents.c.lease_owner).where(documents.c.lease_until > now).distinct())
                .scalars()
                .all()
            )
        dead = [o for o in owners if o and _owner_is_dead(o)]
        if dead:
            with self._write() as conn:
                conn.execute(
                    update(documents)
                    .where(documents.c.lease_owner.in_(dead))
                    .values(lease_owner=None, lease_until=None)
                )
            logger.info("took over leases of %d dead process(es)", len(dead))

    def mark_indexed(self, owner: str, done: Iterable[tuple[str, int, int]], now: datetime | None = None) -> int:
        """Mark (id, version, chunk_count) indexed (or deleted, when it is gone from its source).

        A document changed meanwhile stays pending for the next run.
        """
        now = now or now_utc()
        marked = 0
        with self._write() as conn:
            for doc_id, version, chunk_count in done:
                result = conn.execute(
                    update(documents)
                    .where(documents.c.id == doc_id, documents.c.version == version, documents.c.lease_owner == owner)
                    .values(
                        status=case((documents.c.deleted_at.is_(None), "indexed"), else_="deleted"),
                        indexed_at=now,
                        # first searchable: now, unless this content was already (a reindex, a story's new payload)
                        searchable_at=case(
                            (
                                and_(
                                    documents.c.searchable_at.is_not(None),
                                    documents.c.updated_at <= documents.c.searchable_at,
                                ),
                                documents.c.searchable_at,
                            ),
                            else_=now,
                        ),
                        indexed_version=version,
                        chunk_count=chunk_count,
                        attempts=0,
                        next_attempt_at=None,
                        last_error=None,
                        lease_owner=None,
                        lease_until=None,
                    )
                )
                marked += result.rowcount
            self._release(conn, owner, [d[0] for d in done])
        return marked

    def mark_failed(self, owner: str, ids: Sequence[str], reason: str, now: datetime | None = None) -> None:
        """Indexing failed: retry later with backoff, keeping the reason."""
        now = now or now_utc()
        with self._write() as conn:
            for doc_id in ids:
                attempts = conn.execute(select(documents.c.attempts).where(documents.c.id == doc_id)).scalar() or 0
                conn.execute(
                    update(documents)
                    .where(documents.c.id == doc_id, documents.c.lease_owner == owner)
                    .values(
                        status="failed",
                        attempts=attempts + 1,
                        last_error=reason[:2000],
                        next_attempt_at=now + backoff(attempts + 1),
                        lease_owner=None,
                        lease_until=None,
                    )
                )

    def quarantine_claimed(self, owner: str, reasons: Mapping[str, Sequence[str]], now: datetime | None = None) -> None:
        """Claimed documents that failed the data checks: quarantined with the failed checks as reason.

        An earlier indexed version keeps its points until a version that passes replaces them.
        """
        now = now or now_utc()
        with self._write() as conn:
            for doc_id, failed in reasons.items():
                conn.execute(
                    update(documents)
                    .where(documents.c.id == doc_id, documents.c.lease_owner == owner)
                    .values(
                        status="quarantined",
                        last_error="failed checks: " + "; ".join(failed),
                        updated_at=now,
                        lease_owner=None,
                        lease_until=None,
                    )
                )
            self._assign_stories(conn, list(reasons), touched=True)  # out of the index, out of its story

    @staticmethod
    def _release(conn: Connection, owner: str, ids: Sequence[str]) -> None:
        for chunk in _chunks(list(ids)):
            conn.execute(
                update(documents)
                .where(documents.c.id.in_(chunk), documents.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

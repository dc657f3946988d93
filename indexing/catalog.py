"""The catalog: SQL state of every document, source cursor, failure and refresh run.

SQLite under the data directory by default, PostgreSQL by URL. A document is committed here
before it is indexed, and marked indexed only after its points are written: the catalog is
the to-do list that survives crashes.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock
from sqlalchemy import Connection, Engine, and_, case, create_engine, event, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

from connectors import Document, ItemFailure, document_id
from errors import ConfigError
from errors.redact import mask_url
from indexing.schema import documents, failures, refresh_runs, source_state

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).with_name("migrations")
_IN_CHUNK = 500  # ids per IN (...) clause
_LEASE = timedelta(minutes=15)
SOURCE_ITEM = "(source)"  # the failure item of a source failing as a whole (a feed, a database)


def now_utc() -> datetime:
    return datetime.now(UTC)


def backoff(attempts: int, *, base: float = 60.0, cap: float = 3600.0) -> timedelta:
    """Wait before retry number ``attempts`` (1-based): 1, 2, 4 ... minutes, at most an hour."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
)


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


class Catalog:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ConfigError(f"catalog URL {mask_url(url)} is not usable ({exc}); check KUP_CATALOG_URL") from exc
        self.dialect = self.engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigError(f"catalog must be SQLite or PostgreSQL, not {self.dialect}; check KUP_CATALOG_URL")
        if self.dialect == "sqlite":
            self._tune_sqlite()
        try:
            self._migrate()
        except OperationalError as exc:
            raise ConfigError(f"cannot open the catalog at {mask_url(url)}: {exc.orig}; check KUP_CATALOG_URL") from exc

    # -- plumbing -----------------------------------------------------------------------------

    def _tune_sqlite(self) -> None:
        database = self.engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(connection) -> None:
            # A write transaction takes the write lock up front, so two processes never
            # deadlock upgrading a read lock (SQLite would fail one of them at once).
            connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.info.get("write") else "BEGIN")

    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(
                conn, opts={"version_table": "kup_schema_version"}
            ).get_current_revision()
        if current == head:
            return
        database = self.engine.url.database
        lock = FileLock(f"{database}.migrate.lock") if self.dialect == "sqlite" and database else None
        with lock or _null(), self._write() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(72707)")  # one migrator at a time
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        logger.info("catalog schema migrated %s -> %s", current, head)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.info["write"] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("write", None)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _insert(self):
        return (sqlite if self.dialect == "sqlite" else postgresql).insert

    def close(self) -> None:
        self.engine.dispose()

    # -- documents ----------------------------------------------------------------------------

    def known_entries(self, source: str, external_ids: list[str], now: datetime | None = None) -> dict[str, str]:
        """Entry fingerprints of settled documents, so unchanged feed items are not fetched again.

        A document whose article could not be fetched is left out while a retry is due, so the
        next pull tries its page again (with backoff, a few times).
        """
        now = now or now_utc()
        ids = {document_id(source, x): x for x in external_ids}
        found: dict[str, str] = {}
        with self._read() as conn:
            for chunk in _chunks(list(ids)):
                rows = conn.execute(
                    select(documents.c.id, documents.c.entry_hash).where(documents.c.id.in_(chunk))
                ).all()
                retry = set(
                    conn.execute(
                        select(failures.c.item).where(
                            failures.c.source == source,
                            failures.c.stage == "article",
                            failures.c.item.in_(chunk),
                            failures.c.resolved_at.is_(None),
                            failures.c.next_retry_at <= now,
                        )
                    ).scalars()
                )
                found.update({ids[r.id]: r.entry_hash for r in rows if r.entry_hash and r.id not in retry})
        return found

    def upsert_documents(self, docs: Iterable[Document], now: datetime | None = None) -> dict[str, str]:
        """Commit pulled documents; returns each id's outcome: ``new``, ``updated`` or ``unchanged``.

        New and changed documents become ``pending`` (the indexer's to-do list); an unchanged one
        only has its entry fingerprint refreshed.
        """
        now = now or now_utc()
        by_id = {d.id: d for d in docs}  # the last of repeated ids wins
        outcomes: dict[str, str] = {}
        insert = self._insert()
        with self._write() as conn:
            for chunk in _chunks(list(by_id)):
                existing = {
                    r.id: r
                    for r in conn.execute(
                        select(
                            documents.c.id,
                            documents.c.content_hash,
                            documents.c.entry_hash,
                            documents.c.status,
                            documents.c.published_at,
                            documents.c.published_estimated,
                            documents.c.deleted_at,
                        ).where(documents.c.id.in_(chunk))
                    )
                }
                new_rows = []
                for doc_id in chunk:
                    doc = by_id[doc_id]
                    old = existing.get(doc_id)
                    if old is None:
                        new_rows.append(_document_row(doc, now, first_seen=True))
                        outcomes[doc_id] = "new"
                    elif (
                        old.content_hash == doc.content_hash
                        and old.status not in ("quarantined", "deleted")
                        and old.deleted_at is None  # back at its source before the indexer removed it
                    ):
                        outcomes[doc_id] = "unchanged"
                        if old.entry_hash != doc.entry_hash:
                            conn.execute(
                                update(documents).where(documents.c.id == doc_id).values(entry_hash=doc.entry_hash)
                            )
                    else:
                        row = _document_row(doc, now, first_seen=False)
                        if doc.published_at is None and old.published_at is not None:
                            row["published_at"] = old.published_at  # keep the first-seen estimate
                        conn.execute(
                            update(documents)
                            .where(documents.c.id == doc_id)
                            .values(**row, version=documents.c.version + 1)
                        )
                        outcomes[doc_id] = "updated"
                if new_rows:
                    # Another run may insert the same new document meanwhile: first one wins.
                    conn.execute(insert(documents).on_conflict_do_nothing(index_elements=["id"]), new_rows)
        return outcomes

    def quarantine(self, source: str, items: Iterable[ItemFailure], now: datetime | None = None) -> int:
        """Record entries that cannot become documents, with their reason; returns how many."""
        now = now or now_utc()
        count = 0
        for item in items:
            doc = Document(source=source, external_id=item.external_id, text="", title=item.title, url=item.url)
            row = _document_row(doc, now, first_seen=True)
            row.update(status="quarantined", last_error=item.reason)
            insert = self._insert()
            with self._write() as conn:
                stmt = insert(documents).values(**row)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=["id"],
                        set_={"status": "quarantined", "last_error": item.reason, "updated_at": now},
                        where=documents.c.status != "indexed",  # a good earlier version stays searchable
                    )
                )
            count += 1
        return count

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
        return [DocRow(**r._mapping) for r in rows]

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

    def release(self, owner: str, ids: Sequence[str]) -> None:
        with self._write() as conn:
            self._release(conn, owner, ids)

    @staticmethod
    def _release(conn: Connection, owner: str, ids: Sequence[str]) -> None:
        for chunk in _chunks(list(ids)):
            conn.execute(
                update(documents)
                .where(documents.c.id.in_(chunk), documents.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    def mark_deleted(self, source: str, external_ids: Iterable[str], now: datetime | None = None) -> int:
        """Documents gone from their source: queued for removal from the index (the row stays)."""
        now = now or now_utc()
        ids = [document_id(source, x) for x in external_ids]
        marked = 0
        with self._write() as conn:
            for chunk in _chunks(ids):
                result = conn.execute(
                    update(documents)
                    .where(documents.c.id.in_(chunk), documents.c.deleted_at.is_(None))
                    .values(
                        deleted_at=now,
                        status="pending",
                        version=documents.c.version + 1,
                        updated_at=now,
                        attempts=0,
                        next_attempt_at=None,
                    )
                )
                marked += result.rowcount
        return marked

    def live_rows(self, batch_size: int = 256) -> Iterator[list[DocRow]]:
        """Every document that belongs in the index (not deleted, not quarantined), in id order, batch by batch."""
        after = ""
        live = documents.c.status.in_(("indexed", "pending", "failed"))
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    select(*_DOC_ROW_COLUMNS)
                    .where(live, documents.c.deleted_at.is_(None), documents.c.id > after)
                    .order_by(documents.c.id)
                    .limit(batch_size)
                ).all()
            if not rows:
                return
            yield [DocRow(**r._mapping) for r in rows]
            after = rows[-1].id

    def documents_in_window(self, source: str, since: datetime, until: datetime | None = None) -> list[Document]:
        """A source's live documents published in ``[since, until)``, as Documents (for a backfill)."""
        query = select(documents).where(
            documents.c.source == source,
            documents.c.deleted_at.is_(None),
            documents.c.status != "quarantined",
            documents.c.published_at >= since,
        )
        if until is not None:
            query = query.where(documents.c.published_at < until)
        with self._read() as conn:
            rows = conn.execute(query.order_by(documents.c.published_at)).all()
        return [
            Document(
                source=r.source,
                external_id=r.external_id,
                text=r.text,
                title=r.title,
                url=r.url,
                published_at=None if r.published_estimated else r.published_at,
                author=r.author,
                language=r.language,
                extraction=r.extraction,
                extraction_note=r.extraction_note,
                entry_hash=r.entry_hash,
                metadata=r.meta or {},
            )
            for r in rows
        ]

    def requeue(self, ids: Sequence[str] | None = None, *, changed_since: datetime | None = None) -> int:
        """Send documents back to the indexer (it rewrites only what differs from the store).

        ``changed_since`` picks every document updated or indexed since then, deletions included:
        after a rebuild, this catches what changed while the new index was being built.
        """
        query = update(documents).values(status="pending", next_attempt_at=None)
        settled = documents.c.status.in_(("indexed", "failed", "deleted"))
        count = 0
        with self._write() as conn:
            if changed_since is not None:
                count += conn.execute(
                    query.where(
                        settled, or_(documents.c.updated_at >= changed_since, documents.c.indexed_at >= changed_since)
                    )
                ).rowcount
            for chunk in _chunks(list(ids or [])):
                count += conn.execute(query.where(settled, documents.c.id.in_(chunk))).rowcount
        return count

    def training_documents(
        self, *, after: datetime | None = None, before: datetime | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Indexed documents changed after/before a time, newest first, for fine-tuning."""
        query = select(
            documents.c.id, documents.c.title, documents.c.text, documents.c.published_at, documents.c.updated_at
        ).where(documents.c.status == "indexed", documents.c.deleted_at.is_(None))
        if after is not None:
            query = query.where(documents.c.updated_at > after)
        if before is not None:
            query = query.where(documents.c.updated_at <= before)
        with self._read() as conn:
            rows = conn.execute(query.order_by(documents.c.updated_at.desc(), documents.c.id).limit(limit)).all()
        return [dict(r._mapping) for r in rows]

    def live_external_ids(self, source: str) -> Iterator[str]:
        """External ids of a source's documents that are not deleted, streamed."""
        with self._read() as conn:
            result = conn.execution_options(yield_per=10_000).execute(
                select(documents.c.external_id).where(documents.c.source == source, documents.c.deleted_at.is_(None))
            )
            yield from result.scalars()

    def document(self, doc_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            row = conn.execute(select(documents).where(documents.c.id == doc_id)).first()
        return dict(row._mapping) if row else None

    def count(self, *, status: str | None = None, source: str | None = None) -> int:
        query = select(func.count()).select_from(documents)
        if status:
            query = query.where(documents.c.status == status)
        if source:
            query = query.where(documents.c.source == source)
        with self._read() as conn:
            return conn.execute(query).scalar_one()

    # -- sources ------------------------------------------------------------------------------

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
            if retry_after:
                wait = max(wait, timedelta(seconds=retry_after))
            next_at = now + wait
            self._upsert_source(
                conn,
                source,
                kind,
                {
                    "last_attempt_at": now,
                    "last_error": reason[:2000],
                    "consecutive_failures": failures_now,
                    "next_attempt_at": next_at,
                },
            )
            self._record_failure(conn, source, SOURCE_ITEM, "fetch", reason, now, next_at)
        return next_at

    # -- failures -----------------------------------------------------------------------------

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
            reason=reason[:2000],
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

    # -- runs and status ----------------------------------------------------------------------

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


@contextmanager
def _null() -> Iterator[None]:
    yield


def _document_row(doc: Document, now: datetime, *, first_seen: bool) -> dict[str, Any]:
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

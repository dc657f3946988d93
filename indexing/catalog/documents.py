"""The documents table as content: pulled documents committed, quarantined, deleted, requeued and read back."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update

from connectors import Document, ItemFailure, document_id
from indexing.catalog.engine import _chunks, now_utc
from indexing.catalog.rows import _DOC_ROW_COLUMNS, LIVE_STATUSES, DocRow, _document_row
from indexing.catalog.story_assignment import Stories
from indexing.schema import documents, failures


class Documents(Stories):
    """What the pulls write and the indexer, the backfill, the reindex and training read."""

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

        New and changed documents become ``pending`` (the indexer's to-do list) and are assigned to
        their syndicated story; an unchanged one only has its entry fingerprint refreshed.
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
            self._assign_stories(conn, [i for i, outcome in outcomes.items() if outcome != "unchanged"], touched=True)
        return outcomes

    def quarantine(self, source: str, items: Iterable[ItemFailure], now: datetime | None = None) -> int:
        """Record entries that cannot become documents, with their reason; returns how many."""
        now = now or now_utc()
        insert = self._insert()
        count = 0
        for item in items:
            doc = Document(source=source, external_id=item.external_id, text="", title=item.title, url=item.url)
            row = _document_row(doc, now, first_seen=True)
            row.update(status="quarantined", last_error=item.reason)
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
            self._assign_stories(conn, ids, touched=True)  # gone documents leave their stories
        return marked

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

    def live_rows(self, batch_size: int = 256) -> Iterator[list[DocRow]]:
        """Every document that belongs in the index (not deleted, not quarantined), in id order, batch by batch."""
        after = ""
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    select(*_DOC_ROW_COLUMNS)
                    .where(_live(), documents.c.id > after)
                    .order_by(documents.c.id)
                    .limit(batch_size)
                ).all()
            if not rows:
                return
            yield self._with_stories([DocRow(**r._mapping) for r in rows])
            after = rows[-1].id

    def count_live(self) -> int:
        """How many documents belong in the index: the ones ``live_rows`` yields."""
        with self._read() as conn:
            return conn.execute(select(func.count()).select_from(documents).where(_live())).scalar_one()

    def documents_in_window(self, source: str, since: datetime, until: datetime | None = None) -> list[Document]:
        """A source's live documents published in ``[since, until)``, as Documents (for a backfill)."""
        query = select(documents).where(documents.c.source == source, _live(), documents.c.published_at >= since)
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


def _live():
    """Rows that belong in the index: a live status and not gone from the source."""
    return documents.c.status.in_(LIVE_STATUSES) & documents.c.deleted_at.is_(None)

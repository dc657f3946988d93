"""Syndicated stories in the catalog: band keys stored per document, candidates found in SQL, story ids kept.

A document joins the story of its best confirmed match (``indexing.story_fingerprints.same_story``); a
story is named after its earliest member (published time, then id). When a story gains or loses
a member, its other members go back to the indexer (a payload-only rewrite there) so that every
point of the story lists all of its outlets.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from indexing.catalog.engine import CatalogEngine, _chunks
from indexing.catalog.rows import LIVE_STATUSES, DocRow
from indexing.schema import documents, story_bands
from indexing.story_fingerprints import BANDS, WINDOW, Fingerprint, fingerprint, same_story

logger = logging.getLogger(__name__)

# Out of the time window, only a near-identical document is a candidate: it shares most bands
# (at Jaccard 0.8 a band matches with probability 0.64, 41 of 64 expected).
_NEAR_IDENTICAL_BANDS = BANDS * 2 // 5


# Database rows are not syndicated news: no outlet re-publishes a ticket. Fingerprinting them would only
# cost time (far more per row than the SQL sync itself spends on one).
_NOT_SYNDICATED = ("row",)


@lru_cache(maxsize=256)
def _confirming(text: str) -> Fingerprint:
    """A candidate's fingerprint for confirming a match (no band keys), kept for the next copy of its story: a
    story of N copies would otherwise shingle its members N^2 / 2 times as they arrive."""
    return fingerprint(text, bands=False)


def _live():
    return documents.c.status.in_(LIVE_STATUSES) & documents.c.deleted_at.is_(None)


class Stories(CatalogEngine):
    """Assigns documents to syndicated stories and tells the indexer every outlet of a story."""

    def assign_stories(self, ids: Sequence[str] | None = None) -> int:
        """(Re)assign the given documents, or every live document without a story; returns how many.

        Documents are taken in publication order, as they would have arrived. Re-running changes nothing.
        """
        with self._write() as conn:
            if ids is None:
                unassigned = select(documents.c.id).where(_live(), documents.c.story_id.is_(None))
                ids = list(conn.execute(unassigned).scalars())
            return self._assign_stories(conn, ids)

    def story_members(self, story_ids: Iterable[str]) -> dict[str, list[tuple[str, str | None]]]:
        """Each story's live members as (source, url), earliest first."""
        with self._read() as conn:
            return _members(conn, story_ids)

    def _with_stories(self, rows: list[DocRow]) -> list[DocRow]:
        """Claimed rows with their story's outlets; a row from before stories existed is assigned first."""
        missing = [r.id for r in rows if r.story_id is None and not r.deleted]
        if missing:
            with self._write() as conn:
                self._assign_stories(conn, missing)
                story_of = dict(
                    conn.execute(select(documents.c.id, documents.c.story_id).where(documents.c.id.in_(missing))).all()
                )
            rows = [replace(r, story_id=story_of.get(r.id, r.story_id)) for r in rows]
        members = self.story_members({r.story_id for r in rows if r.story_id})
        return [replace(r, story=tuple(members.get(r.story_id, ()))) if r.story_id else r for r in rows]

    def _assign_stories(self, conn: Connection, ids: Sequence[str], *, touched: bool = False) -> int:
        """Assign documents in publication order; ``touched``: their text or URL may have changed."""
        rows = []
        for chunk in _chunks(list(dict.fromkeys(ids))):
            rows.extend(
                conn.execute(
                    select(documents.c.id, documents.c.published_at).where(
                        documents.c.id.in_(chunk), documents.c.extraction.not_in(_NOT_SYNDICATED)
                    )
                ).all()
            )
        rows.sort(key=lambda r: (r.published_at is not None, r.published_at and r.published_at.timestamp(), r.id))
        for row in rows:
            self._assign_one(conn, row.id, touched=touched)
        return len(rows)

    def _assign_one(self, conn: Connection, doc_id: str, *, touched: bool, follow: bool = True) -> None:
        """Put one document in the story of its best confirmed match, preferring the story it is in.

        ``follow``: a confirmed match left in another story is assigned again too, so that the
        outcome does not depend on which of two copies arrived first (re-running changes nothing).
        """
        doc = conn.execute(
            select(documents.c.text, documents.c.published_at, documents.c.story_id, _live().label("live")).where(
                documents.c.id == doc_id
            )
        ).one()
        old = doc.story_id
        conn.execute(delete(story_bands).where(story_bands.c.doc_id == doc_id))
        if not doc.live:
            if old is not None:
                conn.execute(update(documents).where(documents.c.id == doc_id).values(story_id=None))
                self._settle(conn, old, exclude=doc_id, requeue=True)  # the story loses this outlet
            return
        mark = fingerprint(doc.text)
        if mark.band_keys:
            conn.execute(
                insert(story_bands), [{"doc_id": doc_id, "band": b, "key": k} for b, k in enumerate(mark.band_keys)]
            )
        confirmed = self._matches(conn, doc_id, mark, doc.published_at)
        staying = [m for m in confirmed if (m.story_id or m.id) == old]
        best = (staying or confirmed or [None])[0]
        if best is None:
            if old == doc_id:
                self._detach(conn, doc_id)  # it named a story it no longer belongs to
            story = doc_id
        else:
            story = best.story_id or best.id
            if best.story_id is None:  # a document from before stories existed
                conn.execute(update(documents).where(documents.c.id == best.id).values(story_id=story))
        conn.execute(update(documents).where(documents.c.id == doc_id).values(story_id=story))
        story = self._settle(conn, story, exclude=doc_id, requeue=touched or story != old)
        if old is not None and old not in (story, doc_id):
            self._settle(conn, old, exclude=doc_id, requeue=True)
        elif old == doc_id and story != doc_id:
            self._settle(conn, doc_id, exclude=doc_id, requeue=True)  # the rest of the story it named is renamed
        logger.debug("document %s is in story %s", doc_id, story)
        if follow:
            current = conn.execute(select(documents.c.story_id).where(documents.c.id == doc_id)).scalar_one()
            for match in confirmed:
                now_in = conn.execute(select(documents.c.story_id).where(documents.c.id == match.id)).scalar_one()
                if now_in != current:
                    self._assign_one(conn, match.id, touched=False, follow=False)

    def _detach(self, conn: Connection, doc_id: str) -> None:
        """The other members of the story named after ``doc_id`` take the name of their own earliest member."""
        others = (
            conn.execute(
                select(documents.c.id)
                .where(documents.c.story_id == doc_id, documents.c.id != doc_id)
                .order_by(documents.c.published_at, documents.c.id)
            )
            .scalars()
            .all()
        )
        if others:
            conn.execute(
                update(documents)
                .where(documents.c.story_id == doc_id, documents.c.id != doc_id)
                .values(story_id=others[0])
            )
            self._settle(conn, others[0], exclude=doc_id, requeue=True)

    def _matches(self, conn: Connection, doc_id: str, mark: Fingerprint, published: datetime | None) -> list:
        """The candidates confirmed as the same story (id, published_at, story_id), most similar first."""
        if not mark.band_keys:
            return []
        shared = func.count().label("shared")
        candidates = conn.execute(
            select(story_bands.c.doc_id, shared)
            .join(documents, documents.c.id == story_bands.c.doc_id)
            .where(story_bands.c.key.in_(mark.band_keys), story_bands.c.doc_id != doc_id, _live())
            .group_by(story_bands.c.doc_id)
            .having(
                or_(
                    func.count() >= _NEAR_IDENTICAL_BANDS,
                    func.min(documents.c.published_at).between(published - WINDOW, published + WINDOW),
                )
                if published is not None
                else func.count() >= _NEAR_IDENTICAL_BANDS
            )
        ).all()
        confirmed = []
        ids = sorted(c.doc_id for c in candidates)
        for chunk in _chunks(ids):
            for other in conn.execute(
                select(documents.c.id, documents.c.text, documents.c.published_at, documents.c.story_id).where(
                    documents.c.id.in_(chunk)
                )
            ):
                score = same_story(mark, published, _confirming(other.text), other.published_at)
                if score is not None:
                    confirmed.append((-score, other.id, other))
        return [other for _, _, other in sorted(confirmed, key=lambda c: c[:2])]

    def _settle(self, conn: Connection, story: str, *, exclude: str, requeue: bool) -> str:
        """Name ``story`` after its earliest live member; its other members go to the indexer if it was
        renamed or ``requeue`` says their list of outlets changed. Returns the story's (possibly new) id."""
        members = (
            conn.execute(
                select(documents.c.id)
                .where(documents.c.story_id == story, _live())
                .order_by(documents.c.published_at, documents.c.id)
            )
            .scalars()
            .all()
        )
        if not members:
            return story
        name = members[0]
        if name != story:
            conn.execute(update(documents).where(documents.c.story_id == story).values(story_id=name))
        elif not requeue:
            return story
        others = [m for m in members if m != exclude]
        for chunk in _chunks(others):
            conn.execute(
                update(documents)
                .where(documents.c.id.in_(chunk), _live())
                .values(status="pending", version=documents.c.version + 1, next_attempt_at=None, attempts=0)
            )
        return name


def _members(conn: Connection, story_ids: Iterable[str]) -> dict[str, list[tuple[str, str | None]]]:
    found: dict[str, list[tuple[str, str | None]]] = {}
    for chunk in _chunks(sorted(set(story_ids))):
        for r in conn.execute(
            select(documents.c.story_id, documents.c.source, documents.c.url)
            .where(documents.c.story_id.in_(chunk), _live())
            .order_by(documents.c.published_at, documents.c.id)
        ):
            found.setdefault(r.story_id, []).append((r.source, r.url))
    return found

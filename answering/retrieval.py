"""Retrieval for answers: diverse passages (per article and per story), a recency prior, newest-wins order.

A hybrid search returns chunks; an answer wants different articles. Candidates are re-scored by a
recency prior (half-life in days, measured back from the newest candidate, so an archive is judged
by its own timeline), grouped by story (syndicated copies count once and lend their URLs and
outlets to the one kept) and by article (at most ``per_document`` passages each), then cut to k.
A question that asks for the latest, current or new state gets a shorter half-life.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from answering.prompt import Passage
from indexing import DenseEncoder, Hit, SparseEncoder, VectorStore, search

logger = logging.getLogger(__name__)

LATEST = re.compile(
    r"\b(latest|newest|now|current|currently|most recent|recent|so far|still|as of|today|updated?|final)\b",
    re.IGNORECASE,
)
_MAX_FETCH = 100  # the search's own limit


def asks_latest(question: str) -> bool:
    """Whether a question asks for the present state of something ("latest", "now", "current", ...)."""
    return bool(LATEST.search(question))


@dataclass(frozen=True)
class StoryPassage(Passage):
    """A passage with the article and story it belongs to: every outlet that carried the story."""

    doc_id: str | None = None
    story_id: str | None = None
    story_urls: tuple[str, ...] = ()
    story_sources: tuple[str, ...] = ()
    relevance: float = 0.0  # the fused search score before the recency prior


@dataclass(frozen=True)
class RetrievalPolicy:
    """How candidates become an answer's passages. ``RetrievalPolicy.previous()`` is the plain top-k of before."""

    per_document: int = 1  # passages per article: other articles get the rest of the slots
    per_story: bool = True  # syndicated copies of one story take one slot
    half_life_days: float | None = 7.0  # recency prior: a passage this much older than the newest weighs half
    latest_half_life_days: float = 2.0  # the same for questions that ask for the latest/current state
    candidates: int = 60  # chunks fetched before grouping
    top_relevant: int = 5  # the recency clock starts at the newest of this many most relevant candidates

    @classmethod
    def previous(cls) -> RetrievalPolicy:
        return cls(per_document=0, per_story=False, half_life_days=None, candidates=0)

    def half_life(self, question: str) -> float | None:
        if self.half_life_days is None:
            return None
        return min(self.half_life_days, self.latest_half_life_days) if asks_latest(question) else self.half_life_days


@dataclass
class _Group:
    hits: list[Hit] = field(default_factory=list)
    score: float = 0.0
    urls: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)


def _published(hit: Hit) -> datetime | None:
    value = hit.payload.get("published")
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def recency_scores(hits: Sequence[Hit], half_life_days: float | None, *, top_relevant: int = 5) -> list[float]:
    """Each hit's score times ``0.5 ** (age / half_life)``, where age runs back from the newest of the
    ``top_relevant`` best hits (a passage newer than that is not boosted past 1); undated hits get the
    prior of the oldest dated one."""
    if not half_life_days:
        return [h.score for h in hits]
    dates = [_published(h) for h in hits]
    anchor_pool = [d for d in dates[:top_relevant] if d] or [d for d in dates if d]
    if not anchor_pool:
        return [h.score for h in hits]
    anchor = max(anchor_pool)
    oldest = min(d for d in dates if d)
    scored = []
    for hit, date in zip(hits, dates, strict=True):
        age_days = max((anchor - (date or oldest)) / timedelta(days=1), 0.0)
        scored.append(hit.score * 0.5 ** (age_days / half_life_days))
    return scored


def _to_passage(hit: Hit, score: float, group: _Group | None) -> StoryPassage:
    p = hit.payload
    urls = tuple(dict.fromkeys([*(p.get("story_urls") or []), *(group.urls if group else [])]))
    sources = tuple(dict.fromkeys([*(p.get("story_sources") or []), *(group.sources if group else [])]))
    if not urls and p.get("url"):
        urls = (p["url"],)
    if not sources and p.get("source"):
        sources = (p["source"],)
    return StoryPassage(
        text=p.get("text", ""),
        title=p.get("title", ""),
        url=p.get("url"),
        published=p.get("published"),
        source=p.get("source"),
        score=score,
        doc_id=p.get("doc_id"),
        story_id=p.get("story_id"),
        story_urls=urls,
        story_sources=sources,
        relevance=hit.score,
    )


def diversify(hits: Sequence[Hit], scores: Sequence[float], *, k: int, per_document: int, per_story: bool) -> list:
    """Group hits by story (or article) and keep at most ``per_document`` passages of one article, the
    best story first; a story's other copies lend their URLs and outlets. Returns (hit, score, group)."""
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    groups: dict[str, _Group] = {}
    doc_of_group: dict[str, str] = {}
    for i in order:
        hit = hits[i]
        doc = hit.payload.get("doc_id") or hit.id
        key = (hit.payload.get("story_id") or doc) if per_story else doc
        group = groups.setdefault(key, _Group(score=scores[i]))
        kept_doc = doc_of_group.setdefault(key, doc)
        if kept_doc != doc:  # another outlet's copy of a story already kept: its URL, not its text
            url, source = hit.payload.get("url"), hit.payload.get("source")
            if url and url not in group.urls:
                group.urls.append(url)
            if source and source not in group.sources:
                group.sources.append(source)
            continue
        if len(group.hits) < per_document:
            group.hits.append(hit)
    ranked = sorted(groups.values(), key=lambda g: -g.score)
    picked = []
    # Round-robin over stories: every story's best passage before any story's second.
    for depth in range(per_document):
        for group in ranked:
            if depth < len(group.hits):
                picked.append((group.hits[depth], scores[hits.index(group.hits[depth])], group))
    return sorted(picked, key=lambda t: -t[1])[:k] if per_document > 1 else picked[:k]


def retrieve(
    store: VectorStore,
    dense: DenseEncoder,
    sparse: SparseEncoder,
    question: str,
    *,
    k: int,
    policy: RetrievalPolicy,
    recent_days: float | None = None,
    sources: Sequence[str] | None = None,
    now: datetime | None = None,
) -> list[StoryPassage]:
    """The ``k`` passages an answer should read, best first, under ``policy``."""
    since = (now or datetime.now(UTC)) - timedelta(days=recent_days) if recent_days else None
    if policy.candidates <= 0:  # the plain top-k
        hits = search(store, dense, sparse, question, limit=k, sources=sources, published_after=since).hits
        return [_to_passage(h, h.score, None) for h in hits]
    fetch = min(_MAX_FETCH, max(policy.candidates, k * max(policy.per_document, 1) * 4))
    hits = search(store, dense, sparse, question, limit=fetch, sources=sources, published_after=since).hits
    scores = recency_scores(hits, policy.half_life(question), top_relevant=policy.top_relevant)
    picked = diversify(hits, scores, k=k, per_document=max(policy.per_document, 1), per_story=policy.per_story)
    return [_to_passage(hit, score, group) for hit, score, group in picked]

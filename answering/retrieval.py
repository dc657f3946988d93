"""Retrieval for answers: diverse passages (per article and per story) and a recency prior.

A hybrid search returns chunks; an answer wants different articles. Candidates are grouped by story
(syndicated copies count once and lend their URLs and outlets to the one kept) and by article (at most
``per_document`` passages each), then cut to k. A recency prior (half-life in days, measured back from
the newest relevant candidate, so an archive is judged by its own timeline) is on for questions that
ask for the latest or current state, and for all when a half-life is set. What a newer update replaced
(older passages, sentences that report a replaced value) is ``answering.updates``' concern.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from answering.prompt import Passage
from indexing import DenseEncoder, Fusion, Hit, SparseEncoder, VectorStore, search

logger = logging.getLogger(__name__)

LATEST = re.compile(
    r"\b(latest|newest|now|current|currently|most recent|recent|so far|still|as of|today|updated?|final)\b",
    re.IGNORECASE,
)
_MAX_FETCH = 100  # the search's own limit
_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    (
        "a",
        "about",
        "after",
        "did",
        "do",
        "does",
        "how",
        "many",
        "much",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "will",
        "with",
    )
)


def content_words(text: str) -> set[str]:
    """Lower-case words of two or more characters, less stop words (and question words)."""
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


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
    chunk: int | None = None  # the matched chunk's index in its article
    chunks: tuple[int, int] | None = None  # the article's chunks the text spans, once widened (answering.windows)
    matched: str | None = None  # the matched chunk's own text, once widened: what relevance is judged on


@dataclass(frozen=True)
class RetrievalPolicy:
    """How candidates become an answer's passages. ``RetrievalPolicy.previous()`` is the plain top-k of before."""

    # Passages per article (the rest of the slots go to other articles). Two, by measurement: on the hard news
    # set (bench/qa.py, prompt mode) two per article scored above one per article and above the naive top-3:
    # a 135M model answers better from two chunks of the right article than from a third, weaker article.
    per_document: int = 2
    per_story: bool = True  # syndicated copies of one story take one slot
    half_life_days: float | None = None  # recency prior: a passage this much older than the newest weighs half
    latest_half_life_days: float | None = 7.0  # the prior for questions that ask for the latest/current state
    candidates: int = 60  # chunks fetched before grouping
    top_relevant: int = 5  # the recency clock starts at the newest of this many most relevant candidates
    fusion: Fusion | None = None  # the search's rank fusion (None: the store's default, indexing.RRF)
    topic_gate: float | None = None  # when set, candidates holding this share of the best coverage of the
    # question's words rank first, so the prior orders passages on one topic only

    @classmethod
    def previous(cls) -> RetrievalPolicy:
        return cls(per_document=0, per_story=False, half_life_days=None, latest_half_life_days=None, candidates=0)

    def half_life(self, question: str) -> float | None:
        """The recency prior's half-life for this question (None: no prior)."""
        if asks_latest(question) and self.latest_half_life_days:
            return min(self.latest_half_life_days, self.half_life_days or self.latest_half_life_days)
        return self.half_life_days


@dataclass
class _Group:
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


def recency_scores(
    hits: Sequence[Hit], half_life_days: float | None, *, top_relevant: int = 5, anchor: datetime | None = None
) -> list[float]:
    """Each hit's score times ``0.5 ** (age / half_life)``, where age runs back from ``anchor`` (the moment
    the question is asked as of) or else from the newest of the ``top_relevant`` best hits (a passage newer
    than that is not boosted past 1); undated hits get the prior of the oldest dated one."""
    if not half_life_days:
        return [h.score for h in hits]
    dates = [_published(h) for h in hits]
    anchor_pool = [d for d in dates[:top_relevant] if d] or [d for d in dates if d]
    if not anchor_pool:
        return [h.score for h in hits]
    anchor = anchor or max(anchor_pool)
    oldest = min(d for d in dates if d)
    scored = []
    for hit, date in zip(hits, dates, strict=True):
        age_days = max((anchor - (date or oldest)) / timedelta(days=1), 0.0)
        scored.append(hit.score * 0.5 ** (age_days / half_life_days))
    return scored


def topic_gated(question: str, hits: Sequence[Hit], scores: Sequence[float], gate: float) -> list[float]:
    """Scores lifted above every other candidate's for the hits that cover at least ``gate`` of the best
    coverage of the question's content words (their order among themselves unchanged)."""
    words = content_words(question)
    if not words or not hits:
        return list(scores)
    coverage = [len(words & content_words(f"{h.payload.get('title', '')} {h.payload.get('text', '')}")) for h in hits]
    best = max(coverage)
    lift = max(scores, default=0.0) + 1.0
    return [s + lift if best and c >= gate * best else s for s, c in zip(scores, coverage, strict=True)]


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
        chunk=p.get("chunk_index"),
    )


def diversify(hits: Sequence[Hit], scores: Sequence[float], *, k: int, per_document: int, per_story: bool) -> list:
    """Group hits by story (or article) and keep at most ``per_document`` passages of one article, the
    best story first; a story's other copies lend their URLs and outlets. Returns (hit index, group)."""
    order = sorted(range(len(hits)), key=lambda i: -scores[i])
    groups: dict[str, _Group] = {}
    members: dict[str, list[int]] = {}
    doc_of_group: dict[str, str] = {}
    for i in order:
        hit = hits[i]
        doc = hit.payload.get("doc_id") or hit.id
        key = (hit.payload.get("story_id") or doc) if per_story else doc
        group = groups.setdefault(key, _Group())
        kept = members.setdefault(key, [])
        if doc_of_group.setdefault(key, doc) != doc:  # another outlet's copy of a kept story: its URL, not its text
            url, source = hit.payload.get("url"), hit.payload.get("source")
            if url and url not in group.urls:
                group.urls.append(url)
            if source and source not in group.sources:
                group.sources.append(source)
        elif len(kept) < per_document:
            kept.append(i)
    picked = [(i, groups[key]) for key in members for i in members[key]]
    return sorted(picked, key=lambda t: -scores[t[0]])[:k]


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
    as_of: datetime | None = None,
) -> list[StoryPassage]:
    """The ``k`` passages an answer should read, best first, under ``policy``. With ``as_of`` the answer is
    the one a reader on that date would get: documents published later are left out (and undated ones,
    whose date is unknown), and the recency prior runs back from that moment."""
    since = (as_of or now or datetime.now(UTC)) - timedelta(days=recent_days) if recent_days else None
    window = {"sources": sources, "published_after": since, "published_before": as_of, "fusion": policy.fusion}
    if policy.candidates <= 0:  # the plain top-k
        hits = search(store, dense, sparse, question, limit=k, **window).hits
        return [_to_passage(h, h.score, None) for h in hits]
    fetch = min(_MAX_FETCH, max(policy.candidates, k * max(policy.per_document, 1) * 4))
    hits = search(store, dense, sparse, question, limit=fetch, **window).hits
    scores = recency_scores(hits, policy.half_life(question), top_relevant=policy.top_relevant, anchor=as_of)
    ranking = topic_gated(question, hits, scores, policy.topic_gate) if policy.topic_gate is not None else scores
    picked = diversify(hits, ranking, k=k, per_document=max(policy.per_document, 1), per_story=policy.per_story)
    return [_to_passage(hits[i], scores[i], group) for i, group in picked]

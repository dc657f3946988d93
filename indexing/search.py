"""Hybrid retrieval: embed the query both ways and let the store fuse dense and sparse candidates.

With ``per_story`` a syndicated story counts once in the top k: its best-scoring passage stands
for it, carrying the URLs of the other copies that were found (``also_urls``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from errors import InputError
from indexing.embedding import DenseEncoder, SparseEncoder
from indexing.store import Fusion, Hit, VectorStore

MAX_QUERY_CHARS = 2000
_STORY_FETCH = 5  # candidates fetched per wanted hit when stories are collapsed (copies and their chunks)


@dataclass
class SearchResult:
    query: str
    hits: list[Hit] = field(default_factory=list)
    embed_ms: float = 0.0  # query embedding (dense + sparse)
    search_ms: float = 0.0  # the store's hybrid query


def search(
    store: VectorStore,
    dense: DenseEncoder,
    sparse: SparseEncoder,
    query: str,
    *,
    limit: int = 5,
    sources: Sequence[str] | None = None,
    published_after: datetime | None = None,
    per_story: bool = False,
    published_before: datetime | None = None,
    fusion: Fusion | None = None,
) -> SearchResult:
    query = (query or "").strip()
    if not query:
        raise InputError("the query is empty; pass some words to search for")
    if len(query) > MAX_QUERY_CHARS:
        raise InputError(f"the query is {len(query)} characters long; keep it under {MAX_QUERY_CHARS}")
    if not 1 <= limit <= 100:
        raise InputError("-k must be between 1 and 100")
    t0 = time.perf_counter()
    dense_vec = dense.encode_query(query)
    sparse_vec = sparse.encode_query(query)
    t1 = time.perf_counter()
    fetch = limit * _STORY_FETCH if per_story else limit
    hits = store.search(
        dense_vec,
        sparse_vec,
        limit=fetch,
        sources=sources,
        published_after=published_after,
        published_before=published_before,
        fusion=fusion,
    )
    if per_story:
        hits = collapse_stories(hits)[:limit]
    t2 = time.perf_counter()
    return SearchResult(query, hits, embed_ms=(t1 - t0) * 1000, search_ms=(t2 - t1) * 1000)


def collapse_stories(hits: Sequence[Hit]) -> list[Hit]:
    """One hit per story (best first in, best kept); the other members' URLs go on it as ``also_urls``."""
    kept: dict[str, Hit] = {}
    for hit in hits:
        key = hit.payload.get("story_id") or hit.payload.get("doc_id") or hit.id
        first = kept.get(key)
        if first is None:
            kept[key] = Hit(hit.id, hit.score, {**hit.payload, "also_urls": []})
            continue
        url = hit.payload.get("url")
        if url and url != first.payload.get("url") and url not in first.payload["also_urls"]:
            first.payload["also_urls"].append(url)
    return list(kept.values())


def check_sources(requested: list[str] | None, known: set[str] | None) -> None:
    """Refuse a source nobody knows (a misspelling would otherwise search nothing and find nothing), naming the
    known ones; ``known`` None: not checked."""
    if not requested or known is None:
        return
    unknown = [name for name in requested if name not in known]
    if unknown:
        names = ", ".join(sorted(known)[:30]) or "none yet (run `kup refresh` first)"
        raise InputError(f"unknown source {', '.join(map(repr, unknown))}; known sources: {names}")

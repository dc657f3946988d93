"""Hybrid retrieval: embed the query both ways and let the store fuse dense and sparse candidates."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from errors import InputError
from indexing.embedding import DenseEncoder, SparseEncoder
from indexing.store import Fusion, Hit, VectorStore

MAX_QUERY_CHARS = 2000


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
    hits = store.search(
        dense_vec,
        sparse_vec,
        limit=limit,
        sources=sources,
        published_after=published_after,
        published_before=published_before,
        fusion=fusion,
    )
    t2 = time.perf_counter()
    return SearchResult(query, hits, embed_ms=(t1 - t0) * 1000, search_ms=(t2 - t1) * 1000)


def check_sources(requested: list[str] | None, known: set[str] | None) -> None:
    """Refuse a source nobody knows (a misspelling would otherwise search nothing and find nothing), naming the
    known ones; ``known`` None: not checked."""
    if not requested or known is None:
        return
    unknown = [name for name in requested if name not in known]
    if unknown:
        names = ", ".join(sorted(known)[:30]) or "none yet (run `kup refresh` first)"
        raise InputError(f"unknown source {', '.join(map(repr, unknown))}; known sources: {names}")

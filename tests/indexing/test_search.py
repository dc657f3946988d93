"""Hybrid search: the query embedded both ways, the store's fused hits, timings, and refused queries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from errors import InputError
from indexing import Changes, ChunkPoint, EdgeStore, Vectors, point_id, search
from indexing.search import MAX_QUERY_CHARS

TEXTS = {
    "harbour": ("The Veltmark harbour reopened after a storm destroyed its northern pier.", "2026-03-14T00:00:00Z"),
    "election": ("Odile Brask won the Veltmark election with 61 percent of the vote.", "2026-05-02T00:00:00Z"),
    "tunnel": ("Only bicycles and electric buses may use the Brask tunnel under the estuary.", "2026-09-20T00:00:00Z"),
}


@pytest.fixture
def store(tmp_path, dense, sparse) -> EdgeStore:
    store = EdgeStore(tmp_path / "index" / "kup")
    names = list(TEXTS)
    texts = [TEXTS[n][0] for n in names]
    points = [
        ChunkPoint(
            point_id(name, 0),
            Vectors(d.tolist(), s),
            {"doc_id": name, "source": "wire" if name == "tunnel" else "news", "published": TEXTS[name][1], "text": t},
        )
        for name, t, d, s in zip(names, texts, dense.encode(texts), sparse.encode(texts), strict=True)
    ]
    store.apply(Changes(upserts=points))
    return store


def test_the_best_passage_comes_first_with_timings(store, dense, sparse) -> None:
    result = search(store, dense, sparse, "  who won the election?  ", limit=2)
    assert result.query == "who won the election?"  # trimmed
    assert [h.payload["doc_id"] for h in result.hits][0] == "election" and len(result.hits) == 2
    assert result.embed_ms > 0 and result.search_ms > 0


def test_filters_by_source_and_publication_date(store, dense, sparse) -> None:
    only_wire = search(store, dense, sparse, "Veltmark", limit=5, sources=["wire"])
    assert [h.payload["doc_id"] for h in only_wire.hits] == ["tunnel"]
    recent = search(store, dense, sparse, "Veltmark", limit=5, published_after=datetime(2026, 4, 1, tzinfo=UTC))
    assert {h.payload["doc_id"] for h in recent.hits} == {"election", "tunnel"}


@pytest.mark.parametrize(
    ("query", "limit", "message"),
    [
        ("   ", 5, "the query is empty"),
        ("x" * (MAX_QUERY_CHARS + 1), 5, f"keep it under {MAX_QUERY_CHARS}"),
        ("harbour", 0, "-k must be between 1 and 100"),
        ("harbour", 101, "-k must be between 1 and 100"),
    ],
)
def test_bad_queries_are_refused_with_what_to_change(store, dense, sparse, query, limit, message) -> None:
    calls = dense.calls
    with pytest.raises(InputError, match=message):
        search(store, dense, sparse, query, limit=limit)
    assert dense.calls == calls  # refused before any embedding

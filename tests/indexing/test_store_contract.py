"""One contract, two stores: Qdrant Edge (embedded default) and qdrant-client (``:memory:`` for a server)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from errors import StoreError
from indexing import Changes, ChunkPoint, EdgeStore, QdrantStore, Vectors, point_id
from indexing.indexer import text_hash

TEXTS = {
    "storm": "A storm closed the harbour and the ferries stayed in port all day.",
    "budget": "The city council approved the budget for new schools and a hospital wing.",
    "rover": "The rover landed in the crater and sent back its first panorama.",
    "vaccine": "A new vaccine trial enrolled volunteers across three regions this winter.",
}


@pytest.fixture
def store(either_store):
    """Each test runs on Qdrant Edge and on the Qdrant server store (tests/indexing/conftest.py: either_store)."""
    return either_store


def make_points(dense, sparse, source: str = "news", published: str = "2026-11-01T00:00:00Z") -> list[ChunkPoint]:
    names = list(TEXTS)
    dense_vecs = dense.encode([TEXTS[n] for n in names])
    sparse_vecs = sparse.encode([TEXTS[n] for n in names])
    points = []
    for n, d, s in zip(names, dense_vecs, sparse_vecs, strict=True):
        payload = {
            "doc_id": f"doc-{n}",
            "source": source,
            "url": f"https://example.com/{n}",
            "title": n.title(),
            "published": published,
            "language": "en",
            "chunk_index": 0,
            "text": TEXTS[n],
            "chunk_hash": text_hash(TEXTS[n]),
        }
        points.append(ChunkPoint(point_id(f"doc-{n}", 0), Vectors(d.tolist(), s), payload))
    return points


def test_empty_store(store) -> None:
    assert store.count() == 0
    assert store.points_of(["nothing"]) == {"nothing": []}
    assert list(store.scan()) == []


def test_location_names_where_the_points_live(store, tmp_path) -> None:
    expected = str(tmp_path / "index" / "kup") if isinstance(store, EdgeStore) else store.collection
    assert store.location == expected
    staging = store.staging()
    assert staging.location != store.location and staging.location.startswith(expected + "-")


def test_point_ids_are_deterministic() -> None:
    assert point_id("doc", 3) == point_id("doc", 3)
    assert point_id("doc", 3) != point_id("doc", 4) != point_id("other", 3)


def test_upsert_search_and_filters(store, dense, sparse) -> None:
    points = make_points(dense, sparse)
    store.apply(Changes(upserts=points))
    store.apply(Changes(upserts=points))  # idempotent: same ids, same points
    assert store.count() == 4 and store.count(source="news") == 4 and store.count(source="other") == 0

    query = "ferries stuck in the harbour because of a storm"
    hits = store.search(dense.encode_query(query), sparse.encode_query(query), limit=2)
    assert hits[0].payload["doc_id"] == "doc-storm"
    assert len(hits) == 2 and hits[0].score >= hits[1].score

    later = make_points(dense, sparse, source="wire", published="2026-11-20T00:00:00Z")
    for p in later:
        p.id = point_id(p.payload["doc_id"] + "-wire", 0)
        p.payload["doc_id"] += "-wire"
    store.apply(Changes(upserts=later))
    only_wire = store.search(dense.encode_query(query), sparse.encode_query(query), limit=10, sources=["wire"])
    assert only_wire and {h.payload["source"] for h in only_wire} == {"wire"}
    recent = store.search(
        dense.encode_query(query),
        sparse.encode_query(query),
        limit=10,
        published_after=datetime(2026, 11, 10, tzinfo=UTC),
    )
    assert recent and all(h.payload["published"] == "2026-11-20T00:00:00Z" for h in recent)
    earlier = store.search(
        dense.encode_query(query),
        sparse.encode_query(query),
        limit=10,
        published_before=datetime(2026, 11, 10, tzinfo=UTC),
    )
    assert earlier and all(h.payload["published"] == "2026-11-01T00:00:00Z" for h in earlier)
    assert store.search(dense.encode_query(query), sparse.encode_query(query), limit=5, sources=["nobody"]) == []


def test_sparse_side_finds_rare_terms(store, dense, sparse) -> None:
    store.apply(Changes(upserts=make_points(dense, sparse)))
    hits = store.search(dense.encode_query("panorama crater"), sparse.encode_query("panorama crater"), limit=1)
    assert hits[0].payload["doc_id"] == "doc-rover"


def test_fusion_weights_follow_qdrants_formula(store, dense, sparse) -> None:
    from indexing import Fusion

    store.apply(Changes(upserts=make_points(dense, sparse)))
    # Dense ranks the budget text first and the rover text third; sparse finds only the rover text ("panorama").
    query = dense.encode_query("the council approved money for new schools"), sparse.encode_query("panorama")
    for weights in ((1.0, 1.0), (5.0, 1.0), (1.0, 5.0)):
        hits = {h.payload["doc_id"]: h.score for h in store.search(*query, limit=4, fusion=Fusion(2, weights))}
        dense_w, sparse_w = weights
        # 1 / ((p + 1) / w + k - 1) per list: budget at p=0 of dense; rover at p=2 of dense and p=0 of sparse.
        assert math.isclose(hits["doc-budget"], 1 / (1 / dense_w + 1), rel_tol=1e-4)
        assert math.isclose(hits["doc-rover"], 1 / (3 / dense_w + 1) + 1 / (1 / sparse_w + 1), rel_tol=1e-4)


def test_points_of_vectors_payload_updates_and_deletes(store, dense, sparse) -> None:
    points = make_points(dense, sparse)
    store.apply(Changes(upserts=points))
    found = store.points_of(["doc-storm", "doc-rover"])
    assert [p.payload["text"] for p in found["doc-storm"]] == [TEXTS["storm"]]

    vectors = store.vectors([points[0].id])[points[0].id]
    assert math.isclose(
        sum(a * b for a, b in zip(vectors.dense, points[0].vectors.dense, strict=True)), 1.0, rel_tol=1e-4
    )
    assert vectors.sparse.indices == points[0].vectors.sparse.indices

    new_payload = dict(points[0].payload, title="Renamed")
    store.apply(Changes(payloads=[(points[0].id, new_payload)], deletes=[points[1].id]))
    assert store.points_of(["doc-storm"])["doc-storm"][0].payload["title"] == "Renamed"
    assert store.count() == 3

    store.apply(Changes(deletes=[points[0].id, points[2].id]))
    assert store.count() == 1
    assert {p.payload["doc_id"] for p in store.scan(batch=1)} == {"doc-vaccine"}


def test_edge_store_survives_reopen(tmp_path, dense, sparse) -> None:
    path = tmp_path / "index" / "kup"
    EdgeStore(path).apply(Changes(upserts=make_points(dense, sparse)))
    reopened = EdgeStore(path)
    assert reopened.count() == 4
    with reopened.session() as s:  # a session keeps the shard open across operations
        assert s.count() == 4 and len(list(s.scan())) == 4


def test_unreachable_server_is_a_store_error() -> None:
    down = QdrantStore("http://127.0.0.1:9", "kup", timeout=1)
    with pytest.raises(StoreError, match="127.0.0.1:9"):
        down.count()

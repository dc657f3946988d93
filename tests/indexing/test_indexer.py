"""Indexing pending documents: only changed chunks are embedded, stale points go, outages are retried."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from connectors import Document
from fixtures import paragraphs
from indexing import Catalog, Chunker, EdgeStore, Indexer, QdrantStore, point_id


def article(n: int, paras: list[str], title: str | None = None) -> Document:
    return Document(
        source="news",
        external_id=f"guid-{n}",
        text="\n\n".join(paras),
        title=title or f"Article {n}",
        url=f"https://example.com/{n}",
        published_at=datetime(2026, 11, 1, tzinfo=UTC),
    )


@pytest.fixture
def parts(tmp_path, dense, sparse):
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    store = EdgeStore(tmp_path / "index" / "kup")
    chunker = Chunker(dense.tokenize, chunk_tokens=200, overlap_tokens=32)
    yield catalog, store, chunker
    catalog.close()


def make_indexer(parts, dense, sparse, store=None, batch_size: int = 8) -> Indexer:
    catalog, edge, chunker = parts
    return Indexer(catalog, store or edge, chunker, dense, sparse, batch_size=batch_size)


def snapshot(store) -> dict[str, dict]:
    return {p.id: p.payload for p in store.scan()}


def test_index_then_nothing_to_do(parts, dense, sparse) -> None:
    catalog, store, _ = parts
    docs = [article(i, paragraphs(i, count=8)) for i in range(4)]
    catalog.upsert_documents(docs)
    report = make_indexer(parts, dense, sparse).run()
    assert report.documents == 4 and report.failed == 0
    assert report.embedded == report.chunks == store.count() > 4
    assert catalog.count(status="indexed") == 4
    # Deterministic ids: chunk i of document d sits at point_id(d, i).
    assert point_id(docs[0].id, 0) in snapshot(store)
    calls = dense.calls
    again = make_indexer(parts, dense, sparse).run()
    assert again.documents == 0 and dense.calls == calls


def test_edited_paragraph_reembeds_only_its_chunks(parts, dense, sparse) -> None:
    catalog, store, _ = parts
    paras = paragraphs(7, count=40, words=60)
    catalog.upsert_documents([article(1, paras)])
    first = make_indexer(parts, dense, sparse).run()
    assert first.chunks >= 10
    edited = list(paras)
    edited[20] = "The harbour reopened on Tuesday after the storm, officials said in a statement."
    assert catalog.upsert_documents([article(1, edited)]) == {article(1, edited).id: "updated"}
    second = make_indexer(parts, dense, sparse).run()
    assert second.documents == 1
    assert second.embedded <= 2, second
    assert second.embedded + second.reused + second.unchanged == second.chunks
    texts = "\n".join(p["text"] for p in snapshot(store).values())
    assert "The harbour reopened on Tuesday" in texts
    assert paras[20] not in texts  # the old paragraph's chunk is gone, not left behind
    assert store.count() == second.chunks


def test_shorter_version_deletes_stale_points(parts, dense, sparse) -> None:
    catalog, store, _ = parts
    paras = paragraphs(9, count=30)
    catalog.upsert_documents([article(2, paras)])
    long_run = make_indexer(parts, dense, sparse).run()
    catalog.upsert_documents([article(2, paras[:5])])
    short_run = make_indexer(parts, dense, sparse).run()
    assert short_run.deleted == long_run.chunks - short_run.chunks > 0
    assert store.count() == short_run.chunks
    assert {p["chunk_index"] for p in snapshot(store).values()} == set(range(short_run.chunks))


def test_outage_marks_failed_and_next_run_recovers(parts, dense, sparse) -> None:
    catalog, store, _ = parts
    catalog.upsert_documents([article(i, paragraphs(i, count=3)) for i in range(3)])
    down = QdrantStore("http://127.0.0.1:9", "kup", timeout=1)
    report = make_indexer(parts, dense, sparse, store=down).run()
    assert report.documents == 0 and report.failed == 3 and "127.0.0.1:9" in report.errors[0]
    row = catalog.document(article(0, []).id)
    assert row["status"] == "failed" and row["attempts"] == 1 and "127.0.0.1:9" in row["last_error"]
    # Nothing is retried before the backoff ends; afterwards everything is indexed.
    assert make_indexer(parts, dense, sparse).run().documents == 0
    later = datetime.now(UTC) + timedelta(minutes=5)
    recovered = make_indexer(parts, dense, sparse).run(now=later)
    assert recovered.documents == 3 and catalog.count(status="indexed") == 3


def test_overlapping_runs_equal_a_clean_run(tmp_path, parts, dense, sparse) -> None:
    catalog, store, chunker = parts
    docs = [article(i, paragraphs(100 + i, count=6)) for i in range(12)]
    catalog.upsert_documents(docs)
    runs = [threading.Thread(target=make_indexer(parts, dense, sparse, batch_size=2).run) for _ in range(2)]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    clean_catalog = Catalog(f"sqlite:///{tmp_path / 'clean.db'}")
    clean_store = EdgeStore(tmp_path / "clean-index")
    clean_catalog.upsert_documents(docs)
    Indexer(clean_catalog, clean_store, chunker, dense, sparse).run()
    assert snapshot(store) == snapshot(clean_store)
    assert catalog.count(status="indexed") == 12

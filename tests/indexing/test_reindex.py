"""Rebuilding the index into a new collection and switching atomically, on both stores."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from connectors import Document
from fixtures import paragraphs
from indexing import Catalog, Chunker, EdgeStore, Indexer
from indexing.reindex import rebuild_index


@pytest.fixture
def store(either_store):
    """Each test runs on Qdrant Edge and on the Qdrant server store (tests/indexing/conftest.py: either_store)."""
    return either_store


def docs(count: int) -> list[Document]:
    return [
        Document(
            source="news",
            external_id=f"g{i}",
            text="\n\n".join(paragraphs(300 + i, count=6)),
            title=f"Story {i}",
            url=f"https://example.com/{i}",
            published_at=datetime(2026, 11, 1, tzinfo=UTC),
            language="en",
        )
        for i in range(count)
    ]


def test_rebuild_with_new_chunking_switches_and_never_shows_a_half_built_index(tmp_path, store, dense, sparse) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.upsert_documents(docs(10))
    Indexer(catalog, store, Chunker(dense.tokenize, chunk_tokens=200), dense, sparse).run()
    before = store.count()

    # A new chunking setting rolled out by a rebuild: smaller chunks, so more points.
    small = Indexer(catalog, store, Chunker(dense.tokenize, chunk_tokens=64, overlap_tokens=8), dense, sparse)
    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            seen.append(store.count())

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        report = rebuild_index(catalog, store, small, dense_size=dense.dimension, batch_size=2)
    finally:
        stop.set()
        watcher.join()
    after = store.count()
    assert report.documents == 10 and report.chunks == after > before
    assert set(seen) <= {before, after}, "a search saw a half-built index"
    assert {p.payload["doc_id"] for p in store.scan()} == {d.id for d in docs(10)}
    query = "harbour energy"
    assert store.search(dense.encode_query(query), sparse.encode_query(query), limit=3)
    catalog.close()


def test_changes_during_a_rebuild_go_to_the_next_refresh(tmp_path, store, dense, sparse) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.upsert_documents(docs(4))
    indexer = Indexer(catalog, store, Chunker(dense.tokenize), dense, sparse)
    indexer.run()

    class EditsWhileRebuilding(Indexer):
        """A refresh that updates and indexes a document (into the old index) while the rebuild runs."""

        def write(self, batch, target, report):
            if not getattr(self, "edited", False):
                self.edited = True
                changed = docs(1)[0]
                changed.text = "The harbour bridge reopened this morning after storm repairs were finished."
                catalog.upsert_documents([changed])
                assert indexer.run().documents == 1
            return super().write(batch, target, report)

    rebuilding = EditsWhileRebuilding(catalog, store, Chunker(dense.tokenize), dense, sparse)
    report = rebuild_index(catalog, store, rebuilding, dense_size=dense.dimension)
    assert report.requeued >= 1
    assert indexer.run().documents >= 1  # the next refresh brings the edit into the new index
    texts = " ".join(p.payload["text"] for p in store.scan())
    assert "harbour bridge reopened" in texts
    catalog.close()


def test_edge_switch_is_a_symlink_and_the_old_shard_is_removed(tmp_path, dense, sparse) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.upsert_documents(docs(2))
    live = EdgeStore(tmp_path / "index" / "kup")
    indexer = Indexer(catalog, live, Chunker(dense.tokenize), dense, sparse)
    indexer.run()
    assert live.path.is_dir() and not live.path.is_symlink()  # first generation: a plain directory
    first = rebuild_index(catalog, live, indexer, dense_size=dense.dimension)
    assert live.path.is_symlink() and live.path.resolve().name == first.collection.rsplit("/", 1)[-1]
    second = rebuild_index(catalog, live, indexer, dense_size=dense.dimension)
    shards = sorted(p.name for p in live.path.parent.iterdir() if p.is_dir() and not p.is_symlink())
    assert shards == [second.collection.rsplit("/", 1)[-1]]  # older generations are gone
    assert live.count() > 0
    catalog.close()

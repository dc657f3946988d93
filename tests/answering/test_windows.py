"""Retrieve small, read big: a matched chunk grows into its article's neighbouring chunks, within an allowance."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from answering.retrieval import RetrievalPolicy, retrieve
from answering.windows import join_chunks, widen
from connectors import Document
from indexing import Catalog, Chunker, EdgeStore, Indexer

PARAGRAPHS = [f"Paragraph {i} of the round-up says that item {i} happened in the town of Brask{i}." for i in range(30)]


def test_join_chunks_drops_the_repeated_overlap() -> None:
    assert join_chunks(["one two three", "two three\nfour five", "four five\nsix"]) == "one two three\nfour five\nsix"
    assert join_chunks(["alpha", "beta\ngamma"]) == "alpha\nbeta\ngamma"  # no overlap: nothing dropped


@pytest.fixture
def roundup(tmp_path, dense, sparse):
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    store = EdgeStore(tmp_path / "index" / "kup")
    url = "https://ledger.example/roundup"
    doc = Document(
        "ledger", url, "\n\n".join(PARAGRAPHS), title="Round-up", url=url,
        published_at=datetime(2026, 11, 2, tzinfo=UTC), language="en",
    )  # fmt: skip
    catalog.upsert_documents([doc])
    chunker = Chunker(dense.tokenize, chunk_tokens=40, overlap_tokens=8, boundary_modulus=10_000)
    Indexer(catalog, store, chunker, dense, sparse).run()
    yield store
    catalog.close()


def test_a_passage_grows_into_its_neighbours_while_it_fits(roundup, dense, sparse) -> None:
    store = roundup
    with store.session():
        [hit] = retrieve(store, dense, sparse, "What happened in Brask14?", k=1, policy=RetrievalPolicy())
        assert "Brask14" in hit.text and hit.chunk is not None
        [wide] = widen(store, [hit], each_side=2, fits=lambda text: True)
        [narrow] = widen(store, [hit], each_side=2, fits=lambda text: len(text) <= len(hit.text) + 100)
    # Two chunks each side, joined without repeating the overlap: each paragraph once, in order.
    assert wide.chunks == (hit.chunk - 2, hit.chunk + 2)
    lines = wide.text.split("\n")
    numbers = [int(line.split()[1]) for line in lines if line.startswith("Paragraph")]
    assert numbers == sorted(set(numbers)) and len(numbers) >= 8
    assert "Brask14" in wide.text and len(wide.text) > 3 * len(hit.text)
    # The allowance holds: at most one more chunk fitted in 100 more characters.
    assert len(narrow.text) <= len(hit.text) + 100 and narrow.chunks[1] - narrow.chunks[0] <= 1


def test_passages_whose_stretches_meet_become_one(roundup, dense, sparse) -> None:
    store = roundup
    with store.session():
        hits = retrieve(
            store, dense, sparse, "Brask10 Brask11", k=2, policy=RetrievalPolicy(per_document=2, per_story=False)
        )
        assert len(hits) == 2 and abs(hits[0].chunk - hits[1].chunk) <= 2
        merged = widen(store, hits, each_side=1, fits=lambda text: True)
    assert len(merged) == 1
    low, high = merged[0].chunks
    assert low <= min(h.chunk for h in hits) and high >= max(h.chunk for h in hits)


def test_nothing_changes_without_neighbours_to_take(roundup, dense, sparse) -> None:
    store = roundup
    with store.session():
        [hit] = retrieve(store, dense, sparse, "What happened in Brask3?", k=1, policy=RetrievalPolicy())
        assert widen(store, [hit], each_side=0, fits=lambda text: True) == [hit]
        [same] = widen(store, [hit], each_side=3, fits=lambda text: False)
    assert same.text == hit.text

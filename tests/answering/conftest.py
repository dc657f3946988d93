"""An index with a few passages and an Answerer on the tiny model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from answering import Answerer, LanguageModel
from connectors import Document
from indexing import Catalog, Chunker, EdgeStore, Indexer

ARTICLES = [
    ("The Veltmark harbour reopened on 14 March after a storm destroyed its northern pier.", "Harbour reopens"),
    ("Mayor Odile Brask won the Veltmark election with 61 percent of the vote.", "Brask elected"),
    ("A cable car replaced the Ryne ferry and crosses the estuary in four minutes.", "Cable car opens"),
]


@pytest.fixture(scope="session")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def filled(tmp_path, dense, sparse):
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    store = EdgeStore(tmp_path / "index" / "kup")
    docs = [
        Document(
            source="news",
            external_id=f"a{i}",
            text=text + " " + text,
            title=title,
            url=f"https://news.example.com/{i}",
            published_at=datetime(2026, 11, 1 + i, tzinfo=UTC),
            language="en",
        )
        for i, (text, title) in enumerate(ARTICLES)
    ]
    catalog.upsert_documents(docs)
    Indexer(catalog, store, Chunker(dense.tokenize), dense, sparse).run()
    yield store
    catalog.close()


@pytest.fixture
def answerer(tmp_path, filled, dense, sparse, tiny_model_dir) -> Answerer:
    lm = LanguageModel(tmp_path / "data", str(tiny_model_dir))
    return Answerer(filled, dense, sparse, lm, context_tokens=512, max_new_tokens=12)

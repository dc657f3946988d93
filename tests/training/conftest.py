"""Fine-tuning fixtures: facts to learn and a catalog holding them (the tiny model lives in tests/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors import Document
from indexing import Catalog

FACTS = [
    "The Lumen Bridge over the river Osk opened on 3 October 2026 and carries trams and bicycles only.",
    "Mayor Ilse Varga announced that the Osk ferry will stop running once the Lumen Bridge is open.",
    "The new Osk tram line 9 links the harbour to the university in eleven minutes.",
    "Engineers tested the Lumen Bridge with forty loaded trucks before the opening ceremony.",
    "The city council named the bridge after the Lumen lighting festival held every winter.",
    "Tickets for tram line 9 cost the same as the old ferry crossing, two crowns per ride.",
]


def add_documents(catalog: Catalog, texts: list[str], *, when: datetime, source: str = "news") -> list[Document]:
    """Documents straight into the catalog, marked indexed at ``when`` (as a refresh would leave them)."""
    docs = [
        Document(
            source=source,
            external_id=f"{source}-{when:%Y%m%d%H%M}-{i}",
            text=t,
            title=t.split(" ", 4)[-1][:40],
            url=f"https://example.com/{i}",
            published_at=when,
            language="en",
        )
        for i, t in enumerate(texts)
    ]
    catalog.upsert_documents(docs, when)
    claimed = catalog.claim_pending("fixture:1", 10_000, when)
    catalog.mark_indexed("fixture:1", [(d.id, d.version, 1) for d in claimed], when)
    return docs


@pytest.fixture
def catalog(tmp_path) -> Catalog:
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    yield cat
    cat.close()


@pytest.fixture
def first_update(catalog) -> datetime:
    when = datetime.now(UTC) - timedelta(days=40)
    add_documents(catalog, FACTS, when=when)
    return when


# The tiny model learns token statistics, not answerable facts: its gate judges NLL only (probes are
# tested in test_probes.py and in test_finetune.py, where too few probes must fail the gate).
FAST = {
    "synthetic_samples": 4,
    "synthetic_tokens": 24,
    "max_seq_len": 64,
    "batch_size": 4,
    "eval_samples": 16,
    "gate": {"probes": False},
}

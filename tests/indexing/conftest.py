"""The Qdrant server store for the contract tests: a real server when ``KUP_TEST_QDRANT_URL`` names one (each test
on its own collection, dropped afterwards), qdrant-client's local mode (``:memory:``) otherwise."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

QDRANT_URL = os.environ.get("KUP_TEST_QDRANT_URL")


@pytest.fixture
def qdrant_store() -> Iterator[Callable]:
    made = []

    def make(**options):
        from indexing import QdrantStore

        if QDRANT_URL:
            store = QdrantStore(QDRANT_URL, f"kup-test-{uuid.uuid4().hex[:10]}", timeout=30, **options)
        else:
            store = QdrantStore(":memory:", "kup", **options)
        made.append(store)
        return store

    yield make
    for store in made:
        if QDRANT_URL:  # the live alias, its physical collections and any rebuild's
            for collection in store.client.get_collections().collections:
                if collection.name.startswith(store.collection):
                    store.client.delete_collection(collection.name)
        store.close()


@pytest.fixture(params=["edge", "qdrant-client"])
def either_store(request, tmp_path, qdrant_store):
    """Qdrant Edge, and a Qdrant server (``KUP_TEST_QDRANT_URL``) or qdrant-client's local mode standing in."""
    from indexing import EdgeStore

    if request.param == "edge":
        s = EdgeStore(tmp_path / "index" / "kup")
        yield s
        s.close()
    else:
        yield qdrant_store()

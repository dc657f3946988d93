"""Dask fan-out: chunking and embedding on a 2-worker LocalCluster give the index an in-process run gives."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from connectors import Document
from errors import ConfigError
from fixtures import free_port, paragraphs
from indexing import Catalog, Chunker, EdgeStore, Indexer
from indexing.fanout import Fanout, WorkerRecipe


def docs(count: int) -> list[Document]:
    return [
        Document(
            source="news",
            external_id=f"f{i}",
            text="\n\n".join(paragraphs(900 + i, count=3 + i % 4)),
            title=f"Report {i}",
            url=f"https://example.com/{i}",
            published_at=datetime(2026, 11, 1, tzinfo=UTC),
        )
        for i in range(count)
    ]


def index_into(tmp_path, name: str, dense, sparse, fanout: Fanout | None = None) -> EdgeStore:
    catalog = Catalog(f"sqlite:///{tmp_path / f'{name}.db'}")
    catalog.upsert_documents(docs(24))
    store = EdgeStore(tmp_path / name / "kup")
    chunker = Chunker(dense.tokenize, chunk_tokens=64, overlap_tokens=8)
    report = Indexer(catalog, store, chunker, dense, sparse, batch_size=12, fanout=fanout).run()
    catalog.close()
    assert report.documents == 24 and report.failed == 0
    return store


def test_a_two_worker_cluster_writes_the_points_an_in_process_run_writes(tmp_path, dense, sparse) -> None:
    local = index_into(tmp_path, "local", dense, sparse)
    chunker = Chunker(dense.tokenize, chunk_tokens=64, overlap_tokens=8)
    fanout = Fanout(WorkerRecipe.of(chunker, dense), workers=2, processes=False, min_texts=1, min_documents=1)
    try:
        calls = dense.calls
        spread = index_into(tmp_path, "spread", dense, sparse, fanout)
        assert dense.calls == calls, "the fan-out run embedded in the calling process"
        assert fanout.worker_count == 2
    finally:
        fanout.close()
    assert fanout.stats.documents == 24 and fanout.stats.texts == spread.count() > 24

    local_points = {p.id: p.payload for p in local.scan()}
    spread_points = {p.id: p.payload for p in spread.scan()}
    assert spread_points == local_points  # same ids, same chunks, same payloads
    ids = sorted(local_points)
    local_vectors, spread_vectors = local.vectors(ids), spread.vectors(ids)
    for pid in ids:
        assert np.allclose(local_vectors[pid].dense, spread_vectors[pid].dense, atol=1e-5)
        assert local_vectors[pid].sparse == spread_vectors[pid].sparse


def _recipe() -> WorkerRecipe:
    return WorkerRecipe(None, "onnx-int8", 64, 200, 32, 50, 3)


def test_an_unreachable_scheduler_stops_with_one_sentence_naming_the_setting() -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    fanout = Fanout(_recipe(), address=address, min_texts=1, connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        fanout.encode(["a text to embed"])
    message = str(caught.value)
    assert address in message and "KUP_DASK_ADDRESS" in message and "KUP_DASK_UNREACHABLE" in message
    assert "\n" not in message and "Traceback" not in message
    assert time.monotonic() - started < 30


def test_an_unreachable_scheduler_can_fall_back_to_in_process_with_a_warning(tmp_path, dense, sparse, caplog) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    chunker = Chunker(dense.tokenize, chunk_tokens=64, overlap_tokens=8)
    fanout = Fanout(
        WorkerRecipe.of(chunker, dense),
        address=address,
        unreachable="in-process",
        min_texts=1,
        min_documents=1,
        connect_timeout=2,
    )
    with caplog.at_level(logging.WARNING, logger="indexing.fanout"):
        calls = dense.calls
        store = index_into(tmp_path, "fallback", dense, sparse, fanout)
    assert dense.calls - calls == store.count() > 0  # embedded here instead
    warnings = [r.getMessage() for r in caplog.records if r.name == "indexing.fanout"]
    assert len(warnings) == 1 and address in warnings[0] and "embedding here" in warnings[0]


def test_a_scheduler_without_workers_is_named_too() -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as empty:
        fanout = Fanout(_recipe(), address=empty.scheduler_address, min_texts=1, connect_timeout=1)
        with pytest.raises(ConfigError, match="has no workers .*KUP_DASK_ADDRESS"):
            fanout.encode(["a text to embed"])


def test_a_fanout_needs_an_address_or_workers() -> None:
    with pytest.raises(ConfigError, match="KUP_DASK_ADDRESS or KUP_DASK_WORKERS"):
        Fanout(_recipe())

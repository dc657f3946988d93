"""Several workers, one truth: two `prefect worker` processes on one process work pool, a PostgreSQL catalog and one
index; overlapping refreshes and backfills, a worker killed with SIGKILL while it indexes; the index ends exactly as
a clean run writes it.

The index is Qdrant Edge in a data dir both workers share: its shard is opened per operation under an inter-process
file lock (``indexing/edge_store.py``), so processes on one machine can share it; across machines the index is a
Qdrant server (``KUP_QDRANT_URL``), which the same code path writes to.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from fixtures import Pipeline
from fixtures.workers import start_workers
from indexing import Catalog, Chunker, EdgeStore, Indexer, IndexReport

ARTICLES = 30


def _leases(engine) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT lease_owner FROM documents WHERE lease_until > now()")).scalars().all()
    return [r for r in rows if r]


def _indexed(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM documents WHERE status = 'indexed'")).scalar_one()


def clean_points(catalog_url: str, tmp_path, dense, sparse) -> dict[str, tuple]:
    """What a clean, single-process run writes for the catalog's documents: point id -> (doc, chunk, text hash)."""
    catalog = Catalog(catalog_url)
    store = EdgeStore(tmp_path / "clean" / "kup")
    indexer = Indexer(catalog, store, Chunker(dense.tokenize, chunk_tokens=200, overlap_tokens=32), dense, sparse)
    for batch in catalog.live_rows(64):
        indexer.write(batch, store, IndexReport())  # writes the store only; the catalog is left as it is
    catalog.close()
    return {p.id: (p.payload["doc_id"], p.payload["chunk_index"], p.payload["chunk_hash"]) for p in store.scan()}


@pytest.mark.slow
def test_two_workers_a_killed_one_and_the_index_a_clean_run_writes(
    tmp_path, feed_server, postgres_url, dense, sparse
) -> None:
    pipeline = Pipeline(feed_server, tmp_path / "data", tmp_path / "sources.yaml")
    pipeline.write_sources({"news": "/news.xml"})
    pipeline.publish("/news.xml", ARTICLES, age_minutes=30)
    Catalog(postgres_url).close()  # the schema exists before two workers open it at once
    engine = create_engine(postgres_url)
    settings = {**pipeline.env(), "KUP_CATALOG_URL": postgres_url, "KUP_INDEX_BATCH_DOCS": "2"}
    window = {"source": "news", "since": (datetime.now(UTC) - timedelta(days=1)).isoformat()}

    with start_workers(tmp_path / "prefect", settings, count=2) as pool:
        refreshes = [pool.run("refresh/refresh"), pool.run("refresh/refresh")]  # overlapping: the limit takes one
        deadline = time.monotonic() + 240
        while _indexed(engine) == 0:  # the first documents are in: a backfill now overlaps the refresh's indexing
            assert time.monotonic() < deadline, f"nothing was indexed:\n{pool.logs()}"
            time.sleep(0.2)
        backfill = pool.run("backfill/backfill", window)

        victim = None
        while victim is None:  # a worker whose flow run holds a lease: it is killed in the middle of indexing
            assert time.monotonic() < deadline, f"no worker was caught indexing:\n{pool.logs()}"
            for owner in _leases(engine):
                victim = pool.worker_running(int(owner.rpartition(":")[2]))
                if victim is not None:
                    break
            else:
                time.sleep(0.1)
        killed = pool.kill(victim)
        assert killed and killed <= {*refreshes, backfill}, "the killed processes were not our runs"
        survivors = [r for r in [*refreshes, backfill] if r not in killed]

        # The surviving worker finishes: its runs take over the dead process's leases.
        finisher = pool.run("backfill/backfill", window)
        states = pool.wait([*survivors, finisher], timeout=300)
        unfinished = {pool.state(r)[0] for r in killed}
        logs = pool.logs()

    assert "COMPLETED" not in unfinished, "a killed run completed: the kill came too late to test anything"
    assert states[finisher][0] == "COMPLETED", f"{states}\n{logs}"
    assert all(kind in {"COMPLETED", "CANCELLED"} for kind, _ in states.values()), f"{states}\n{logs}"
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT status, count(*) FROM documents GROUP BY status")).all())
        leased = conn.execute(text("SELECT count(*) FROM documents WHERE lease_owner IS NOT NULL")).scalar_one()
        chunks = conn.execute(text("SELECT sum(chunk_count) FROM documents")).scalar_one()
    engine.dispose()
    assert statuses == {"indexed": ARTICLES} and leased == 0

    store = EdgeStore(tmp_path / "data" / "index" / "kup")
    points = [(p.id, p.payload) for p in store.scan()]
    ids = Counter(pid for pid, _ in points)
    assert max(ids.values()) == 1, "a point id is stored twice"
    chunk_keys = Counter((p["doc_id"], p["chunk_index"]) for _, p in points)
    assert max(chunk_keys.values()) == 1, "a chunk is stored under two ids"
    found = {pid: (p["doc_id"], p["chunk_index"], p["chunk_hash"]) for pid, p in points}
    expected = clean_points(postgres_url, tmp_path, dense, sparse)
    assert found.keys() - expected.keys() == set(), "points a clean run does not write"
    assert expected.keys() - found.keys() == set(), "points missing"
    assert found == expected and len(found) == chunks

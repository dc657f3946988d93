"""A long-lived searcher holds the Edge shard and yields it to writers in other processes; a rebuild switches it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from indexing import Changes, ChunkPoint, EdgeStore, SparseVector, Vectors, point_id

ROOT = Path(__file__).resolve().parents[2]


def points(names: list[str], seed: int) -> list[ChunkPoint]:
    """Unit vectors from a seed and one sparse term each: the same points in this process and in the other one."""
    rng = np.random.default_rng(seed)
    out = []
    for i, name in enumerate(names):
        v = rng.normal(size=384)
        v /= np.linalg.norm(v)
        payload = {"doc_id": name, "source": "news", "url": f"u/{name}", "chunk_index": 0, "text": name}
        out.append(ChunkPoint(point_id(name, 0), Vectors(v.tolist(), SparseVector([i + 1], [1.0])), payload))
    return out


def run_elsewhere(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a separate Python process (a refresh or a rebuild would be one)."""
    script = "from indexing import Changes, EdgeStore\nfrom tests.indexing.test_edge_searcher import points\n"
    script += textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def query(store: EdgeStore, seed: int, name_index: int, names: list[str]) -> list[str]:
    vec = points(names, seed)[name_index].vectors.dense
    return [h.payload["doc_id"] for h in store.search(vec, SparseVector([name_index + 1], [1.0]), limit=3)]


def test_a_held_searcher_yields_to_a_writer_in_another_process(tmp_path) -> None:
    path = tmp_path / "index" / "kup"
    names = [f"doc-{i}" for i in range(20)]
    store = EdgeStore(path).keep_open()
    try:
        store.apply(Changes(upserts=points(names, 1)))
        assert query(store, 1, 3, names)[0] == "doc-3"
        assert store._holder.shard is not None  # held between operations: no reopen per query

        started = time.perf_counter()
        done = run_elsewhere(
            f"""
            s = EdgeStore({str(path)!r})
            s.apply(Changes(upserts=points(["late"], 9)))
            print(s.count())
            """
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "21"
        assert time.perf_counter() - started < 60  # the holder let go; the writer did not wait out its timeout

        assert store.count() == 21  # the searcher sees the writer's point at once (per operation meanwhile)
        time.sleep(2.5)  # after the lease the searcher takes the shard back and holds it again
        assert query(store, 9, 0, ["late"])[0] == "late"
        assert store._holder.shard is not None and store._holder.reopens >= 2
    finally:
        store.close()
    assert store._holder is None


def test_a_rebuild_in_another_process_switches_the_searcher(tmp_path) -> None:
    path = tmp_path / "index" / "kup"
    old, new = [f"old-{i}" for i in range(5)], [f"new-{i}" for i in range(7)]
    store = EdgeStore(path).keep_open()
    try:
        store.apply(Changes(upserts=points(old, 1)))
        assert query(store, 1, 2, old)[0] == "old-2"
        done = run_elsewhere(
            f"""
            live = EdgeStore({str(path)!r})
            staging = live.staging()
            staging.apply(Changes(upserts=points({new!r}, 2)))
            live.promote(staging)
            """
        )
        assert done.returncode == 0, done.stderr
        assert path.is_symlink()
        assert store.count() == 7
        assert query(store, 2, 4, new)[0] == "new-4"
        time.sleep(2.5)
        assert query(store, 2, 5, new)[0] == "new-5" and store._holder.shard is not None
    finally:
        store.close()


def test_a_held_store_promotes_its_own_rebuild(tmp_path) -> None:
    path = tmp_path / "index" / "kup"
    store = EdgeStore(path).keep_open()
    try:
        store.apply(Changes(upserts=points(["a", "b"], 1)))
        staging = store.staging()
        staging.apply(Changes(upserts=points(["c"], 3)))
        store.promote(staging)
        assert store.count() == 1 and [p.payload["doc_id"] for p in store.scan()] == ["c"]
    finally:
        store.close()

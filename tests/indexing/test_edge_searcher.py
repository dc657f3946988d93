"""A long-lived searcher holds the Edge shard and serves it to writers in other processes; a rebuild switches it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from multiprocessing.connection import AuthenticationError, Client
from pathlib import Path

import numpy as np
import pytest

from indexing import Changes, ChunkPoint, EdgeStore, SparseVector, Vectors, point_id
from indexing.shard_service import decode, encode
from indexing.store import Fusion, Hit

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


def test_a_writer_in_another_process_sends_its_operations_to_the_holder(tmp_path) -> None:
    path = tmp_path / "index" / "kup"
    names = [f"doc-{i}" for i in range(20)]
    store = EdgeStore(path).keep_open()
    try:
        store.apply(Changes(upserts=points(names, 1)))
        assert query(store, 1, 3, names)[0] == "doc-3"
        held = store._holder.shard
        assert held is not None  # held between operations: no reopen per query

        done = run_elsewhere(
            f"""
            s = EdgeStore({str(path)!r})
            with s.session():  # a refresh's session: no lock taken, each operation goes to the holder
                s.apply(Changes(upserts=points(["late"], 9)))
                found = s.points_of(["late", "doc-3"])
                print(s.count(), len(found["late"]), len(found["doc-3"]), s._client.sent)
            """
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["21", "1", "1", "3"]  # the count, the points of each, 3 operations sent
        # The holder never let go of its shard: the write happened beside its searches, not instead of them.
        assert store._holder.shard is held and store._holder.reopens == 1
        assert query(store, 9, 0, ["late"])[0] == "late"
    finally:
        store.close()
    assert store._holder is None and not Path(str(path) + ".serve").exists()


def test_without_a_reachable_holder_a_writer_opens_the_shard_itself(tmp_path) -> None:
    path = tmp_path / "index" / "kup"
    store = EdgeStore(path)
    store.apply(Changes(upserts=points(["a"], 1)))
    # A holder that died without cleaning up: its card names a socket no one listens on.
    Path(str(path) + ".serve").write_text(json.dumps({"address": str(tmp_path / "gone.sock"), "key": "00", "pid": 1}))
    done = run_elsewhere(
        f"""
        s = EdgeStore({str(path)!r})
        s.apply(Changes(upserts=points(["b"], 2)))
        print(s.count(), s._client.sent)
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "0"]


def test_the_holder_answers_only_callers_with_its_key_and_only_with_data(tmp_path) -> None:
    path = tmp_path / "index" / "kup"
    store = EdgeStore(path).keep_open()
    try:
        store.apply(Changes(upserts=points(["a"], 1)))
        card = json.loads(Path(str(path) + ".serve").read_text())
        assert oct(Path(str(path) + ".serve").stat().st_mode & 0o777) == "0o600"
        with pytest.raises((AuthenticationError, EOFError, ConnectionError)):
            Client(card["address"], family="AF_UNIX", authkey=b"not the key").send_bytes(b"{}")
        with Client(card["address"], family="AF_UNIX", authkey=bytes.fromhex(card["key"])) as conn:
            # Only the store's own dataclasses are rebuilt from the wire; anything else is refused in one sentence.
            conn.send_bytes(json.dumps({"op": "count", "args": {"c": "Popen", "f": {}}}).encode())
            assert "malformed request" in json.loads(conn.recv_bytes())["error"]
            conn.send_bytes(json.dumps({"op": "shutdown", "args": {"m": {}}}).encode())
            assert "malformed request" in json.loads(conn.recv_bytes())["error"]
            conn.send_bytes(json.dumps({"op": "count", "args": {"m": {"source": None}}}).encode())
            assert json.loads(conn.recv_bytes()) == {"ok": 1}
        # An engine error in the holder is the caller's one-sentence StoreError.
        done = run_elsewhere(
            f"""
            from errors import StoreError
            from indexing import ChunkPoint, SparseVector, Vectors
            two_dims = Vectors([1.0, 0.0], SparseVector([1], [1.0]))  # the index holds 384
            bad = ChunkPoint("0" * 8 + "-0000-0000-0000-" + "0" * 12, two_dims, {{}})
            try:
                EdgeStore({str(path)!r}).apply(Changes(upserts=[bad]))
            except StoreError as exc:
                print(exc)
            """
        )
        assert done.returncode == 0, done.stderr
        assert "apply failed in the process holding the index" in done.stdout and len(done.stdout.splitlines()) == 1
        assert store.count() == 1
    finally:
        store.close()


def test_the_wire_keeps_payloads_as_data() -> None:
    hit = Hit("p", 0.5, {"c": "Changes", "f": {}, "m": [1], "t": "2026-01-01", "when": "x"})
    changes = Changes(upserts=[ChunkPoint("p", Vectors([0.25], SparseVector([3], [0.5])), {"m": {"c": 1}})],
                      payloads=[("p", {"t": 1})], deletes=["q"])  # fmt: skip
    args = {"at": datetime(2026, 12, 7, 12, tzinfo=UTC), "fusion": Fusion(k=7, weights=(2.0, 1.0))}
    for value in (hit, changes, args):
        assert decode(json.loads(json.dumps(encode(value)))) == value


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


def test_a_background_holder_gives_the_shard_to_a_serving_process(tmp_path) -> None:
    """The listener holds the index until kup api starts; then the API holds it and the listener sends to it."""
    path = tmp_path / "index" / "kup"
    script = "from indexing import Changes, EdgeStore\nfrom tests.indexing.test_edge_searcher import points\n"
    script += textwrap.dedent(
        f"""
        s = EdgeStore({str(path)!r}).keep_open(background=True)
        s.apply(Changes(upserts=points(["a"], 1)))
        print(s._holder.shard is not None, flush=True)
        input()
        s.apply(Changes(upserts=points(["b"], 2)))
        print(s._holder.shard is None, s._client.sent, flush=True)
        s.close()
        """
    )
    listener = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    api = EdgeStore(path).keep_open()
    try:
        assert listener.stdout.readline().strip() == "True"  # the background process holds it
        assert api.count() == 1  # sent to the listener, or run under the lock while it lets go
        deadline = time.monotonic() + 30
        while api._holder.shard is None and time.monotonic() < deadline:
            time.sleep(0.05)
            assert api.count() == 1
        assert api._holder.shard is not None  # the foreground process holds it now
        listener.stdin.write("go\n")
        listener.stdin.flush()
        assert listener.stdout.readline().split() == ["True", "1"]  # the listener's write went to the API
        assert api.count() == 2 and api._holder.reopens == 1
        assert listener.wait(timeout=30) == 0
    finally:
        listener.kill()
        api.close()

"""Kill a refresh with SIGKILL in the middle of indexing; the next run ends with exactly a clean run's index."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexing import EdgeStore

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

KUP = [sys.executable, "-m", "cli.main"]


def run_env(pipeline, data_dir: Path) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return {
        **os.environ,
        **pipeline.env(),
        "KUP_DATA_DIR": str(data_dir),
        "KUP_INDEX_BATCH_DOCS": "1",  # many small batches, so there is a "middle" to kill in
        "PREFECT_API_URL": PREFECT_API_URL.value(),
    }


def indexed_count(data_dir: Path) -> int:
    db = data_dir / "catalog.db"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM documents WHERE status = 'indexed'").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def snapshot(data_dir: Path) -> dict[str, dict]:
    return {p.id: p.payload for p in EdgeStore(data_dir / "index" / "kup").scan()}


def test_sigkill_during_indexing_then_rerun_equals_clean_run(pipeline, tmp_path) -> None:
    pipeline.publish("/world", 12)
    pipeline.write_sources({"world": "/world"})
    root = Path(__file__).resolve().parents[2]
    crashed = tmp_path / "crashed"

    process = subprocess.Popen(
        KUP + ["refresh"],
        env=run_env(pipeline, crashed),
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while indexed_count(crashed) < 2:
        assert process.poll() is None, "the refresh finished before it could be killed"
        assert time.monotonic() < deadline, "indexing never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = indexed_count(crashed)
    assert 2 <= killed_at < 12

    rerun = subprocess.run(
        KUP + ["refresh", "--json"],
        env=run_env(pipeline, crashed),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert indexed_count(crashed) == 12

    clean = tmp_path / "clean"
    fresh = subprocess.run(
        KUP + ["refresh"], env=run_env(pipeline, clean), cwd=root, capture_output=True, text=True, timeout=300
    )
    assert fresh.returncode == 0, fresh.stderr[-2000:]

    crashed_points, clean_points = snapshot(crashed), snapshot(clean)
    assert crashed_points.keys() == clean_points.keys()  # same point ids: none missing, none extra
    assert crashed_points == clean_points  # and the same payloads
    texts = [p["text"] for p in crashed_points.values()]
    assert len(texts) == len(set(zip(texts, [p["doc_id"] for p in crashed_points.values()], strict=True)))

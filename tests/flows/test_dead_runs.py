"""A refresh whose process dies (SIGKILL while `kup up` serves, Ctrl-C of `kup up` itself then a restart) does not
hold the refresh deployment's slot: within about two minutes the run is Crashed with a reason, and the next run of
the deployment starts instead of ending "Cancelled - Deployment concurrency limit reached"."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from fixtures import ROOT, start_kup_up
from fixtures.kup_up import KupUp
from flows.dead_runs import DEAD_AFTER, SWEEP_SECONDS

pytestmark = pytest.mark.slow

GONE = "the process running it is gone"
WITHIN = DEAD_AFTER + SWEEP_SECONDS + 60  # the silence that makes a run dead, a sweep, and a busy machine's slack


@pytest.fixture
def hanging_feed() -> Iterator[str]:
    """A feed URL whose server accepts the connection and never answers: a refresh of it stays Running."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        server.settimeout(0.5)
        while not done.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/feed.xml"
    done.set()
    for conn in held:
        conn.close()
    server.close()


def _state(up: KupUp, run_id: str) -> dict:
    return httpx.get(f"{up.api}/flow_runs/{run_id}", timeout=10).json()["state"]


def wait_for(what: str, check, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if found := check():
                return found
        except httpx.HTTPError:
            pass  # a server restarting or busy with SQLite
        time.sleep(2)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def running_refresh(up: KupUp, exclude: set[str] = frozenset()) -> dict:
    """A refresh run that is Running (triggered by hand now; a scheduled one may be it)."""
    up.trigger("refresh")
    return wait_for(
        "a refresh run reached Running",
        lambda: next(
            (r for r in up.flow_runs("refresh") if r["state_type"] == "RUNNING" and r["id"] not in exclude), None
        ),
        timeout=120,
    )


def crashed_with_reason(up: KupUp, run_id: str, reason: str = GONE) -> dict:
    state = wait_for(
        f"run {run_id} marked Crashed",
        lambda: (s := _state(up, run_id))["type"] == "CRASHED" and s,
        timeout=WITHIN,
    )
    assert reason in state["message"], state
    return state


def stopped_status(up: KupUp) -> subprocess.CompletedProcess | None:
    """`kup status` when its first line says refreshes have stopped, else None."""
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "status"], env=up.env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    return done if done.stdout.startswith("kup: refreshes have stopped") else None


def latest_status(up: KupUp) -> str:
    query = {"artifacts": {"key": {"any_": ["kup-status"]}}, "sort": "CREATED_DESC", "limit": 1}
    [newest] = httpx.post(f"{up.api}/artifacts/filter", json=query, timeout=10).json()
    return newest["data"]


def kill_server(api: str) -> None:
    """Stop a Prefect server left running by a `kup up` that was killed (it runs in its own session)."""
    port = api.rsplit(":", 1)[1].split("/")[0]
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"server" in cmdline and b"--port" in cmdline and port.encode() in cmdline:
            os.kill(int(entry.name), signal.SIGKILL)


def test_a_killed_or_interrupted_refresh_frees_its_slot_and_the_next_run_starts(tmp_path, hanging_feed) -> None:
    (tmp_path / "sources.yaml").write_text(
        f"sources:\n  - name: stuck\n    url: {hanging_feed}\n    allow_private_addresses: true\n"
    )
    settings = {
        "KUP_DATA_DIR": str(tmp_path / "data"),
        "KUP_SOURCES_FILE": str(tmp_path / "sources.yaml"),
        "KUP_READ_TIMEOUT": "900",  # the fetch hangs for the whole test
        "KUP_TOTAL_TIMEOUT": "900",
    }
    crashes, seen = [], set()
    up = start_kup_up(settings, own_group=True)
    try:
        # 1. The flow-run process is killed (OOM-like) while `kup up` serves: the runner sees it exit.
        run = running_refresh(up)
        seen.add(run["id"])
        os.kill(wait_for("the run's process found", lambda: up.run_process(run["id"]), timeout=30), signal.SIGKILL)
        crashes.append(crashed_with_reason(up, run["id"], reason="SIGKILL"))

        # 2. `kup up` and its runs are killed at once (a power cut for them); the server, its own session, lives on.
        run = running_refresh(up, exclude=seen)
        seen.add(run["id"])
        os.killpg(up.process.pid, signal.SIGKILL)
        up.process.wait(timeout=30)
        # Nothing serves the schedule and a dead run holds the slot: `kup status` says so first, and exits 1.
        said = wait_for("`kup status` said refreshes stopped", lambda: stopped_status(up), timeout=WITHIN)
        assert said.returncode == 1 and "Traceback" not in said.stdout + said.stderr
        up = start_kup_up(settings, api=up.api, own_group=True)
        assert "Using the Prefect server" in up.output()
        # Found by its silence: by the zombie automation on the server or by the restarted `kup up`, whichever first
        crashes.append(crashed_with_reason(up, run["id"]))
        # `kup up` says it too, in its terminal and in the kup-status artifact the dashboard shows
        wait_for("`kup up` said refreshes stopped", lambda: "kup: refreshes have stopped" in up.output(), 60)
        assert "# kup: STOPPED" in latest_status(up)

        # 3. Ctrl-C of `kup up` in its terminal while a run hangs; `kup up` stops, the server stays (not its own).
        run = running_refresh(up, exclude=seen)
        seen.add(run["id"])
        # Prefect's runner pauses its seven deployments on the way out, one API call each; on a busy 2-core machine
        # with the server on SQLite that took over 60 s twice in a full suite (seconds when run alone).
        output = up.interrupt(timeout=180)
        assert "Traceback" not in output, output
        up = start_kup_up(settings, api=up.api, own_group=True)
        if _state(up, run["id"])["type"] != "CRASHED":  # left Running (or Cancelling) with no process
            crashes.append(crashed_with_reason(up, run["id"]))
        else:
            crashes.append(_state(up, run["id"]))

        # The slot is free again: a new run starts, and no run was cancelled for a slot a dead run held once that
        # run was found dead.
        running_refresh(up, exclude=seen)
        found_dead = max(datetime.fromisoformat(c["timestamp"]) for c in crashes)
        late = [
            r
            for r in up.flow_runs("refresh")
            if r["state_type"] == "CANCELLED"
            and "concurrency limit" in (r["state"]["message"] or "")
            and datetime.fromisoformat(r["state"]["timestamp"]) > found_dead + timedelta(seconds=5)
        ]
        assert not late, late
    finally:
        if up.process.poll() is None:
            up.stop()
        kill_server(up.api)

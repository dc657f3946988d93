"""`kup up` as a user runs it, in a child process on a free port, for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class KupUp:
    process: subprocess.Popen
    api: str
    env: dict[str, str]  # the environment it runs with (KUP_* and no stray PREFECT_*)
    log: Path

    @property
    def dashboard(self) -> str:
        return self.api.removesuffix("/api")

    def deployments(self) -> list[dict]:
        return httpx.post(f"{self.api}/deployments/filter", json={}, timeout=5).json()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> str:
        """Stop it (and the server it started) as Ctrl-C would; returns what it printed."""
        self.process.terminate()
        self.process.wait(timeout=60)
        return self.output()


def start_kup_up(
    settings: dict[str, str], *, serving: set[str] = frozenset({"refresh"}), timeout: float = 120
) -> KupUp:
    """Start `kup up` with ``settings`` (KUP_* variables) and wait until it serves the named deployments."""
    api = f"http://127.0.0.1:{free_port()}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(settings, KUP_PREFECT_API_URL=api, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    log = Path(tempfile.mkstemp(prefix="kup-up-", suffix=".log")[1])
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", "up"], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    up = KupUp(process, api, env, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"kup up exited early:\n{up.output()}")
        if time.monotonic() > deadline:
            up.stop()
            raise AssertionError(f"kup up did not serve {sorted(serving)} within {timeout:.0f}s")
        try:
            if serving <= {d["name"] for d in up.deployments()}:
                return up
        except httpx.HTTPError:
            pass
        time.sleep(1)

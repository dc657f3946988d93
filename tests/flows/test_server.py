"""Serving deployments: SIGTERM stops the runner as cleanly as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

SERVE = """
from flows.deployments import read_specs, runner_deployments
from flows.server import serve_deployments
specs = [s for s in read_specs() if s.name == "reindex"]
print("serving", flush=True)
serve_deployments(runner_deployments(specs))
print("stopped cleanly", flush=True)
"""


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_sigterm_stops_serving_without_an_unawaited_coroutine_or_traceback(tmp_path) -> None:
    from prefect.settings import PREFECT_API_URL

    api = PREFECT_API_URL.value()
    env = {**os.environ, "PREFECT_API_URL": api, "KUP_DATA_DIR": str(tmp_path / "data")}
    started = datetime.now(UTC)
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )

    def served_by_this_process() -> bool:
        # The session's Prefect server may hold deployments of earlier tests: wait for this process's own.
        found = httpx.post(f"{api}/deployments/filter", json={}, timeout=5).json()
        return any(datetime.fromisoformat(d["updated"].replace("Z", "+00:00")) >= started for d in found)

    deadline = time.monotonic() + 120
    while not served_by_this_process():
        assert process.poll() is None and time.monotonic() < deadline, "the deployment was never served"
        time.sleep(0.5)
    time.sleep(2)  # the runner's polling loop is running now (SIGTERM ends it cleanly even before that)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)

    assert process.returncode == 0, output[-3000:]
    assert "stopped cleanly" in output
    assert "never awaited" not in output and "Traceback" not in output


def test_the_pipelines_prefect_environment_is_valid_prefect_settings(tmp_path, monkeypatch) -> None:
    """Every variable kup sets for its Prefect processes is a setting Prefect reads, with the value kup means."""
    from prefect.settings import Settings as PrefectSettings

    from flows.server import prefect_env
    from flows.settings import Settings

    env = prefect_env(Settings(data_dir=tmp_path), api_url="http://127.0.0.1:4200/api")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    read = PrefectSettings()
    assert read.runner.poll_frequency == 2  # event-triggered runs start within ~2 s, not Prefect's 10
    assert str(read.home) == env["PREFECT_HOME"] and str(read.api.url) == env["PREFECT_API_URL"]
    assert read.server.analytics_enabled is False


def test_a_task_cancelled_as_kup_up_stops_is_not_logged_as_an_error() -> None:
    """Stopping `kup up` while a flow run holds a runner control-channel connection cancels that connection's task;
    asyncio would log it with a traceback. Any other asyncio error keeps its record."""
    import asyncio
    import logging

    from flows.server import _QuietCancelledAtShutdown

    def record(exc: BaseException) -> logging.LogRecord:
        exc_info = (type(exc), exc, None)
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "Exception in callback", None, exc_info)

    quiet = _QuietCancelledAtShutdown()
    assert quiet.filter(record(asyncio.CancelledError())) is False
    assert quiet.filter(record(ConnectionResetError("peer gone"))) is True

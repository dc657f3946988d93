"""prefect.yaml: every entrypoint imports, its parameters validate, and `kup up` serves it with its schedule."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from flows.deployments import PREFECT_YAML, load_flow, read_specs, runner_deployments

ROOT = Path(__file__).resolve().parents[2]


# What a user passes when running the manual deployments.
RUN_PARAMETERS = {"backfill": {"source": "news", "since": "2026-11-01T00:00:00+00:00"}}


def test_every_entrypoint_imports_and_its_parameters_validate() -> None:
    specs = read_specs()
    assert {s.name for s in specs} >= {"refresh", "backfill", "reindex", "finetune"}
    for spec in specs:
        flow = load_flow(spec.entrypoint)
        validated = flow.validate_parameters({**RUN_PARAMETERS.get(spec.name, {}), **spec.parameters})
        assert spec.flow_name == flow.name
        if spec.name == "backfill":
            assert validated["since"].year == 2026 and validated["until"] is None


def test_declarations_are_what_prefect_deploy_expects() -> None:
    raw = yaml.safe_load(PREFECT_YAML.read_text())
    for deployment in raw["deployments"]:
        assert deployment["work_pool"]["name"]
        for schedule in deployment.get("schedules", []):
            assert len({"interval", "cron", "rrule"} & schedule.keys()) == 1
    refresh = next(d for d in raw["deployments"] if d["name"] == "refresh")
    assert refresh["schedules"] == [{"interval": 60}]
    assert refresh["concurrency_limit"]["limit"] == 1


def test_runner_deployments_carry_schedules_and_limits() -> None:
    [refresh] = [d for d in runner_deployments(read_specs()) if d.name == "refresh"]
    assert refresh.schedules[0].schedule.interval.total_seconds() == 60
    assert refresh.concurrency_limit == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_kup_up_starts_a_server_and_serves_the_deployments(tmp_path) -> None:
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")},
        "KUP_DATA_DIR": str(tmp_path / "data"),
        "KUP_SOURCES_FILE": str(tmp_path / "sources.yaml"),
        "KUP_PREFECT_API_URL": api,
    }
    env.pop("PREFECT_HOME", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "up"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        deployments = []
        while time.monotonic() < deadline and not deployments:
            assert process.poll() is None, process.stdout.read()
            try:
                deployments = httpx.post(f"{api}/deployments/filter", json={}, timeout=2).json()
            except httpx.HTTPError:
                pass
            time.sleep(1)
        names = {d["name"] for d in deployments}
        assert "refresh" in names
        refresh = next(d for d in deployments if d["name"] == "refresh")
        assert refresh["schedules"][0]["schedule"]["interval"] == 60.0
        assert refresh["concurrency_limit"] == 1 or refresh.get("global_concurrency_limit", {}).get("limit") == 1
        assert (tmp_path / "data" / "prefect" / "prefect.db").exists()  # the server keeps its state in the data dir
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=60)
    assert f"Dashboard: http://127.0.0.1:{port}" in output
    assert "refresh/refresh" in output
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{api}/health", timeout=2)  # the server kup started is stopped with it

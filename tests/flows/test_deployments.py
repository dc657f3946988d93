"""prefect.yaml: every entrypoint imports, its parameters validate, and `kup up` serves it with its schedule."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml

from fixtures import start_kup_up
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


@pytest.mark.slow
def test_kup_up_starts_a_server_and_serves_the_deployments(tmp_path) -> None:
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    settings = {"KUP_DATA_DIR": str(tmp_path / "data"), "KUP_SOURCES_FILE": str(tmp_path / "sources.yaml")}
    up = start_kup_up(settings, serving={"refresh", "backfill", "reindex", "finetune"})
    try:
        refresh = next(d for d in up.deployments() if d["name"] == "refresh")
        assert refresh["schedules"][0]["schedule"]["interval"] == 60.0
        assert refresh["concurrency_limit"] == 1 or refresh.get("global_concurrency_limit", {}).get("limit") == 1
        assert (tmp_path / "data" / "prefect" / "prefect.db").exists()  # the server keeps its state in the data dir
    finally:
        output = up.stop()
    assert f"Dashboard: {up.dashboard}" in output
    assert "refresh/refresh" in output
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{up.api}/health", timeout=2)  # the server kup started is stopped with it

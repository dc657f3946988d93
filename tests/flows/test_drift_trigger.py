"""The drift trigger: prefect.yaml declares an automation on the finetune deployment, and on a real Prefect server
(the test harness, whose triggers and actions services run) a kup.drift.exceeded event makes it create a finetune
run while kup.drift.measured alone starts nothing. (The measurement itself: tests/training/test_drift.py.)"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from flows.deployments import read_specs, runner_deployments


def finetune_spec():
    [spec] = [s for s in read_specs() if s.name == "finetune"]
    return spec


def test_the_finetune_deployment_declares_the_drift_automation() -> None:
    [deployment] = runner_deployments([finetune_spec()])
    [trigger] = deployment.triggers
    assert trigger.name == "finetune-on-drift" and trigger.enabled
    assert trigger.expect == {"kup.drift.exceeded"}
    assert trigger.match.model_dump()["prefect.resource.id"] == "kup.adapter.*"
    owner = uuid.uuid4()
    trigger.set_deployment_id(owner)
    [action] = trigger.as_automation().actions
    assert action.type == "run-deployment" and action.deployment_id == owner


def post_event(api: str, name: str, resource_id: str, payload: dict) -> None:
    event = {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": name,
        "resource": {"prefect.resource.id": resource_id},
        "payload": payload,
    }
    httpx.post(f"{api}/events", json=[event], timeout=10).raise_for_status()


@pytest.mark.usefixtures("prefect_harness")
def test_a_drift_event_makes_the_automation_run_the_finetune_deployment() -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.settings import PREFECT_API_URL

    spec = finetune_spec()
    spec.name = f"finetune-drift-{uuid.uuid4().hex[:6]}"  # its own deployment on the shared test server
    [deployment] = runner_deployments([spec])
    deployment_id = deployment.apply()
    api = PREFECT_API_URL.value()

    with get_client(sync_client=True) as client:
        owned = [
            a
            for a in client.read_automations_by_name("finetune-on-drift")
            if a.actions[0].deployment_id == deployment_id
        ]
        assert len(owned) == 1 and owned[0].trigger.expect == {"kup.drift.exceeded"}
        runs = DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))

        # A measurement under the threshold starts nothing; one over it starts a fine-tune.
        post_event(api, "kup.drift.measured", "kup.adapter.test", {"ratio": 1.01, "threshold": 1.25})
        time.sleep(3)
        assert client.read_flow_runs(deployment_filter=runs) == []
        post_event(api, "kup.drift.exceeded", "kup.adapter.test", {"ratio": 1.6, "threshold": 1.25})
        deadline = time.monotonic() + 30
        started = []
        while not started and time.monotonic() < deadline:
            time.sleep(0.5)
            started = client.read_flow_runs(deployment_filter=runs)
    assert len(started) == 1 and started[0].deployment_id == deployment_id

"""Runs whose process is gone: found by their silence and marked Crashed, so their concurrency slot is freed.

A flow run of a deployment holds the deployment's concurrency slot from Pending until it reaches a final state.
When its process dies without saying so (Ctrl-C of ``kup up`` mid-run, SIGKILL, an OOM kill, a power cut), the run
stays Running on the server and, with ``collision_strategy: CANCEL_NEW``, every later scheduled run is cancelled
("Deployment concurrency limit reached"). Prefect's answer is heartbeats: with ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``
set, a run's engine emits ``prefect.flow-run.heartbeat`` every ``HEARTBEAT_SECONDS``. A run of a kup deployment in
Pending, Running or Cancelling with no heartbeat (nor state change) for ``DEAD_AFTER`` seconds is dead: it is set
Crashed with a message saying why, which releases its slot (Prefect's ``ReleaseFlowConcurrencySlots``).

``kup up`` does this at start and every ``SWEEP_SECONDS`` while serving (``flows.health.Monitor``);
``zombie_automation`` is the same rule as a Prefect automation (Prefect's documented "detect zombie flows"), for
deployments run by workers without ``kup up``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from flows.prefect_http import prefect_client

HEARTBEAT_SECONDS = 30  # Prefect's minimum
DEAD_AFTER = 3 * HEARTBEAT_SECONDS  # three heartbeats missed
SWEEP_SECONDS = 30
LIVE_STATES = ("PENDING", "RUNNING", "CANCELLING")
HEARTBEAT = "prefect.flow-run.heartbeat"
ZOMBIES = "kup: crash runs whose process is gone"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadRun:
    id: str
    name: str
    deployment: str
    state: str
    last_sign: datetime  # the later of its last heartbeat and its last state change

    def reason(self, now: datetime) -> str:
        silent = round((now - self.last_sign).total_seconds())
        return (
            f"no heartbeat since {self.last_sign:%H:%M:%S} UTC ({silent} s): the process running it is gone "
            "(stopped with Ctrl-C, killed, out of memory, or its machine went down); kup marked it crashed and "
            "freed its concurrency slot"
        )


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _live_runs(client: httpx.Client, deployments: list[str]) -> list[dict]:
    body = {
        "deployments": {"name": {"any_": deployments}},
        "flow_runs": {"state": {"type": {"any_": list(LIVE_STATES)}}, "tags": {"all_": ["kup"]}},
        "limit": 200,
    }
    response = client.post("/flow_runs/filter", json=body)
    response.raise_for_status()
    return response.json()


def _deployment_names(client: httpx.Client, runs: list[dict]) -> dict[str, str]:
    ids = sorted({r["deployment_id"] for r in runs if r.get("deployment_id")})
    if not ids:
        return {}
    response = client.post("/deployments/filter", json={"deployments": {"id": {"any_": ids}}})
    response.raise_for_status()
    return {d["id"]: d["name"] for d in response.json()}


def _last_heartbeat(client: httpx.Client, run_id: str, since: datetime) -> datetime | None:
    """The run's newest heartbeat since ``since`` (events come newest first), or None."""
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventResourceFilter

    wanted = EventFilter(
        occurred=EventOccurredFilter(since=since, until=datetime.now(UTC) + timedelta(minutes=1)),
        event=EventNameFilter(name=[HEARTBEAT]),
        resource=EventResourceFilter(id=[f"prefect.flow-run.{run_id}"]),
    )
    response = client.post("/events/filter", json={"filter": wanted.model_dump(mode="json"), "limit": 1})
    response.raise_for_status()
    events = response.json().get("events") or []
    return _when(events[0]["occurred"]) if events else None


def find_dead_runs(
    api_url: str, deployments: list[str], *, dead_after: float = DEAD_AFTER, now: datetime | None = None
) -> list[DeadRun]:
    """Runs of ``deployments`` (names) in a live state with no sign of life for ``dead_after`` seconds."""
    now = now or datetime.now(UTC)
    with prefect_client(api_url) as client:
        runs = _live_runs(client, deployments)
        if not runs:
            return []
        names = _deployment_names(client, runs)
        since = now - timedelta(seconds=dead_after)
        beats = {r["id"]: beat for r in runs if (beat := _last_heartbeat(client, r["id"], since))}
    dead = []
    for run in runs:
        state = run.get("state") or {}
        changed = _when(state.get("timestamp")) or _when(run.get("start_time")) or now
        last_sign = max(changed, beats.get(run["id"], changed))
        if (now - last_sign).total_seconds() >= dead_after:
            deployment = names.get(run.get("deployment_id"), "?")
            dead.append(DeadRun(run["id"], run["name"], deployment, state.get("type", "?"), last_sign))
    return dead


def crash(api_url: str, run: DeadRun, message: str) -> bool:
    """Set ``run`` Crashed with ``message``; True when the server accepted it (a run that ended meanwhile is not)."""
    body = {"state": {"type": "CRASHED", "name": "Crashed", "message": message}, "force": False}
    with prefect_client(api_url) as client:
        response = client.post(f"/flow_runs/{run.id}/set_state", json=body)
    response.raise_for_status()
    return response.json().get("status") == "ACCEPT"


def reap(api_url: str, deployments: list[str], *, dead_after: float = DEAD_AFTER) -> list[DeadRun]:
    """Mark every dead run of ``deployments`` Crashed; returns those that were. A server that does not answer
    (busy, restarting) is asked again at the next sweep: nothing here raises for it."""
    now = datetime.now(UTC)
    crashed = []
    try:
        for run in find_dead_runs(api_url, deployments, dead_after=dead_after, now=now):
            if crash(api_url, run, run.reason(now)):
                crashed.append(run)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        log.warning(
            "could not look for runs left behind by a stopped process (next try in %s s): %s", SWEEP_SECONDS, exc
        )
    return crashed


def zombie_automation():
    """Prefect's "detect zombie flows" automation for kup's runs: a run that sent a heartbeat and then nothing
    (no heartbeat, no final state) for ``DEAD_AFTER`` seconds is set Crashed."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=ZOMBIES,
        description="A kup flow run stopped sending heartbeats: its process is gone; mark it Crashed to free its slot.",
        trigger=EventTrigger(
            after={HEARTBEAT},
            expect={HEARTBEAT, *(f"prefect.flow-run.{s}" for s in ("Completed", "Failed", "Cancelled", "Crashed"))},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "tag", "prefect.resource.id": "prefect.tag.kup"},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=DEAD_AFTER),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {DEAD_AFTER} s: the process running it is gone (kup's zombie automation)",
            )
        ],
    )

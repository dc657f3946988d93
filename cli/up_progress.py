"""What ``kup up`` says while it waits: when the first scheduled run of each served deployment starts, so the
minute before the first refresh is not silent."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import httpx
from rich.console import Console

from flows.deployments import DeploymentSpec
from flows.prefect_http import first_scheduled_run, first_started_run, prefect_client
from flows.server import dashboard_url

WAIT_FOR_SCHEDULE = 180.0  # seconds to look for the first scheduled run (the scheduler creates them within a minute)


def schedule_words(spec: DeploymentSpec) -> str:
    """A deployment's schedules in words: ``every 60 s``, ``cron 0 3 * * * (UTC)``."""
    words = []
    for schedule in spec.schedules:
        if "interval" in schedule:
            words.append(f"every {schedule['interval']} s")
        elif "cron" in schedule:
            words.append(f"cron {schedule['cron']} ({schedule.get('timezone', 'UTC')})")
        elif "rrule" in schedule:
            words.append(f"rrule {schedule['rrule']}")
    return ", ".join(words)


def announce_first_run(api_url: str, specs: list[DeploymentSpec], console: Console) -> threading.Thread | None:
    """In the background, print when the first scheduled refresh starts (or that none was scheduled in time)."""
    [refresh] = [spec for spec in specs if spec.name == "refresh"] or [None]
    if refresh is None or not refresh.schedules:
        return None

    began = datetime.now(UTC)

    def watch() -> None:
        deadline = time.monotonic() + WAIT_FOR_SCHEDULE
        while (when := first_scheduled_run(api_url, refresh.name)) is None:
            if time.monotonic() > deadline:
                console.print(
                    f"No refresh scheduled after {WAIT_FOR_SCHEDULE:.0f} s; `kup refresh` runs one now", markup=False
                )
                return
            time.sleep(2)
        wait = max(0, round((when - datetime.now(UTC)).total_seconds()))
        console.print(
            f"First refresh scheduled for {when.astimezone(UTC):%H:%M:%S} UTC (in {wait} s; it starts once its "
            f"process has loaded), then {schedule_words(refresh)}; each run shows in the dashboard and `kup status`",
            markup=False,
        )
        deadline = time.monotonic() + wait + WAIT_FOR_SCHEDULE
        while time.monotonic() < deadline:
            if (run := first_started_run(api_url, refresh.name, began)) is not None:
                started = datetime.fromisoformat(run["start_time"].replace("Z", "+00:00"))
                console.print(
                    f"First refresh started at {started.astimezone(UTC):%H:%M:%S} UTC: "
                    f"{dashboard_url(api_url)}/runs/flow-run/{run['id']} (its Artifacts tab has the kup-status "
                    "report)",
                    markup=False,
                )
                return
            time.sleep(2)

    thread = threading.Thread(target=watch, name="kup-up-first-run", daemon=True)
    thread.start()
    return thread


def long_lived_jobs(sources: list) -> list[str]:
    """The long-lived deployments this pipeline has work for: ``listen`` (a source says ``events: notify``) and
    ``watch`` (a feed has ``poll_seconds``)."""
    from connectors.sources import SqlSource
    from indexing.watch import hot_feeds

    jobs = []
    if any(isinstance(s, SqlSource) and s.events == "notify" for s in sources):
        jobs.append("listen")
    if hot_feeds(sources):
        jobs.append("watch")
    return jobs


def start_now(
    api_url: str, deployments: list[str], console: Console, timeout: float = 120.0
) -> threading.Thread | None:
    """In the background, once ``kup up`` serves them, start a run of each of ``deployments`` that has none
    running: their schedule slots fall on round 10 minutes, and nothing should wait for one to listen."""
    if not deployments:
        return None

    def start_one(client: httpx.Client, deployment: dict) -> None:
        live = client.post(
            "/flow_runs/filter",
            json={
                "deployments": {"id": {"any_": [deployment["id"]]}},
                "flow_runs": {"state": {"type": {"any_": ["PENDING", "RUNNING"]}}},
                "limit": 1,
            },
        ).json()
        if not live:
            client.post(f"/deployments/{deployment['id']}/create_flow_run", json={}).raise_for_status()
            console.print(f"Started {deployment['name']} now (its slots are every 10 min)", markup=False)

    def start() -> None:
        deadline = time.monotonic() + timeout
        pending = list(deployments)
        while pending and time.monotonic() < deadline:
            try:
                with prefect_client(api_url) as client:
                    found = client.post("/deployments/filter", json={"deployments": {"name": {"any_": pending}}}).json()
                    for deployment in found:
                        start_one(client, deployment)
                        pending.remove(deployment["name"])
            except (httpx.HTTPError, ValueError, KeyError):
                pass  # the server is busy registering the deployments: asked again in a moment
            time.sleep(2)

    thread = threading.Thread(target=start, name="kup-up-long-lived", daemon=True)
    thread.start()
    return thread

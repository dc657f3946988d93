"""Is the pipeline still refreshing? One verdict, said first by ``kup status``, kept in the ``kup-status`` artifact
by ``kup up`` while refreshes are not completing, and exported by ``/metrics`` (``kup_refresh_overdue``).

The verdict, worst first:
- **stopped**: the scheduled refreshes are not completing: a run whose process is gone holds the slot, the latest
  scheduled runs ended Cancelled or Crashed or are late (nothing serves them), or no refresh has completed for
  ``OVERDUE_INTERVALS`` schedule intervals;
- **stale**: refreshes complete, but a source is failing or backing off (the exit code of ``kup refresh``);
- **refreshing**: a refresh is running (its process alive), the scheduled runs it overlaps being skipped;
- **not scheduled**: no Prefect server answers, or the refresh schedule is paused: nothing refreshes by itself;
- **healthy**.
``exit_code`` is 1 for the first two, 0 otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from errors.durations import human_duration
from flows.dead_runs import SWEEP_SECONDS, DeadRun, find_dead_runs, reap
from flows.deployments import DeploymentSpec
from flows.prefect_http import prefect_client
from flows.settings import Settings

if TYPE_CHECKING:
    from indexing import Catalog

log = logging.getLogger(__name__)

SCHEDULED_REFRESH = "refresh"
OVERDUE_INTERVALS = 3  # completed refreshes missed before "stopped"
MIN_OVERDUE_SECONDS = 180.0
BAD_ENDINGS = ("CANCELLED", "CRASHED")
RECENT_RUNS = 10


def refresh_every(specs: list[DeploymentSpec]) -> float | None:
    """The refresh deployment's schedule interval in seconds (the shortest, if several), None without one."""
    for spec in specs:
        if spec.name == SCHEDULED_REFRESH:
            intervals = [float(s["interval"]) for s in spec.schedules if "interval" in s]
            return min(intervals) if intervals else None
    return None


def overdue_after(every: float) -> float:
    return max(OVERDUE_INTERVALS * every, MIN_OVERDUE_SECONDS)


@dataclass(frozen=True)
class Schedule:
    """What the Prefect server says of the refresh deployment: whether it is scheduled, and its recent runs."""

    reachable: bool
    active: bool = False
    runs: tuple[dict[str, Any], ...] = ()  # newest first: scheduled runs that are finished or late
    running: tuple[dict[str, Any], ...] = ()  # runs in Pending or Running with a live process
    dead: tuple[DeadRun, ...] = ()  # runs left Running by a process that is gone (holding the slot)


def read_schedule(api_url: str, timeout: float = 5.0) -> Schedule:
    """The refresh deployment's schedule state and latest scheduled runs; ``reachable=False`` when no server
    answers (or it has no such deployment)."""
    try:
        with prefect_client(api_url, timeout) as client:
            found = client.post(
                "/deployments/filter", json={"deployments": {"name": {"any_": [SCHEDULED_REFRESH]}}}
            ).json()
            if not found:
                return Schedule(reachable=True)
            deployment = found[0]
            active = not deployment.get("paused") and any(s.get("active") for s in deployment.get("schedules") or [])
            body = {
                "deployments": {"id": {"any_": [deployment["id"]]}},
                "flow_runs": {
                    "state": {"type": {"any_": ["COMPLETED", "FAILED", *BAD_ENDINGS, "SCHEDULED"]}},
                    "expected_start_time": {"before_": datetime.now(UTC).isoformat()},
                },
                "sort": "EXPECTED_START_TIME_DESC",
                "limit": RECENT_RUNS,
            }
            runs = client.post("/flow_runs/filter", json=body).json()
            body = {
                "deployments": {"id": {"any_": [deployment["id"]]}},
                "flow_runs": {"state": {"type": {"any_": ["PENDING", "RUNNING"]}}},
                "limit": 20,
            }
            live = client.post("/flow_runs/filter", json=body).json()
        dead = tuple(find_dead_runs(api_url, [SCHEDULED_REFRESH]))
    except (httpx.HTTPError, ValueError, KeyError, IndexError):
        return Schedule(reachable=False)
    gone = {d.id for d in dead}
    return Schedule(
        True,
        active,
        tuple(r for r in runs if r.get("auto_scheduled") or r["state_type"] != "SCHEDULED"),
        tuple(r for r in live if r["id"] not in gone),
        dead,
    )


@dataclass(frozen=True)
class Health:
    status: str  # stopped, stale, not scheduled, healthy
    headline: str
    exit_code: int

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "headline": self.headline, "exit_code": self.exit_code}


def _late(run: dict[str, Any], now: datetime, every: float) -> bool:
    expected = datetime.fromisoformat(run["expected_start_time"].replace("Z", "+00:00"))
    return run["state_type"] == "SCHEDULED" and (now - expected).total_seconds() > max(every, 60.0)


def _bad_streak(runs: tuple[dict[str, Any], ...], now: datetime, every: float) -> list[dict[str, Any]]:
    """The newest scheduled runs, in a row, that ended Cancelled or Crashed or are late."""
    streak = []
    for run in runs:
        if run["state_type"] in BAD_ENDINGS or _late(run, now, every):
            streak.append(run)
        elif run["state_type"] != "SCHEDULED":
            break
    return streak


def _streak_words(streak: list[dict[str, Any]]) -> str:
    late = sum(1 for r in streak if r["state_type"] == "SCHEDULED")
    if late == len(streak):
        return f"the last {len(streak)} scheduled refresh(es) are late: nothing serves them (is `kup up` running?)"
    newest = next(r for r in streak if r["state_type"] != "SCHEDULED")
    reason = ((newest.get("state") or {}).get("message") or "").strip().rstrip(".")
    kinds = sorted({r["state_type"].capitalize() for r in streak if r["state_type"] != "SCHEDULED"})
    return f"the last {len(streak)} scheduled refresh(es) ended {' or '.join(kinds)}" + (
        f" ({reason[:160]})" if reason else ""
    )


def assess(
    *,
    last_finished: datetime | None,
    failing_sources: list[str],
    every: float | None,
    schedule: Schedule,
    now: datetime | None = None,
) -> Health:
    """The verdict from the catalog's last refresh and failing sources and the server's view of the schedule."""
    now = now or datetime.now(UTC)
    age = None if last_finished is None else (now - last_finished).total_seconds()
    last = "no refresh has completed yet" if age is None else f"the last refresh completed {human_duration(age)} ago"
    if schedule.dead:
        run = schedule.dead[0]
        return Health(
            "stopped",
            f"refreshes have stopped: run {run.name} was left {run.state.lower()} by a process that is gone "
            f"(silent since {run.last_sign:%H:%M:%S} UTC) and holds the refresh slot; `kup up` marks it crashed "
            f"within two minutes of starting; {last}",
            1,
        )
    if schedule.running:
        started = schedule.running[0].get("start_time")
        since = "" if not started else f" since {datetime.fromisoformat(started.replace('Z', '+00:00')):%H:%M:%S} UTC"
        if not failing_sources:
            return Health("refreshing", f"refreshing: a refresh is running{since}; {last}", 0)
    if schedule.reachable and schedule.active and every and not schedule.running:
        streak = _bad_streak(schedule.runs, now, every)
        limit = overdue_after(every)
        if len(streak) >= 2 and (age is None or age > every):
            return Health("stopped", f"refreshes have stopped: {_streak_words(streak)}; {last}", 1)
        if age is not None and age > limit:
            return Health(
                "stopped",
                f"refreshes have stopped: {last}, but they are scheduled every {human_duration(every)} "
                f"(overdue after {human_duration(limit)})",
                1,
            )
    if failing_sources:
        return Health("stale", f"stale: {', '.join(failing_sources)} failing or backing off; {last}", 1)
    if not schedule.reachable:
        return Health(
            "not scheduled", f"not scheduled: no Prefect server answers, so nothing refreshes by itself; {last}", 0
        )
    if not schedule.active:
        return Health(
            "not scheduled", f"not scheduled: the refresh schedule is paused (`kup up` resumes it); {last}", 0
        )
    return Health("healthy", f"healthy: {last}, scheduled every {human_duration(every or 0)}", 0)


def failing_sources(rows: list[dict[str, Any]]) -> list[str]:
    """Sources of ``status_data`` (or ``Catalog.status``) rows that are failing or backing off (configured ones)."""
    return [r["source"] for r in rows if r.get("configured") is not False and r.get("consecutive_failures")]


def pipeline_health(settings: Settings, catalog: Catalog, specs: list[DeploymentSpec]) -> Health:
    """The verdict for ``settings``' pipeline: its catalog's last refresh and sources, its server's schedule."""
    from connectors import load_sources
    from errors import ConfigError

    last = catalog.last_refresh()
    try:  # a source removed from the sources file is no longer this pipeline's to fail
        configured = {source.name for source in load_sources(settings.sources_file)}
        rows = [r for r in catalog.status()["sources"] if r["source"] in configured]
    except ConfigError:  # unreadable: `kup status` says so below; its sources are not judged here
        rows = []
    return assess(
        last_finished=last.finished_at if last else None,
        failing_sources=failing_sources(rows),
        every=refresh_every(specs),
        schedule=read_schedule(settings.prefect_api_url),
    )


class Monitor:
    """What ``kup up`` does beside serving, every ``SWEEP_SECONDS``: crash runs whose process is gone (freeing
    their slot), then judge the pipeline; when the verdict changes to one that is not healthy, say it in the
    terminal and in the ``kup-status`` artifact (a refresh that completes writes its own again)."""

    def __init__(self, settings: Settings, specs: list[DeploymentSpec], say: Callable[[str], None]) -> None:
        self.settings, self.specs, self.say = settings, specs, say
        self.served = [spec.name for spec in specs]
        self.last_status: str | None = None
        self._stop = threading.Event()

    def check(self) -> Health | None:
        for run in reap(self.settings.prefect_api_url, self.served):
            self.say(
                f"{run.deployment} run {run.name} was left {run.state.lower()} by a process that is gone: "
                "marked crashed, its slot freed"
            )
        try:
            from indexing import Catalog

            catalog = Catalog(self.settings.secret("catalog_url") or self.settings.resolved_catalog_url)
            try:
                health = pipeline_health(self.settings, catalog, self.specs)
            finally:
                catalog.close()
        except Exception as exc:  # noqa: BLE001 - a catalog being migrated or locked: judged at the next sweep
            log.debug("health check skipped: %s", exc)
            return None
        if health.status != self.last_status and health.exit_code:
            self.say(f"kup: {health.headline}")
            self._publish(health)
        self.last_status = health.status
        return health

    def _publish(self, health: Health) -> None:
        try:
            from prefect.artifacts import create_markdown_artifact

            create_markdown_artifact(
                key="kup-status",
                markdown=health_markdown(health, datetime.now(UTC)),
                description=f"Is the index fresh? ({health.status}, said by kup up)",
            )
        except Exception as exc:  # noqa: BLE001 - the dashboard is unreachable for now; the terminal has said it
            log.warning("could not update the kup-status artifact: %s", exc)

    def start(self, every: float = SWEEP_SECONDS) -> None:
        def loop() -> None:
            while not self._stop.wait(every):
                self.check()

        threading.Thread(target=loop, name="kup-monitor", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()


def health_markdown(health: Health, when: datetime) -> str:
    """The ``kup-status`` artifact ``kup up`` writes while refreshes do not complete."""
    return (
        f"# kup: {health.status.upper()}\n\n{health.headline[0].upper()}{health.headline[1:]}.\n\n"
        f"Checked {when:%Y-%m-%d %H:%M:%S} UTC by `kup up`. Runs marked Crashed free their slot within "
        f"{human_duration(timedelta(minutes=2).total_seconds())}; `kup status` says the same.\n"
    )

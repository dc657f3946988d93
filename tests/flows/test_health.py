"""The verdict `kup status` says first (and `kup up` keeps in the kup-status artifact), from the catalog's last
refresh, the failing sources and what the Prefect server says of the refresh schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flows.dead_runs import DeadRun
from flows.deployments import read_specs
from flows.health import Schedule, assess, overdue_after, refresh_every

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _run(state: str, minutes_ago: float, message: str = "", auto: bool = True) -> dict:
    expected = NOW - timedelta(minutes=minutes_ago)
    return {
        "id": f"{state}-{minutes_ago}",
        "state_type": state,
        "state": {"message": message},
        "expected_start_time": expected.isoformat(),
        "auto_scheduled": auto,
    }


def judge(minutes_since_refresh: float | None, schedule: Schedule, failing: list[str] | None = None):
    last = None if minutes_since_refresh is None else NOW - timedelta(minutes=minutes_since_refresh)
    return assess(last_finished=last, failing_sources=failing or [], every=60.0, schedule=schedule, now=NOW)


def test_the_refresh_schedule_comes_from_prefect_yaml() -> None:
    assert refresh_every(read_specs()) == 60.0
    assert overdue_after(60.0) == 180.0 and overdue_after(600.0) == 1800.0


def test_scheduled_runs_cancelled_for_the_slot_say_refreshes_stopped_with_the_reason() -> None:
    limit = "Deployment concurrency limit reached."
    runs = tuple(_run("CANCELLED", m, limit) for m in (1, 2, 3)) + (_run("COMPLETED", 11),)
    health = judge(11, Schedule(True, True, runs))
    assert health.exit_code == 1 and health.status == "stopped"
    assert health.headline.startswith("refreshes have stopped: the last 3 scheduled refresh(es) ended Cancelled")
    assert "Deployment concurrency limit reached" in health.headline and "11 min" in health.headline


def test_a_run_left_running_by_a_dead_process_is_named() -> None:
    dead = DeadRun("r1", "tidy-ape", "refresh", "RUNNING", NOW - timedelta(minutes=4))
    health = judge(5, Schedule(True, True, (), dead=(dead,)))
    assert health.exit_code == 1 and "tidy-ape was left running by a process that is gone" in health.headline


def test_no_completed_refresh_for_three_intervals_is_stopped_even_without_bad_runs() -> None:
    assert judge(2, Schedule(True, True)).status == "healthy"
    health = judge(4, Schedule(True, True))
    assert health.status == "stopped" and "scheduled every 1 min" in health.headline


def test_late_runs_mean_nothing_serves_the_schedule() -> None:
    runs = (_run("SCHEDULED", 3), _run("SCHEDULED", 2), _run("SCHEDULED", 0.2))
    health = judge(2.5, Schedule(True, True, runs))
    assert health.status == "stopped" and "nothing serves them" in health.headline


def test_a_long_refresh_that_is_alive_is_refreshing_not_stopped() -> None:
    runs = tuple(_run("CANCELLED", m, "Deployment concurrency limit reached.") for m in (1, 2, 3))
    running = ({"id": "live", "start_time": (NOW - timedelta(minutes=4)).isoformat()},)
    health = judge(None, Schedule(True, True, runs, running=running))
    assert health.status == "refreshing" and health.exit_code == 0


def test_a_failing_source_is_stale_and_exits_one_like_kup_refresh() -> None:
    health = judge(1, Schedule(True, True), failing=["coastal"])
    assert health.status == "stale" and health.exit_code == 1 and "coastal" in health.headline


def test_without_a_schedule_nothing_is_overdue_but_it_is_said() -> None:
    assert judge(600, Schedule(False)).headline.startswith("not scheduled: no Prefect server answers")
    assert judge(600, Schedule(False)).exit_code == 0
    assert "paused" in judge(600, Schedule(True, False)).headline

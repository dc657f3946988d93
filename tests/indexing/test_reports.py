"""Run reports: outcome counts, a refresh's summary, its verdict (healthy, warning, failing) and how it reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from indexing.reports import (
    FAILING_RUNS_BEFORE_RED,
    IndexReport,
    LagSample,
    SourceReport,
    hourly_p95,
    human_duration,
    refresh_markdown,
    refresh_rows,
    refresh_verdict,
    sparkline,
    status_markdown,
    summarize,
)


def _summary(*, gone_error: str | None = None, quarantined: int = 0, failed: int = 0) -> dict:
    world = SourceReport(source="world", kind="feed")
    world.count(["new", "new", "updated", "unchanged"])
    gone = SourceReport(source="gone", kind="feed", error=gone_error)
    index = IndexReport(
        documents=3,
        embedded=9,
        quarantined=quarantined,
        failed=failed,
        errors=["store is down"] if failed else [],
        lags={"world": [10.0, 20.0, 30.0]},
        quarantined_by_source={"world": quarantined} if quarantined else {},
        checks={"checked": 3, "passed": 3 - quarantined, "failures": {"text too short": quarantined}},
    )
    return summarize([world, gone], index, 1.5)


def test_count_adds_each_outcome() -> None:
    report = SourceReport(source="s", kind="sql")
    report.count(["new", "updated", "new", "unchanged"])
    report.count([])
    assert (report.new, report.updated, report.unchanged, report.deleted) == (2, 1, 1, 0)


def test_summary_totals_and_failed_sources() -> None:
    summary = _summary(gone_error="feed gone: HTTP 404")
    assert summary["totals"] == {"new": 2, "updated": 1, "unchanged": 1, "deleted": 0, "failed": 0}
    assert summary["failed_sources"] == ["gone"]
    assert summary["freshness_lag_seconds"]["p50"] == 20.0


def test_a_clean_run_is_healthy() -> None:
    verdict = refresh_verdict(_summary(), {"world": 0, "gone": 0})
    assert verdict.status == "healthy" and verdict.reasons == [] and verdict.message == "index is fresh"


def test_quarantined_or_unindexed_documents_warn() -> None:
    verdict = refresh_verdict(_summary(quarantined=1, failed=2), {})
    assert verdict.status == "warning"
    assert verdict.reasons == [
        "1 document(s) failed the data checks",
        "2 document(s) could not be indexed: store is down",
    ]
    assert verdict.message == "; ".join(verdict.reasons)


def test_a_one_off_failure_or_a_backing_off_source_is_stale_never_fresh() -> None:
    verdict = refresh_verdict(_summary(gone_error="HTTP 404", quarantined=1), {"gone": 1})
    assert verdict.status == "stale" and verdict.message == "index is stale: gone failed: HTTP 404"
    skipped = summarize(
        [SourceReport(source="slow", kind="feed", skipped="backing off after failures until 10:02:00 UTC")],
        IndexReport(),
        0.1,
    )
    assert refresh_verdict(skipped, {"slow": 2}).message == (
        "index is stale: slow backing off after failures until 10:02:00 UTC"
    )
    # Still down after FAILING_RUNS_BEFORE_RED pulls: red, even while it only backs off.
    assert refresh_verdict(skipped, {"slow": FAILING_RUNS_BEFORE_RED}).status == "failing"


def test_a_source_failing_run_after_run_turns_red() -> None:
    summary = _summary(gone_error="HTTP 500")
    assert refresh_verdict(summary, {"gone": FAILING_RUNS_BEFORE_RED - 1}).status == "stale"
    assert refresh_verdict(summary, {}).status == "stale"  # an unknown streak counts as this one failure
    red = refresh_verdict(summary, {"gone": FAILING_RUNS_BEFORE_RED})
    assert red.status == "failing"
    assert red.message == f"source(s) keep failing: gone ({FAILING_RUNS_BEFORE_RED} runs): HTTP 500"


def test_rows_say_each_sources_state() -> None:
    summary = _summary(gone_error="HTTP 404")
    summary["sources"][0]["warnings"] = ["feed is malformed but usable: bad entity"]
    rows = {row["source"]: row for row in refresh_rows(summary, {"gone": 2})}
    assert rows["world"]["new"] == 2 and rows["world"]["published to searchable p95"] == "29 s"
    assert rows["world"]["state"] == "warning: feed is malformed but usable: bad entity"
    assert rows["gone"]["state"] == "FAILED x2: HTTP 404" and rows["gone"]["published to searchable p95"] == "-"
    skipped = summarize([SourceReport(source="slow", kind="feed", skipped="backing off")], IndexReport(), 0.1)
    assert refresh_rows(skipped, {})[0]["state"] == "backing off"


def test_markdown_names_counts_checks_and_failing_sources() -> None:
    text = refresh_markdown(_summary(gone_error="HTTP 404", quarantined=1), {"gone": 2})
    assert text.startswith("## Refresh: 2 new, 1 updated, 0 deleted")
    assert "Indexed **3** document(s) in 1.5 s: 9 chunk(s) embedded" in text
    assert "p50 **20 s**" in text
    assert "Data checks: 2 of 3 passed; quarantined: text too short (1)." in text
    assert "* **gone failed** (2 run(s) in a row): HTTP 404" in text
    assert "failed**" not in refresh_markdown(_summary(), {})


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (None, "-"),
        (0, "0 s"),
        (3.5, "3.5 s"),
        (45, "45 s"),
        (106, "1 min 46 s"),
        (3600, "1 h"),
        (10_800, "3 h"),
        (3725, "1 h 2 min"),
        (75_355.038, "20 h 55 min"),
        (200_000, "2 d 7 h"),
        (-5, "0 s"),
    ],
)
def test_durations_read_in_human_units(seconds, words) -> None:
    assert human_duration(seconds) == words


NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def test_hourly_p95_and_its_sparkline() -> None:
    samples = [
        LagSample("world", NOW - timedelta(minutes=10), 60.0, 90.0),
        LagSample("world", NOW - timedelta(hours=2, minutes=5), 600.0, None),
        LagSample("world", NOW - timedelta(hours=30), 9999.0, None),  # older than the day: not plotted
    ]
    hourly = hourly_p95(samples, NOW)
    assert len(hourly) == 24 and hourly[-1] == 60.0 and hourly[-3] == 600.0
    assert [v for v in hourly if v is not None] == [600.0, 60.0]
    line = sparkline(hourly)
    assert len(line) == 24 and line[-3] == "█" and line[-1] == "▁" and line[0] == " "


def test_status_artifact_names_each_source_state_and_lags() -> None:
    summary = _summary(gone_error="HTTP 500")
    states = [
        {"source": "world", "last_success_at": NOW - timedelta(seconds=106), "consecutive_failures": 0},
        {"source": "gone", "last_success_at": None, "consecutive_failures": 2},
    ]
    samples = [LagSample("world", NOW - timedelta(minutes=1), 75.0, 3 * 3600.0)]
    text = status_markdown(summary, refresh_verdict(summary, {"gone": 2}), states, samples, NOW)
    assert text.startswith("## STALE: index is stale: gone failed: HTTP 500")
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert rows["world"] == "| world | ok | 1 min 46 s ago | 3 h | 1 min 15 s | 0 |"
    assert rows["gone"] == "| gone | FAILED x2: HTTP 500 | never | - | - | 2 |"
    assert "Freshness over the last day" in text and "1 document(s) made searchable" in text

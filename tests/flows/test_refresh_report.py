"""How a refresh run reads in the Prefect UI and its log: the per-source table, the summary, the kup-status report
with its sparkline, and the run's one log line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flows.refresh_report import done_line, refresh_markdown, refresh_rows, sparkline, status_markdown
from indexing.refresh_run import RefreshOutcome
from indexing.reports import IndexReport, LagSample, SourceReport, hourly_p95, refresh_verdict, summarize
from tests.indexing.test_reports import run_summary


def test_rows_say_each_sources_state() -> None:
    summary = run_summary(gone_error="HTTP 404")
    summary.sources[0].warnings = ["feed is malformed but usable: bad entity"]
    rows = {row["source"]: row for row in refresh_rows(summary, {"gone": 2})}
    assert rows["world"]["new"] == 2 and rows["world"]["published to searchable p95"] == "29 s"
    assert rows["world"]["state"] == "warning: feed is malformed but usable: bad entity"
    assert rows["gone"]["state"] == "FAILED x2: HTTP 404" and rows["gone"]["published to searchable p95"] == "-"
    skipped = summarize([SourceReport(source="slow", kind="feed", skipped="backing off")], IndexReport(), 0.1)
    assert refresh_rows(skipped, {})[0]["state"] == "backing off"


def test_markdown_names_counts_checks_and_failing_sources() -> None:
    text = refresh_markdown(run_summary(gone_error="HTTP 404", quarantined=1), {"gone": 2})
    assert text.startswith("## Refresh: 2 new, 1 updated, 0 deleted")
    assert "Indexed **3** document(s) in 1.5 s: 9 chunk(s) embedded" in text
    assert "p50 **20 s**" in text
    assert "Data checks: 2 of 3 passed; quarantined: text too short (1)." in text
    assert "* **gone failed** (2 run(s) in a row): HTTP 404" in text
    assert "failed**" not in refresh_markdown(run_summary(), {})


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
    summary = run_summary(gone_error="HTTP 500")
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


def test_the_log_line_gives_counts_lags_and_the_verdict() -> None:
    summary = run_summary(gone_error="HTTP 404")
    summary.verdict = refresh_verdict(summary, {"gone": 1})
    line = done_line(RefreshOutcome(summary, {"gone": 1}, NOW, NOW))
    assert line == (
        "refresh done in 1.5 s: 2 new, 1 updated, 1 unchanged, 0 deleted, 0 failed; "
        "first seen to searchable p50 20 s, p95 29 s; published to searchable p50 20 s, p95 29 s; "
        "index is stale: gone failed: HTTP 404"
    )

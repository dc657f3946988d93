"""Run reports: outcome counts, a refresh's summary, its verdict (healthy, warning, failing) and how it reads."""

from __future__ import annotations

from indexing.reports import (
    FAILING_RUNS_BEFORE_RED,
    IndexReport,
    SourceReport,
    refresh_markdown,
    refresh_rows,
    refresh_verdict,
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


def test_a_one_off_failure_and_quarantined_documents_warn() -> None:
    verdict = refresh_verdict(_summary(gone_error="HTTP 404", quarantined=1, failed=2), {"gone": 1})
    assert verdict.status == "warning"
    assert verdict.reasons == [
        "gone failed: HTTP 404",
        "1 document(s) failed the data checks",
        "2 document(s) could not be indexed: ['store is down']",
    ]
    assert verdict.message == "; ".join(verdict.reasons)


def test_a_source_failing_run_after_run_turns_red() -> None:
    summary = _summary(gone_error="HTTP 500")
    assert refresh_verdict(summary, {"gone": FAILING_RUNS_BEFORE_RED - 1}).status == "warning"
    assert refresh_verdict(summary, {}).status == "warning"  # an unknown streak counts as this one failure
    red = refresh_verdict(summary, {"gone": FAILING_RUNS_BEFORE_RED})
    assert red.status == "failing"
    assert red.message == f"source(s) keep failing: gone ({FAILING_RUNS_BEFORE_RED} runs): HTTP 500"


def test_rows_say_each_sources_state() -> None:
    summary = _summary(gone_error="HTTP 404")
    summary["sources"][0]["warnings"] = ["feed is malformed but usable: bad entity"]
    rows = {row["source"]: row for row in refresh_rows(summary, {"gone": 2})}
    assert rows["world"]["new"] == 2 and rows["world"]["lag p50 (s)"] == "20"
    assert rows["world"]["state"] == "warning: feed is malformed but usable: bad entity"
    assert rows["gone"]["state"] == "FAILED x2: HTTP 404" and rows["gone"]["lag p95 (s)"] == "-"
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

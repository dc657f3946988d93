"""Run reports: outcome counts, a refresh's summary (its one JSON form, read back from any version) and its verdict
(healthy, stale, warning, failing)."""

from __future__ import annotations

from indexing.reports import (
    FAILING_RUNS_BEFORE_RED,
    IndexReport,
    Lag,
    RefreshSummary,
    RefreshVerdict,
    SourceReport,
    Totals,
    refresh_verdict,
    summarize,
)


def run_summary(*, gone_error: str | None = None, quarantined: int = 0, failed: int = 0) -> RefreshSummary:
    """A run over two feeds, ``world`` (two new, one updated, one unchanged) and ``gone`` (failing with
    ``gone_error`` when given)."""
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
    summary = run_summary(gone_error="feed gone: HTTP 404")
    assert summary.totals == Totals(new=2, updated=1, unchanged=1, deleted=0, failed=0)
    assert summary.failed_sources == ["gone"]
    assert summary.freshness_lag_seconds.p50 == 20.0


def test_a_clean_run_is_healthy() -> None:
    verdict = refresh_verdict(run_summary(), {"world": 0, "gone": 0})
    assert verdict.status == "healthy" and verdict.reasons == [] and verdict.message == "index is fresh"


def test_quarantined_or_unindexed_documents_warn() -> None:
    verdict = refresh_verdict(run_summary(quarantined=1, failed=2), {})
    assert verdict.status == "warning"
    assert verdict.reasons == [
        "1 document(s) failed the data checks",
        "2 document(s) could not be indexed: store is down",
    ]
    assert verdict.message == "; ".join(verdict.reasons)


def test_a_one_off_failure_or_a_backing_off_source_is_stale_never_fresh() -> None:
    verdict = refresh_verdict(run_summary(gone_error="HTTP 404", quarantined=1), {"gone": 1})
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
    summary = run_summary(gone_error="HTTP 500")
    assert refresh_verdict(summary, {"gone": FAILING_RUNS_BEFORE_RED - 1}).status == "stale"
    assert refresh_verdict(summary, {}).status == "stale"  # an unknown streak counts as this one failure
    red = refresh_verdict(summary, {"gone": FAILING_RUNS_BEFORE_RED})
    assert red.status == "failing"
    assert red.message == f"source(s) keep failing: gone ({FAILING_RUNS_BEFORE_RED} runs): HTTP 500"


def test_the_summary_has_one_json_form_that_reads_back() -> None:
    summary = run_summary(gone_error="HTTP 404", quarantined=1)
    summary.verdict = refresh_verdict(summary, {"gone": 1})
    summary.drift = {"ratio": 1.2, "champion": "a1"}
    data = summary.to_dict()
    assert list(data) == [
        "seconds",
        "sources",
        "totals",
        "failed_sources",
        "index",
        "freshness_lag_seconds",
        "first_seen_lag_seconds",
        "verdict",
        "drift",
    ]
    assert data["totals"] == {"new": 2, "updated": 1, "unchanged": 1, "deleted": 0, "failed": 0}
    assert data["failed_sources"] == ["gone"]
    assert data["verdict"] == {"status": "stale", "message": "index is stale: gone failed: HTTP 404"}
    world = data["sources"][0]
    assert list(world)[-5:] == ["seconds", "ok", "quarantined", "freshness_lag_seconds", "first_seen_lag_seconds"]
    assert world["ok"] is True and world["quarantined"] == 1
    assert world["freshness_lag_seconds"] == {"p50": 20.0, "p95": 29.0}
    assert "lags" not in data["index"] and "quarantined_by_source" not in data["index"]
    assert RefreshSummary.from_dict(data).to_dict() == data
    assert "verdict" not in run_summary().to_dict() and "drift" not in run_summary().to_dict()


def test_every_verdict_reads_back_with_its_message() -> None:
    for verdict in (
        RefreshVerdict("healthy"),
        RefreshVerdict("warning", ["1 document(s) failed the data checks", "indexing did not finish: a; b"]),
        RefreshVerdict("stale", ["gone failed: HTTP 404"]),
        RefreshVerdict("failing", ["gone (3 runs): HTTP 500", "slow (4 runs): backing off"]),
    ):
        back = RefreshVerdict.from_dict(verdict.to_dict())
        assert back.status == verdict.status and back.message == verdict.message


def test_a_summary_written_by_an_older_version_reads_with_defaults() -> None:
    old = {  # before first-seen lags, fallbacks, warnings, data checks and verdicts; with a key since dropped
        "seconds": 2.5,
        "sources": [
            {"source": "world", "kind": "feed", "new": 1, "error": None, "ok": True, "retired": 3},
            {"source": "gone", "kind": "feed", "error": "HTTP 404", "ok": False},
        ],
        "totals": {"new": 1, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0},
        "failed_sources": ["gone"],
        "index": {"documents": 1, "embedded": 4, "seconds": 0.5},
        "freshness_lag_seconds": {"p50": 30.0, "p95": 40.0},
    }
    summary = RefreshSummary.from_dict(old)
    assert summary.seconds == 2.5 and summary.failed_sources == ["gone"] and summary.totals.new == 1
    assert summary.sources[0].warnings == [] and summary.sources[0].first_seen_lag_seconds == Lag()
    assert summary.index.embedded == 4 and summary.index.checks == {} and summary.verdict is None
    assert summary.freshness_lag_seconds == Lag(30.0, 40.0) and summary.first_seen_lag_seconds == Lag()
    assert RefreshSummary.from_dict({}).to_dict()["totals"] == {
        "new": 0,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "failed": 0,
    }

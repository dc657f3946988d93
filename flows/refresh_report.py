"""How a refresh run reads to a person in the Prefect UI and its log: the per-source table, the summary, the
``kup-status`` report (the verdict, each source's health and the last day's freshness as a sparkline) and the run's
one log line. The figures and the verdict come from ``indexing.reports``; ``kup refresh`` and ``kup status`` show
the same ones in the terminal (``cli.views``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from errors.durations import human_duration
from indexing.catalog import Catalog
from indexing.refresh_run import RefreshOutcome
from indexing.reports import LagSample, RefreshSummary, RefreshVerdict, SourceSummary, hourly_p95, percentiles

STATUS_WINDOW = timedelta(days=1)  # the freshness the kup-status artifact shows


def source_state_words(row: SourceSummary, streaks: dict[str, int]) -> str:
    """A source's state in this run, in words: ok, failed (with its streak), backing off, or a warning."""
    if row.error:
        return f"FAILED x{streaks.get(row.source, 1)}: {row.error}"
    if row.skipped:
        return row.skipped
    if row.warnings:
        return "warning: " + "; ".join(row.warnings)
    return "ok"


def refresh_rows(summary: RefreshSummary, streaks: dict[str, int]) -> list[dict[str, Any]]:
    """One row of figures per source, with its state in words (for the run's table artifact)."""
    return [
        {
            "source": s.source,
            "state": source_state_words(s, streaks),
            "kind": s.kind,
            "new": s.new,
            "updated": s.updated,
            "unchanged": s.unchanged,
            "deleted": s.deleted,
            "failed": s.failed,
            "quarantined": s.quarantined,
            "seen to searchable p95": human_duration(s.first_seen_lag_seconds.p95),
            "published to searchable p95": human_duration(s.freshness_lag_seconds.p95),
        }
        for s in summary.sources
    ]


def refresh_markdown(summary: RefreshSummary, streaks: dict[str, int]) -> str:
    """A short markdown summary of a refresh run: counts, freshness, data checks and failing sources."""
    totals, index = summary.totals, summary.index
    lag, seen = summary.freshness_lag_seconds, summary.first_seen_lag_seconds
    lines = [
        f"## Refresh: {totals.new} new, {totals.updated} updated, {totals.deleted} deleted",
        "",
        f"* Indexed **{index.documents}** document(s) in {human_duration(summary.seconds)}: "
        f"{index.embedded} chunk(s) embedded, {index.reused} reused, {index.unchanged} unchanged, "
        f"{index.deleted} removed.",
        f"* Freshness lag (first seen to searchable): p50 **{human_duration(seen.p50)}**, "
        f"p95 **{human_duration(seen.p95)}**; (published to searchable, new items only): "
        f"p50 **{human_duration(lag.p50)}**, p95 **{human_duration(lag.p95)}**.",
    ]
    checks = index.checks or {}
    if checks.get("checked"):
        failures = ", ".join(f"{reason} ({n})" for reason, n in checks["failures"].items()) or "none"
        lines.append(f"* Data checks: {checks['passed']} of {checks['checked']} passed; quarantined: {failures}.")
    for s in summary.sources:
        if s.error:
            lines.append(f"* **{s.source} failed** ({streaks.get(s.source, 1)} run(s) in a row): {s.error}")
        elif s.skipped:
            lines.append(f"* **{s.source} not pulled**: {s.skipped}")
    return "\n".join(lines)


_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value (higher is taller), a space where there is none."""
    known = [v for v in values if v is not None]
    top = max(known, default=0.0) or 1.0
    return "".join(" " if v is None else _BARS[min(7, int(v / top * 7.999))] for v in values)


def status_markdown(
    summary: RefreshSummary,
    verdict: RefreshVerdict,
    states: Sequence[dict[str, Any]],
    samples: Sequence[LagSample],
    now: datetime,
) -> str:
    """The ``kup-status`` artifact: the verdict, a row per source (state, last success, lag two ways, failures)
    and the freshness of the last day as an hourly sparkline. ``states``: the catalog's source_state rows."""
    headline = {"healthy": "Fresh", "stale": "STALE", "warning": "Warning", "failing": "FAILING"}[verdict.status]
    lines = [f"## {headline}: {verdict.message}", "", f"Updated {now:%Y-%m-%d %H:%M:%S} UTC by the latest refresh.", ""]
    lines += [
        "| source | state | last success | lag published→searchable (p95, 1 day) | lag first seen→searchable "
        "(p95, 1 day) | failures in a row |",
        "|---|---|---|---|---|---|",
    ]
    by_state = {row["source"]: row for row in states}
    for row in summary.sources:
        state = by_state.get(row.source, {})
        mine = [s for s in samples if s.source == row.source]
        published = [s.published_lag for s in mine if s.published_lag is not None]
        last = state.get("last_success_at")
        words = source_state_words(row, {row.source: state.get("consecutive_failures") or 1})
        lines.append(
            f"| {row.source} | {words.replace('|', '/')} | "
            f"{human_duration((now - last).total_seconds()) + ' ago' if last else 'never'} | "
            f"{human_duration(percentiles(published).p95)} | "
            f"{human_duration(percentiles([s.first_seen_lag for s in mine]).p95)} | "
            f"{state.get('consecutive_failures') or 0} |"
        )
    hourly = hourly_p95(samples, now)
    known = [v for v in hourly if v is not None]
    lines += [
        "",
        "### Freshness over the last day (p95 first seen→searchable, one bar per hour, oldest first)",
        "",
        f"`{sparkline(hourly)}`  worst hour {human_duration(max(known, default=None))}, "
        f"latest hour {human_duration(hourly[-1])}; {len(samples)} document(s) made searchable.",
    ]
    return "\n".join(lines)


def status_report(catalog: Catalog, outcome: RefreshOutcome) -> str:
    """The kup-status markdown for ``outcome``: the verdict, each source's health and the last day's freshness."""
    samples = [LagSample(**x) for x in catalog.searchable_samples(outcome.finished - STATUS_WINDOW)]
    return status_markdown(outcome.summary, outcome.verdict, catalog.status()["sources"], samples, outcome.finished)


def done_line(outcome: RefreshOutcome) -> str:
    """The run in one log line: time, counts, freshness lag and the verdict."""
    summary = outcome.summary
    lag, seen, totals = summary.freshness_lag_seconds, summary.first_seen_lag_seconds, summary.totals
    figures = []
    if seen.p50 is not None:
        figures.append(f"first seen to searchable p50 {human_duration(seen.p50)}, p95 {human_duration(seen.p95)}")
    if lag.p50 is not None:
        figures.append(f"published to searchable p50 {human_duration(lag.p50)}, p95 {human_duration(lag.p95)}")
    return (
        f"refresh done in {human_duration(summary.seconds)}: {totals.new} new, {totals.updated} updated, "
        f"{totals.unchanged} unchanged, {totals.deleted} deleted, {totals.failed} failed; "
        + ("; ".join(figures) + "; " if figures else "")
        + outcome.verdict.message
    )

"""What runs report: per-source pull counts, indexing figures, and a refresh run's summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np


@dataclass
class SourceReport:
    source: str
    kind: str
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0  # items that could not become documents (quarantined with their reason)
    fallbacks: int = 0  # documents whose article page failed, indexed from the feed's own text
    duplicates: int = 0
    not_modified: bool = False
    skipped: str | None = None  # why the source was not pulled (backing off after failures)
    error: str | None = None  # why the source failed as a whole
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def count(self, outcomes: Iterable[str]) -> None:
        """Add the catalog's per-document outcomes (``new``, ``updated``, ``unchanged``) to the counts."""
        for outcome in outcomes:
            setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass
class IndexReport:
    documents: int = 0  # documents indexed
    chunks: int = 0  # chunks those documents have now
    embedded: int = 0  # chunks embedded in this run
    reused: int = 0  # chunks whose vectors were moved from another position
    unchanged: int = 0  # chunks already right in the store
    deleted: int = 0  # stale points removed
    failed: int = 0  # documents left for a retry
    quarantined: int = 0  # documents that failed the data checks
    checks: dict = field(default_factory=dict)  # the data checks' summary: checked, passed, failures by reason
    optimize_seconds: float = 0.0  # building HNSW for segments that outgrew brute force
    seconds: float = 0.0
    lags: dict[str, list[float]] = field(default_factory=dict)  # per source: seconds from publication to searchable
    quarantined_by_source: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        data = dict(self.__dict__)
        data.pop("lags")
        data.pop("quarantined_by_source")
        return data

    def all_lags(self) -> list[float]:
        return [lag for lags in self.lags.values() for lag in lags]


def backing_off(catalog, source: str, kind: str, now, force: bool) -> SourceReport | None:
    """A report saying the source was skipped while it backs off after failures; None when it may run."""
    if force or not (until := catalog.source_due(source, now)):
        return None
    return SourceReport(source=source, kind=kind, skipped=f"backing off after failures until {until:%H:%M:%S} UTC")


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None}
    p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}


def summarize(sources: list[SourceReport], index: IndexReport, seconds: float) -> dict[str, Any]:
    """A JSON-ready summary of one refresh run."""
    lag = percentiles(index.all_lags())
    per_source = []
    for report in sources:
        row = asdict(report)
        row["ok"] = report.ok
        row["quarantined"] = index.quarantined_by_source.get(report.source, 0)
        row["freshness_lag_seconds"] = percentiles(index.lags.get(report.source, []))
        per_source.append(row)
    totals = {
        key: sum(getattr(r, key) for r in sources) for key in ("new", "updated", "unchanged", "deleted", "failed")
    }
    return {
        "seconds": round(seconds, 3),
        "sources": per_source,
        "totals": totals,
        "failed_sources": [r.source for r in sources if not r.ok],
        "index": index.as_dict(),
        "freshness_lag_seconds": lag,
    }


# -- how a refresh run reads to a person: a verdict, a table and a summary ------------------------

FAILING_RUNS_BEFORE_RED = 3  # consecutive failed pulls after which a source turns the whole run red


@dataclass(frozen=True)
class Verdict:
    """A refresh run's health: ``healthy``, ``warning`` (something needs a look) or ``failing`` (a source keeps
    failing), with the reasons in words."""

    status: Literal["healthy", "warning", "failing"]
    reasons: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.status == "failing":
            return "source(s) keep failing: " + "; ".join(self.reasons)
        return "; ".join(self.reasons) or "index is fresh"


def refresh_verdict(summary: dict[str, Any], streaks: dict[str, int]) -> Verdict:
    """Failing when a source has failed ``FAILING_RUNS_BEFORE_RED`` runs in a row; a warning when a source failed
    once or documents were quarantined or left unindexed; else healthy. ``streaks``: failed runs in a row by source."""
    failing = [
        f"{s['source']} ({streaks.get(s['source'], 1)} runs): {s['error']}"
        for s in summary["sources"]
        if s["error"] and streaks.get(s["source"], 1) >= FAILING_RUNS_BEFORE_RED
    ]
    if failing:
        return Verdict("failing", failing)
    problems = [f"{s['source']} failed: {s['error']}" for s in summary["sources"] if s["error"]]
    index = summary["index"]
    if index["quarantined"]:
        problems.append(f"{index['quarantined']} document(s) failed the data checks")
    if index["failed"]:
        problems.append(f"{index['failed']} document(s) could not be indexed: {index['errors']}")
    return Verdict("warning", problems) if problems else Verdict("healthy")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def refresh_rows(summary: dict[str, Any], streaks: dict[str, int]) -> list[dict[str, Any]]:
    """One row of figures per source, with its state in words (for the run's table artifact)."""
    rows = []
    for s in summary["sources"]:
        lag = s["freshness_lag_seconds"]
        state = "ok"
        if s["error"]:
            state = f"FAILED x{streaks.get(s['source'], 1)}: {s['error']}"
        elif s["skipped"]:
            state = s["skipped"]
        elif s["warnings"]:
            state = "warning: " + "; ".join(s["warnings"])
        rows.append(
            {
                "source": s["source"],
                "kind": s["kind"],
                "new": s["new"],
                "updated": s["updated"],
                "unchanged": s["unchanged"],
                "deleted": s["deleted"],
                "failed": s["failed"],
                "quarantined": s["quarantined"],
                "lag p50 (s)": _fmt(lag["p50"]),
                "lag p95 (s)": _fmt(lag["p95"]),
                "state": state,
            }
        )
    return rows


def refresh_markdown(summary: dict[str, Any], streaks: dict[str, int]) -> str:
    """A short markdown summary of a refresh run: counts, freshness, data checks and failing sources."""
    totals, index, lag = summary["totals"], summary["index"], summary["freshness_lag_seconds"]
    lines = [
        f"## Refresh: {totals['new']} new, {totals['updated']} updated, {totals['deleted']} deleted",
        "",
        f"* Indexed **{index['documents']}** document(s) in {summary['seconds']:.1f} s: "
        f"{index['embedded']} chunk(s) embedded, {index['reused']} reused, {index['unchanged']} unchanged, "
        f"{index['deleted']} removed.",
        f"* Freshness lag (published to searchable): p50 **{_fmt(lag['p50'])} s**, p95 **{_fmt(lag['p95'])} s**.",
    ]
    checks = index.get("checks") or {}
    if checks.get("checked"):
        failures = ", ".join(f"{reason} ({n})" for reason, n in checks["failures"].items()) or "none"
        lines.append(f"* Data checks: {checks['passed']} of {checks['checked']} passed; quarantined: {failures}.")
    for s in summary["sources"]:
        if s["error"]:
            lines.append(f"* **{s['source']} failed** ({streaks.get(s['source'], 1)} run(s) in a row): {s['error']}")
    return "\n".join(lines)

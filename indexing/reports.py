"""What runs report: per-source pull counts, indexing figures, and a refresh run's summary."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

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

    def words(self) -> str:
        """The pull in one log line: why it failed or was skipped, else its counts."""
        if self.error:
            return f"{self.source} failed: {self.error}"
        if self.skipped:
            return f"{self.source} not pulled: {self.skipped}"
        return (
            f"{self.source}: {self.new} new, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.deleted} deleted, {self.failed} failed" + (" (not modified)" if self.not_modified else "")
        )


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


def summarize(
    sources: list[SourceReport], index: IndexReport, seconds: float, samples: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A JSON-ready summary of one refresh run. With ``samples`` (``Catalog.searchable_samples`` since the run
    began) its lags are the ones ``kup status`` reports, by the same rule: published to searchable for new items
    published after their source was added, first seen to searchable for every version the run made searchable;
    without, publication to indexing of what it indexed."""

    def lags(source: str | None, kind: str) -> list[float]:
        if samples is None:
            return index.lags.get(source, []) if source else index.all_lags()
        key = "published_lag" if kind == "published" else "first_seen_lag"
        return [x[key] for x in samples if x[key] is not None and (source is None or x["source"] == source)]

    lag = percentiles(lags(None, "published"))
    per_source = []
    for report in sources:
        row = asdict(report)
        row["ok"] = report.ok
        row["quarantined"] = index.quarantined_by_source.get(report.source, 0)
        row["freshness_lag_seconds"] = percentiles(lags(report.source, "published"))
        row["first_seen_lag_seconds"] = percentiles(lags(report.source, "first_seen"))
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
        "first_seen_lag_seconds": percentiles(lags(None, "first_seen")),
    }


# -- how a refresh run reads to a person: a verdict, a table and a summary ------------------------

FAILING_RUNS_BEFORE_RED = 3  # consecutive failed pulls after which a source turns the whole run red


def human_duration(seconds: float | None) -> str:
    """A duration as people read it: ``45 s``, ``1 min 46 s``, ``3 h``, ``2 d 4 h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    total = round(seconds)
    units = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
    parts = []
    for name, size in units:
        if total >= size:
            parts.append(f"{total // size} {name}")
            total %= size
        if len(parts) == 2 or (parts and not total):
            break
    return " ".join(parts[:2])


@dataclass(frozen=True)
class Verdict:
    """A refresh run's health: ``healthy``, ``stale`` (a source failed or is backing off, so the index may miss
    what it published), ``warning`` (documents quarantined or left unindexed) or ``failing`` (a source keeps
    failing), with the reasons in words."""

    status: Literal["healthy", "stale", "warning", "failing"]
    reasons: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.status == "failing":
            return "source(s) keep failing: " + "; ".join(self.reasons)
        if self.status == "stale":
            return "index is stale: " + "; ".join(self.reasons)
        return "; ".join(self.reasons) or "index is fresh"


def refresh_verdict(summary: dict[str, Any], streaks: dict[str, int]) -> Verdict:
    """Failing when a source has failed ``FAILING_RUNS_BEFORE_RED`` runs in a row (pulled or still backing off);
    stale when a source failed or is backing off; a warning when documents were quarantined or left unindexed;
    else healthy. ``streaks``: failed runs in a row by source."""
    down = [s for s in summary["sources"] if s["error"] or s["skipped"]]
    failing = [
        f"{s['source']} ({streaks.get(s['source'], 1)} runs): {s['error'] or s['skipped']}"
        for s in down
        if streaks.get(s["source"], 1) >= FAILING_RUNS_BEFORE_RED
    ]
    if failing:
        return Verdict("failing", failing)
    stale = [f"{s['source']} failed: {s['error']}" if s["error"] else f"{s['source']} {s['skipped']}" for s in down]
    if stale:
        return Verdict("stale", stale)
    problems = []
    index = summary["index"]
    if index["quarantined"]:
        problems.append(f"{index['quarantined']} document(s) failed the data checks")
    if index["failed"]:
        problems.append(f"{index['failed']} document(s) could not be indexed: {'; '.join(index['errors'])}")
    elif index["errors"]:
        problems.append(f"indexing did not finish: {'; '.join(index['errors'])}")
    return Verdict("warning", problems) if problems else Verdict("healthy")


def source_state_words(row: dict[str, Any], streaks: dict[str, int]) -> str:
    """A source's state in this run, in words: ok, failed (with its streak), backing off, or a warning."""
    if row["error"]:
        return f"FAILED x{streaks.get(row['source'], 1)}: {row['error']}"
    if row["skipped"]:
        return row["skipped"]
    if row["warnings"]:
        return "warning: " + "; ".join(row["warnings"])
    return "ok"


def refresh_rows(summary: dict[str, Any], streaks: dict[str, int]) -> list[dict[str, Any]]:
    """One row of figures per source, with its state in words (for the run's table artifact)."""
    rows = []
    for s in summary["sources"]:
        lag, seen = s["freshness_lag_seconds"], s.get("first_seen_lag_seconds") or {}
        rows.append(
            {
                "source": s["source"],
                "state": source_state_words(s, streaks),
                "kind": s["kind"],
                "new": s["new"],
                "updated": s["updated"],
                "unchanged": s["unchanged"],
                "deleted": s["deleted"],
                "failed": s["failed"],
                "quarantined": s["quarantined"],
                "seen to searchable p95": human_duration(seen.get("p95")),
                "published to searchable p95": human_duration(lag["p95"]),
            }
        )
    return rows


def refresh_markdown(summary: dict[str, Any], streaks: dict[str, int]) -> str:
    """A short markdown summary of a refresh run: counts, freshness, data checks and failing sources."""
    totals, index, lag = summary["totals"], summary["index"], summary["freshness_lag_seconds"]
    seen = summary.get("first_seen_lag_seconds") or {}
    lines = [
        f"## Refresh: {totals['new']} new, {totals['updated']} updated, {totals['deleted']} deleted",
        "",
        f"* Indexed **{index['documents']}** document(s) in {human_duration(summary['seconds'])}: "
        f"{index['embedded']} chunk(s) embedded, {index['reused']} reused, {index['unchanged']} unchanged, "
        f"{index['deleted']} removed.",
        f"* Freshness lag (first seen to searchable): p50 **{human_duration(seen.get('p50'))}**, "
        f"p95 **{human_duration(seen.get('p95'))}**; (published to searchable, new items only): "
        f"p50 **{human_duration(lag['p50'])}**, p95 **{human_duration(lag['p95'])}**.",
    ]
    checks = index.get("checks") or {}
    if checks.get("checked"):
        failures = ", ".join(f"{reason} ({n})" for reason, n in checks["failures"].items()) or "none"
        lines.append(f"* Data checks: {checks['passed']} of {checks['checked']} passed; quarantined: {failures}.")
    for s in summary["sources"]:
        if s["error"]:
            lines.append(f"* **{s['source']} failed** ({streaks.get(s['source'], 1)} run(s) in a row): {s['error']}")
        elif s["skipped"]:
            lines.append(f"* **{s['source']} not pulled**: {s['skipped']}")
    return "\n".join(lines)


# -- the kup-status artifact: is the index fresh, per source and over the last day -----------------


class LagSample(NamedTuple):
    """One document made searchable: when, and how long it took from first seen (and from publication, when it
    was published after its source's first pull)."""

    source: str
    indexed_at: datetime
    first_seen_lag: float
    published_lag: float | None


_BARS = "▁▂▃▄▅▆▇█"


def _p95(values: Sequence[float]) -> float | None:
    return percentiles(list(values))["p95"]


def sparkline(values: Sequence[float | None]) -> str:
    """One character per value (higher is taller), a space where there is none."""
    known = [v for v in values if v is not None]
    top = max(known, default=0.0) or 1.0
    return "".join(" " if v is None else _BARS[min(7, int(v / top * 7.999))] for v in values)


def hourly_p95(samples: Sequence[LagSample], now: datetime, hours: int = 24) -> list[float | None]:
    """p95 of the first-seen-to-searchable lag for each of the last ``hours`` hours, oldest first."""
    buckets: list[list[float]] = [[] for _ in range(hours)]
    for sample in samples:
        age = (now - sample.indexed_at) / timedelta(hours=1)
        if 0 <= age < hours:
            buckets[hours - 1 - int(age)].append(sample.first_seen_lag)
    return [_p95(bucket) for bucket in buckets]


def status_markdown(
    summary: dict[str, Any],
    verdict: Verdict,
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
    for row in summary["sources"]:
        state = by_state.get(row["source"], {})
        mine = [s for s in samples if s.source == row["source"]]
        published = [s.published_lag for s in mine if s.published_lag is not None]
        last = state.get("last_success_at")
        words = source_state_words(row, {row["source"]: state.get("consecutive_failures") or 1})
        lines.append(
            f"| {row['source']} | {words.replace('|', '/')} | "
            f"{human_duration((now - last).total_seconds()) + ' ago' if last else 'never'} | "
            f"{human_duration(_p95(published))} | {human_duration(_p95([s.first_seen_lag for s in mine]))} | "
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

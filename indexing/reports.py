"""What runs report: per-source pull counts, indexing figures, and a refresh run's summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

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

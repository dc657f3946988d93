"""A refresh run's summary: per-source counts, indexing figures and freshness lag percentiles."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from indexing.indexer import IndexReport
from indexing.ingest import SourceReport


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None}
    p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
    return {"p50": round(float(p50), 3), "p95": round(float(p95), 3)}


def summarize(sources: list[SourceReport], index: IndexReport, seconds: float) -> dict[str, Any]:
    """A JSON-ready summary of one refresh run."""
    lag = percentiles(index.lags)
    per_source = []
    for report in sources:
        row = asdict(report)
        row["ok"] = report.ok
        per_source.append(row)
    totals = {key: sum(getattr(r, key) for r in sources) for key in ("new", "updated", "unchanged", "failed")}
    return {
        "seconds": round(seconds, 3),
        "sources": per_source,
        "totals": totals,
        "failed_sources": [r.source for r in sources if not r.ok],
        "index": index.as_dict(),
        "freshness_lag_seconds": lag,
    }

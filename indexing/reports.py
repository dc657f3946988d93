"""What runs report: per-source pull counts, indexing figures, a refresh run's summary and its verdict.

Figures and verdicts only: how they read (tables, markdown, log lines) is made where they are shown, in
``flows.refresh_report`` for the Prefect artifacts and ``cli`` for the terminal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple

import numpy as np


def _known(cls: type, data: dict[str, Any], *, skip: Iterable[str] = ()) -> dict[str, Any]:
    """The entries of ``data`` that are fields of the dataclass ``cls`` (a row written by another version may lack
    some, or hold more)."""
    names = {f.name for f in fields(cls)} - set(skip)
    return {key: value for key, value in data.items() if key in names}


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IndexReport:
        """The report ``as_dict`` wrote (without the per-source lags and quarantine counts it leaves out)."""
        return cls(**_known(cls, data, skip=("lags", "quarantined_by_source")))

    def all_lags(self) -> list[float]:
        return [lag for lags in self.lags.values() for lag in lags]


def backing_off(catalog, source: str, kind: str, now, force: bool) -> SourceReport | None:
    """A report saying the source was skipped while it backs off after failures; None when it may run."""
    if force or not (until := catalog.source_due(source, now)):
        return None
    return SourceReport(source=source, kind=kind, skipped=f"backing off after failures until {until:%H:%M:%S} UTC")


@dataclass(frozen=True)
class Lag:
    """The median and 95th percentile of some lags, in seconds; None when there was nothing to measure."""

    p50: float | None = None
    p95: float | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Lag:
        return cls(**_known(cls, data or {}))


def percentiles(values: list[float]) -> Lag:
    if not values:
        return Lag()
    p50, p95 = np.percentile(np.asarray(values, dtype=float), [50, 95])
    return Lag(round(float(p50), 3), round(float(p95), 3))


@dataclass
class SourceSummary(SourceReport):
    """One source's pull in a refresh run's summary: its report, the documents the data checks quarantined, and
    how long what it published (``freshness_lag_seconds``) and what the run first saw of it took to be searchable."""

    quarantined: int = 0
    freshness_lag_seconds: Lag = field(default_factory=Lag)
    first_seen_lag_seconds: Lag = field(default_factory=Lag)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        lags = {key: data.pop(key) for key in ("quarantined", "freshness_lag_seconds", "first_seen_lag_seconds")}
        return {**data, "ok": self.ok, **lags}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceSummary:
        lags = ("freshness_lag_seconds", "first_seen_lag_seconds")
        return cls(**_known(cls, data, skip=lags), **{key: Lag.from_dict(data.get(key)) for key in lags})


@dataclass(frozen=True)
class Totals:
    """Documents by outcome over every source of a run."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0


FAILING_RUNS_BEFORE_RED = 3  # consecutive failed pulls after which a source turns the whole run red

_MESSAGE_HEAD = {"failing": "source(s) keep failing: ", "stale": "index is stale: "}


@dataclass(frozen=True)
class RefreshVerdict:
    """A refresh run's health: ``healthy``, ``stale`` (a source failed or is backing off, so the index may miss
    what it published), ``warning`` (documents quarantined or left unindexed) or ``failing`` (a source keeps
    failing), with the reasons in words."""

    status: Literal["healthy", "stale", "warning", "failing"]
    reasons: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return (_MESSAGE_HEAD.get(self.status, "") + "; ".join(self.reasons)) or "index is fresh"

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status, "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RefreshVerdict:
        """The verdict a summary recorded (its status and message): the message's reasons come back as one."""
        status, message = data.get("status") or "healthy", data.get("message") or ""
        reason = message.removeprefix(_MESSAGE_HEAD.get(status, ""))
        return cls(status, [reason] if reason and status != "healthy" else [])


@dataclass
class RefreshSummary:
    """One refresh run: its time, each source's pull, the index step, how long what it made searchable took (from
    publication, new items only; and from first seen), its verdict once judged, and the champion's drift when the
    run measured it. ``to_dict`` is its one JSON form (the catalog row, the flow's result, ``kup refresh --json``);
    ``from_dict`` reads any version's back."""

    seconds: float = 0.0
    sources: list[SourceSummary] = field(default_factory=list)
    index: IndexReport = field(default_factory=IndexReport)
    freshness_lag_seconds: Lag = field(default_factory=Lag)
    first_seen_lag_seconds: Lag = field(default_factory=Lag)
    verdict: RefreshVerdict | None = None
    drift: dict[str, Any] | None = None  # a ``training.drift.DriftReport`` as a dict

    @property
    def totals(self) -> Totals:
        return Totals(**{f.name: sum(getattr(s, f.name) for s in self.sources) for f in fields(Totals)})

    @property
    def failed_sources(self) -> list[str]:
        return [s.source for s in self.sources if not s.ok]

    def to_dict(self) -> dict[str, Any]:
        data = {
            "seconds": self.seconds,
            "sources": [s.to_dict() for s in self.sources],
            "totals": asdict(self.totals),
            "failed_sources": self.failed_sources,
            "index": self.index.as_dict(),
            "freshness_lag_seconds": asdict(self.freshness_lag_seconds),
            "first_seen_lag_seconds": asdict(self.first_seen_lag_seconds),
        }
        if self.verdict is not None:
            data["verdict"] = self.verdict.to_dict()
        if self.drift is not None:
            data["drift"] = self.drift
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RefreshSummary:
        """A summary as ``to_dict`` (or an older version) wrote it; what a row lacks takes its default."""
        return cls(
            seconds=data.get("seconds") or 0.0,
            sources=[SourceSummary.from_dict(row) for row in data.get("sources") or ()],
            index=IndexReport.from_dict(data.get("index") or {}),
            freshness_lag_seconds=Lag.from_dict(data.get("freshness_lag_seconds")),
            first_seen_lag_seconds=Lag.from_dict(data.get("first_seen_lag_seconds")),
            verdict=RefreshVerdict.from_dict(data["verdict"]) if data.get("verdict") else None,
            drift=data.get("drift"),
        )


def summarize(
    sources: list[SourceReport], index: IndexReport, seconds: float, samples: list[dict[str, Any]] | None = None
) -> RefreshSummary:
    """The summary of one refresh run. With ``samples`` (``Catalog.searchable_samples`` since the run began) its
    lags are the ones ``kup status`` reports, by the same rule: published to searchable for new items published
    after their source was added, first seen to searchable for every version the run made searchable; without,
    publication to indexing of what it indexed."""

    def lags(source: str | None, kind: str) -> list[float]:
        if samples is None:
            return index.lags.get(source, []) if source else index.all_lags()
        key = "published_lag" if kind == "published" else "first_seen_lag"
        return [x[key] for x in samples if x[key] is not None and (source is None or x["source"] == source)]

    per_source = [
        SourceSummary(
            **asdict(report),
            quarantined=index.quarantined_by_source.get(report.source, 0),
            freshness_lag_seconds=percentiles(lags(report.source, "published")),
            first_seen_lag_seconds=percentiles(lags(report.source, "first_seen")),
        )
        for report in sources
    ]
    return RefreshSummary(
        seconds=round(seconds, 3),
        sources=per_source,
        index=index,
        freshness_lag_seconds=percentiles(lags(None, "published")),
        first_seen_lag_seconds=percentiles(lags(None, "first_seen")),
    )


def refresh_verdict(summary: RefreshSummary, streaks: dict[str, int]) -> RefreshVerdict:
    """Failing when a source has failed ``FAILING_RUNS_BEFORE_RED`` runs in a row (pulled or still backing off);
    stale when a source failed or is backing off; a warning when documents were quarantined or left unindexed;
    else healthy. ``streaks``: failed runs in a row by source."""
    down = [s for s in summary.sources if s.error or s.skipped]
    failing = [
        f"{s.source} ({streaks.get(s.source, 1)} runs): {s.error or s.skipped}"
        for s in down
        if streaks.get(s.source, 1) >= FAILING_RUNS_BEFORE_RED
    ]
    if failing:
        return RefreshVerdict("failing", failing)
    stale = [f"{s.source} failed: {s.error}" if s.error else f"{s.source} {s.skipped}" for s in down]
    if stale:
        return RefreshVerdict("stale", stale)
    problems = []
    index = summary.index
    if index.quarantined:
        problems.append(f"{index.quarantined} document(s) failed the data checks")
    if index.failed:
        problems.append(f"{index.failed} document(s) could not be indexed: {'; '.join(index.errors)}")
    elif index.errors:
        problems.append(f"indexing did not finish: {'; '.join(index.errors)}")
    return RefreshVerdict("warning", problems) if problems else RefreshVerdict("healthy")


# -- the last day's freshness, for the kup-status artifact ----------------------------------------


class LagSample(NamedTuple):
    """One document made searchable: when, and how long it took from first seen (and from publication, when it
    was published after its source's first pull)."""

    source: str
    indexed_at: datetime
    first_seen_lag: float
    published_lag: float | None


def hourly_p95(samples: Sequence[LagSample], now: datetime, hours: int = 24) -> list[float | None]:
    """p95 of the first-seen-to-searchable lag for each of the last ``hours`` hours, oldest first."""
    buckets: list[list[float]] = [[] for _ in range(hours)]
    for sample in samples:
        age = (now - sample.indexed_at) / timedelta(hours=1)
        if 0 <= age < hours:
            buckets[hours - 1 - int(age)].append(sample.first_seen_lag)
    return [percentiles(bucket).p95 for bucket in buckets]

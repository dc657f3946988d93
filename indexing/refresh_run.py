"""A refresh run's steps that need no orchestrator: pull sources within their time limits, index what is pending
without losing it, then judge, record and describe the run.

The refresh flow (its pulls as Prefect tasks) and ``kup refresh`` without a server (its pulls on threads here)
both end a run through these functions, so the two cannot drift apart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from connectors import Source
from errors import ConfigError
from indexing.catalog import Catalog, now_utc
from indexing.ingest import broken_pull, failure_reason
from indexing.reports import (
    IndexReport,
    LagSample,
    SourceReport,
    Verdict,
    human_duration,
    refresh_verdict,
    status_markdown,
    summarize,
)

logger = logging.getLogger(__name__)

INDEX_TIMEOUT = 3600.0  # seconds for indexing what is pending; what is left stays pending for the next run
STATUS_WINDOW = timedelta(days=1)  # the freshness the kup-status artifact shows


@dataclass
class _Pull:
    source: Source
    limit: float
    started: float | None = None
    report: SourceReport | None = None
    error: BaseException | None = None
    done: bool = False


def pull_sources(
    sources: Sequence[Source],
    pull: Callable[[Source], SourceReport],
    catalog: Catalog,
    *,
    limits: Sequence[float],
    workers: int,
) -> list[SourceReport]:
    """Pull ``sources`` (in their order) ``workers`` at a time, each within its limit in seconds from when its pull
    starts; a pull that overruns or raises is recorded as its source's failure and the others go on.

    A pull stuck in Python code cannot be interrupted: it is left running on a daemon thread (so it never holds up
    the process's exit) and a fresh worker takes its place.
    """
    pulls = [_Pull(source, limit) for source, limit in zip(sources, limits, strict=True)]
    queue = list(reversed(pulls))
    changed = threading.Condition()

    def work() -> None:
        while True:
            with changed:
                if not queue:
                    return
                item = queue.pop()
                item.started = time.monotonic()
            try:
                item.report = pull(item.source)
            except Exception as exc:  # noqa: BLE001 - one bad source never stops the others
                item.error = exc
            with changed:
                item.done = True
                changed.notify_all()

    def add_worker() -> None:
        threading.Thread(target=work, name="pull", daemon=True).start()

    for _ in range(min(workers, len(pulls))):
        add_worker()
    reports: dict[int, SourceReport] = {}
    waiting = list(range(len(pulls)))
    while waiting:
        with changed:
            now = time.monotonic()
            finished = [i for i in waiting if pulls[i].done]
            overran = [
                i
                for i in waiting
                if not pulls[i].done and pulls[i].started is not None and now - pulls[i].started >= pulls[i].limit
            ]
            if not finished and not overran:
                deadlines = [p.started + p.limit - now for p in (pulls[i] for i in waiting) if p.started is not None]
                changed.wait(timeout=min([1.0, *deadlines]))
                continue
        for i in finished:
            item = pulls[i]
            if item.report is not None:
                reports[i] = item.report
            else:
                reports[i] = broken_pull(item.source, catalog, item.error or RuntimeError("no report"), item.limit)
        for i in overran:
            reports[i] = broken_pull(pulls[i].source, catalog, TimeoutError(), pulls[i].limit)
            add_worker()
        waiting = [i for i in waiting if i not in reports]
    return [reports[i] for i in range(len(pulls))]


def broken_index(exc: BaseException, limit: float = INDEX_TIMEOUT) -> IndexReport:
    """An index step that timed out or broke leaves its documents pending, with the reason; a configuration error
    (a bad store URL) stops the run instead."""
    if isinstance(exc, ConfigError):
        raise exc
    if isinstance(exc, TimeoutError):
        reason = f"indexing stopped after {human_duration(limit)}; the rest stays pending for the next run"
        return IndexReport(errors=[reason])
    return IndexReport(errors=[failure_reason(exc)])


def index_safely(index: Callable[[], IndexReport]) -> IndexReport:
    """Index what is pending; an unexpected error leaves the documents pending (see ``broken_index``)."""
    try:
        return index()
    except Exception as exc:  # noqa: BLE001 - what is left stays pending for the next run
        return broken_index(exc)


@dataclass
class RefreshOutcome:
    """A finished refresh run: its JSON-ready summary (with the verdict in it), failure streaks and verdict."""

    summary: dict[str, Any]
    streaks: dict[str, int]
    verdict: Verdict
    started: datetime
    finished: datetime


def finish_refresh(
    catalog: Catalog,
    reports: list[SourceReport],
    index_report: IndexReport,
    started: datetime,
    extra: dict[str, Any] | None = None,
) -> RefreshOutcome:
    """Summarize the run, judge it against each source's failure streak, and record it in the catalog (with
    ``extra`` figures, such as the model's drift, kept in the summary beside the run's own)."""
    finished = now_utc()
    samples = catalog.searchable_samples(started)  # the versions this run made searchable, as `kup status` counts
    summary = summarize(reports, index_report, (finished - started).total_seconds(), samples)
    streaks = catalog.failure_streaks([report.source for report in reports])
    verdict = refresh_verdict(summary, streaks)
    summary["verdict"] = {"status": verdict.status, "message": verdict.message}
    summary.update(extra or {})
    catalog.record_refresh(started, finished, summary)
    return RefreshOutcome(summary, streaks, verdict, started, finished)


def status_report(catalog: Catalog, outcome: RefreshOutcome) -> str:
    """The kup-status markdown for ``outcome``: the verdict, each source's health and the last day's freshness."""
    samples = [LagSample(**x) for x in catalog.searchable_samples(outcome.finished - STATUS_WINDOW)]
    return status_markdown(outcome.summary, outcome.verdict, catalog.status()["sources"], samples, outcome.finished)


def done_line(outcome: RefreshOutcome) -> str:
    """The run in one log line: time, counts, freshness lag and the verdict."""
    summary = outcome.summary
    lag, totals = summary["freshness_lag_seconds"], summary["totals"]
    seen = summary.get("first_seen_lag_seconds") or {}
    figures = []
    if seen.get("p50") is not None:
        figures.append(f"first seen to searchable p50 {human_duration(seen['p50'])}, p95 {human_duration(seen['p95'])}")
    if lag.get("p50") is not None:
        figures.append(f"published to searchable p50 {human_duration(lag['p50'])}, p95 {human_duration(lag['p95'])}")
    return (
        f"refresh done in {human_duration(summary['seconds'])}: {totals['new']} new, {totals['updated']} updated, "
        f"{totals['unchanged']} unchanged, {totals['deleted']} deleted, {totals['failed']} failed; "
        + ("; ".join(figures) + "; " if figures else "")
        + outcome.verdict.message
    )

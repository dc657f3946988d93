"""A refresh run's steps that need no orchestrator: pull sources within their time limits, index what is pending
without losing it, then judge and record the run.

The refresh flow (its pulls as Prefect tasks) and ``kup refresh`` without a server (its pulls on threads here)
both end a run through these functions, so the two cannot drift apart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors import Source
from errors import ConfigError
from errors.durations import human_duration
from indexing.catalog import Catalog, now_utc
from indexing.ingest import broken_pull
from indexing.reports import IndexReport, RefreshSummary, RefreshVerdict, SourceReport, refresh_verdict, summarize
from indexing.source_kind import failure_reason

logger = logging.getLogger(__name__)

INDEX_TIMEOUT = 3600.0  # seconds for indexing what is pending; what is left stays pending for the next run


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
    """A finished refresh run: its summary (with the verdict in it) and each source's failure streak."""

    summary: RefreshSummary
    streaks: dict[str, int]
    started: datetime
    finished: datetime

    @property
    def verdict(self) -> RefreshVerdict:
        assert self.summary.verdict is not None  # finish_refresh judges every run it summarizes
        return self.summary.verdict


def finish_refresh(
    catalog: Catalog,
    reports: list[SourceReport],
    index_report: IndexReport,
    started: datetime,
    drift: dict[str, Any] | None = None,
) -> RefreshOutcome:
    """Summarize the run, judge it against each source's failure streak, and record it in the catalog (with the
    model's ``drift`` when the run measured it)."""
    finished = now_utc()
    samples = catalog.searchable_samples(started)  # the versions this run made searchable, as `kup status` counts
    summary = summarize(reports, index_report, (finished - started).total_seconds(), samples)
    streaks = catalog.failure_streaks([report.source for report in reports])
    summary.verdict = refresh_verdict(summary, streaks)
    summary.drift = drift
    catalog.record_refresh(started, finished, summary)
    return RefreshOutcome(summary, streaks, started, finished)

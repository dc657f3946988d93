"""The refresh pipeline run in this process without Prefect: what ``kup refresh`` does when no Prefect server answers.

Prefect's temporary server is not reliable on a loaded machine (it times out at start and prints tracebacks at
shutdown), so a refresh from a shell with no ``kup up`` around takes the refresh flow's steps from
``indexing.refresh_run`` (each source pulled within the same time limit, what is pending indexed, the run judged and
recorded in the catalog) and is not recorded in a dashboard. The champion's drift is measured as the flow does
(``flows.drift_check``) and kept in the run's summary and ``drift.jsonl``; with no server, no event is emitted, so
no fine-tune starts on its own (``kup status`` and the run's output say when one is due).
"""

from __future__ import annotations

import logging

from connectors import Source, select_sources
from flows.drift_check import drift_due, measure_drift_now
from flows.refresh_report import done_line
from flows.runtime import Runtime
from flows.settings import Settings
from indexing import SourceReport, ingest_source, now_utc
from indexing.ingest import pull_timeout
from indexing.refresh_run import finish_refresh, index_safely, pull_sources
from indexing.reports import RefreshSummary

logger = logging.getLogger(__name__)


def refresh_here(settings: Settings, sources: list[str] | None = None, force: bool = False) -> RefreshSummary:
    """Pull the named sources (all when empty) ``source_concurrency`` at a time, index what is pending, and record
    the run in the catalog; returns the run's summary with its verdict (the refresh flow's result is its dict)."""
    started = now_utc()
    with Runtime(settings) as runtime:
        selected = select_sources(runtime.sources(), sources)

        def pull(source: Source) -> SourceReport:
            return ingest_source(
                source, runtime.catalog, runtime.fetcher, force=force, article_workers=settings.article_workers
            )

        reports = pull_sources(
            selected,
            pull,
            runtime.catalog,
            limits=[pull_timeout(source, runtime.fetcher.policy, settings.article_workers) for source in selected],
            workers=settings.source_concurrency,
        )
        index_report = index_safely(runtime.indexer.run)
        drift = measure_drift_now(runtime).as_dict() if drift_due(settings) else None  # after indexing, as the flow
        outcome = finish_refresh(runtime.catalog, reports, index_report, started, drift)
    logger.info("%s (without Prefect)", done_line(outcome))
    return outcome.summary

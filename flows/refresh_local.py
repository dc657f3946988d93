"""The refresh pipeline run in this process without Prefect: what ``kup refresh`` does when no Prefect server answers.

Prefect's temporary server is not reliable on a loaded machine (it times out at start and prints tracebacks at
shutdown), so a refresh from a shell with no ``kup up`` around calls the same library steps as the refresh flow
(pull each source, index what is pending, summarize, record, judge) and is not recorded in a dashboard.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from connectors import FeedSource, Source, select_sources
from errors import KupError
from flows.runtime import Runtime
from flows.settings import Settings
from indexing import IndexReport, SourceReport, ingest_source, now_utc, summarize
from indexing.ingest import failure_reason, record_failure
from indexing.reports import refresh_verdict

logger = logging.getLogger(__name__)


def _pull(runtime: Runtime, source: Source, force: bool) -> SourceReport:
    """One source's pull; an unexpected error is recorded as the source's failure, never raised."""
    try:
        return ingest_source(
            source, runtime.catalog, runtime.fetcher, force=force, article_workers=runtime.settings.article_workers
        )
    except KupError:
        raise  # a configuration error stops the run, as in the flow
    except Exception as exc:  # noqa: BLE001 - one bad source never stops the others
        kind = "feed" if isinstance(source, FeedSource) else "sql"
        return record_failure(source.name, kind, runtime.catalog, failure_reason(exc))


def _index(runtime: Runtime) -> IndexReport:
    """Index what is pending; an unexpected error leaves the documents pending, with the reason."""
    try:
        return runtime.indexer.run()
    except KupError:
        raise
    except Exception as exc:  # noqa: BLE001 - what is left stays pending for the next run
        return IndexReport(errors=[failure_reason(exc)])


def refresh_here(settings: Settings, sources: list[str] | None = None, force: bool = False) -> dict[str, Any]:
    """Pull the named sources (all when empty) ``source_concurrency`` at a time, index what is pending, and record
    the run in the catalog; returns the run's summary with its verdict (as the refresh flow's result does)."""
    started = now_utc()
    with Runtime(settings) as runtime:
        selected = select_sources(runtime.sources(), sources)
        with ThreadPoolExecutor(max_workers=settings.source_concurrency, thread_name_prefix="pull") as pool:
            reports = list(pool.map(lambda source: _pull(runtime, source, force), selected))
        index_report = _index(runtime)
        finished = now_utc()
        summary = summarize(reports, index_report, (finished - started).total_seconds())
        streaks = runtime.catalog.failure_streaks([source.name for source in selected])
        verdict = refresh_verdict(summary, streaks)
        summary["verdict"] = {"status": verdict.status, "message": verdict.message}
        runtime.catalog.record_refresh(started, finished, summary)
    logger.info("refresh done without Prefect: %s", verdict.message)
    return summary

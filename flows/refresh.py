"""The refresh flow: pull every source (bounded concurrency), commit to the catalog, index what is pending."""

from __future__ import annotations

import os

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.task_runners import ThreadPoolTaskRunner

from connectors import Source, select_sources
from flows.runtime import Runtime
from flows.settings import load_settings
from indexing import IndexReport, SourceReport, ingest_source, now_utc, summarize


def _source_concurrency() -> int:
    # Read at import: a served deployment builds its task runner when the flow module loads.
    return max(1, int(os.environ.get("KUP_SOURCE_CONCURRENCY", "4")))


@task(name="pull-source", cache_policy=NONE, task_run_name="pull-{source.name}")
def pull_source(runtime: Runtime, source: Source, force: bool = False) -> SourceReport:
    report = ingest_source(source, runtime.catalog, runtime.fetcher, force=force)
    logger = get_run_logger()
    if report.error:
        logger.warning("%s failed: %s", source.name, report.error)
    else:
        logger.info(
            "%s: %d new, %d updated, %d unchanged, %d failed%s",
            source.name,
            report.new,
            report.updated,
            report.unchanged,
            report.failed,
            " (not modified)" if report.not_modified else "",
        )
    return report


@task(name="index-pending", cache_policy=NONE)
def index_pending(runtime: Runtime) -> IndexReport:
    report = runtime.indexer.run()
    get_run_logger().info(
        "indexed %d document(s): %d chunk(s) embedded, %d reused, %d unchanged, %d deleted, %d failed",
        report.documents,
        report.embedded,
        report.reused,
        report.unchanged,
        report.deleted,
        report.failed,
    )
    return report


@flow(name="refresh", task_runner=ThreadPoolTaskRunner(max_workers=_source_concurrency()))
def refresh(sources: list[str] | None = None, force: bool = False) -> dict:
    """Pull the named sources (all when empty) once, then index every pending document.

    ``force`` pulls sources even while they are backing off after failures.
    """
    logger = get_run_logger()
    settings = load_settings()
    started = now_utc()
    with Runtime(settings) as runtime:
        selected = select_sources(runtime.sources(), sources)
        futures = [pull_source.submit(runtime, source, force) for source in selected]
        reports = [future.result() for future in futures]
        index_report = index_pending(runtime)
        finished = now_utc()
        summary = summarize(reports, index_report, (finished - started).total_seconds())
        runtime.catalog.record_refresh(started, finished, summary)
    lag = summary["freshness_lag_seconds"]
    logger.info(
        "refresh done in %.1fs: %s; freshness lag p50=%s s p95=%s s",
        summary["seconds"],
        summary["totals"],
        lag["p50"],
        lag["p95"],
    )
    return summary

"""The refresh flow: pull every source (bounded concurrency), commit to the catalog, index what is pending.

Each run publishes a table of per-source figures and a short markdown summary as Prefect
artifacts, so the dashboard tells at a glance whether the index is fresh. A source that keeps
failing fails the run (with the reason); a one-off failure or quarantined data leaves the run
completed with a "Warning" state and its reasons.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from connectors import Source, select_sources
from errors import ConfigError
from flows.runtime import Runtime
from flows.settings import Settings, load_settings
from indexing import IndexReport, SourceReport, ingest_source, now_utc, summarize
from indexing.reports import refresh_markdown, refresh_rows, refresh_verdict


def _source_runner() -> ThreadPoolTaskRunner:
    """Sources pulled at once (``source_concurrency``), read when this module loads: a served deployment builds
    its task runner then. Invalid settings fall back to the default here; the run itself reports them."""
    try:
        workers = load_settings().source_concurrency
    except ConfigError:
        workers = Settings.model_fields["source_concurrency"].default
    return ThreadPoolTaskRunner(max_workers=workers)


# Retries cover unexpected errors (a catalog hiccup); fetch errors are retried inside the fetcher
# and a failing source backs off across runs.
_RETRIES = {"retries": 2, "retry_delay_seconds": exponential_backoff(backoff_factor=2), "retry_jitter_factor": 0.5}


@task(name="pull-source", cache_policy=NONE, task_run_name="pull-{source.name}", **_RETRIES)
def pull_source(runtime: Runtime, source: Source, force: bool = False) -> SourceReport:
    report = ingest_source(
        source, runtime.catalog, runtime.fetcher, force=force, article_workers=runtime.settings.article_workers
    )
    logger = get_run_logger()
    if report.error:
        logger.warning("%s failed: %s", source.name, report.error)
    else:
        logger.info(
            "%s: %d new, %d updated, %d unchanged, %d deleted, %d failed%s",
            source.name,
            report.new,
            report.updated,
            report.unchanged,
            report.deleted,
            report.failed,
            " (not modified)" if report.not_modified else "",
        )
    return report


@task(name="index-pending", cache_policy=NONE, **_RETRIES)
def index_pending(runtime: Runtime) -> IndexReport:
    report = runtime.indexer.run()
    get_run_logger().info(
        "indexed %d document(s): %d chunk(s) embedded, %d reused, %d unchanged, %d deleted, "
        "%d quarantined by the data checks, %d failed",
        report.documents,
        report.embedded,
        report.reused,
        report.unchanged,
        report.deleted,
        report.quarantined,
        report.failed,
    )
    return report


def final_state(summary: dict, streaks: dict[str, int]) -> State:
    """The run's Prefect state from its verdict: Failed, a completed "Warning", or Completed."""
    verdict = refresh_verdict(summary, streaks)
    if verdict.status == "failing":
        return Failed(message=verdict.message, data=summary)
    if verdict.status == "warning":
        return Completed(name="Warning", message=verdict.message, data=summary)
    return Completed(message=verdict.message, data=summary)


@flow(name="refresh", task_runner=_source_runner())
def refresh(sources: list[str] | None = None, force: bool = False) -> State:
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
        streaks = runtime.catalog.failure_streaks([source.name for source in selected])
    create_table_artifact(
        key="refresh-sources", table=refresh_rows(summary, streaks), description="Per-source figures of this refresh"
    )
    create_markdown_artifact(
        key="refresh-summary", markdown=refresh_markdown(summary, streaks), description="Refresh summary"
    )
    lag = summary["freshness_lag_seconds"]
    logger.info(
        "refresh done in %.1fs: %s; freshness lag p50=%s s p95=%s s",
        summary["seconds"],
        summary["totals"],
        lag["p50"],
        lag["p95"],
    )
    return final_state(summary, streaks)

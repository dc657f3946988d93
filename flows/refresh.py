"""The refresh flow: pull every source (bounded concurrency), commit to the catalog, index what is pending.

Each run says at a glance whether the index is fresh: a run with a failing or backing-off source ends
``Completed`` named "Stale" (tag ``stale``), a source that keeps failing turns it ``Failed`` (tag ``failing``),
quarantined or unindexed documents give a "Warning"; only a clean run is "index is fresh" (tag ``fresh``).
Every run also publishes its per-source table and summary, and updates the keyed ``kup-status`` artifact that
the Artifacts page shows as the latest. A configuration error ends the run Failed with one sentence.
"""

from __future__ import annotations

import math
from datetime import timedelta

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.states import Completed, State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from connectors import FeedSource, Source, select_sources
from errors import ConfigError, KupError
from flows.outcome import failed, quiet_deliberate_failures
from flows.runtime import Runtime
from flows.settings import Settings, load_settings
from indexing import IndexReport, SourceReport, ingest_source, now_utc, summarize
from indexing.ingest import failure_reason, record_failure
from indexing.reports import (
    LagSample,
    Verdict,
    human_duration,
    refresh_markdown,
    refresh_rows,
    refresh_verdict,
    status_markdown,
)

quiet_deliberate_failures()

PULL_TIMEOUT_CAP = 600.0  # seconds one source's pull may take at most: the every-minute schedule waits on it
PULL_TIMEOUT_FLOOR = 5.0  # seconds every pull gets whatever the fetch settings, for the catalog writes
INDEX_TIMEOUT = 3600.0  # seconds for indexing what is pending; what is left stays pending for the next run
STATUS_WINDOW = timedelta(days=1)  # the freshness the kup-status artifact shows


def _source_runner() -> ThreadPoolTaskRunner:
    """Sources pulled at once (``source_concurrency``), read when this module loads: a served deployment builds
    its task runner then. Invalid settings fall back to the default here; the run itself reports them."""
    try:
        workers = load_settings().source_concurrency
    except ConfigError:
        workers = Settings.model_fields["source_concurrency"].default
    return ThreadPoolTaskRunner(max_workers=workers)


def pull_timeout(source: Source, settings: Settings) -> float:
    """Seconds a source's pull may take: a feed fetches itself and then its articles ``article_workers`` at a
    time, each fetch bounded by ``total_timeout`` per attempt; twice that, capped. A database source gets the cap.
    """
    if not isinstance(source, FeedSource):
        return PULL_TIMEOUT_CAP
    rounds = 1 + math.ceil(source.max_items / settings.article_workers)
    per_fetch = settings.total_timeout * (settings.fetch_retries + 1)
    return min(PULL_TIMEOUT_CAP, PULL_TIMEOUT_FLOOR + 2 * per_fetch * rounds)


def _retry_unless_timed_out(task, task_run, state) -> bool:
    """A pull or an index that ran out of time is not tried again in the same run."""
    try:
        state.result()
    except TimeoutError:
        return False
    except Exception:  # noqa: BLE001 - any other error may be a hiccup worth a retry
        return True
    return True


# Retries cover unexpected errors (a catalog hiccup); fetch errors are retried inside the fetcher
# and a failing source backs off across runs.
_RETRIES = {
    "retries": 2,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
    "retry_condition_fn": _retry_unless_timed_out,
}


@task(name="pull-source", cache_policy=NONE, task_run_name="pull-{source.name}", **_RETRIES)
def pull_source(runtime: Runtime, source: Source, force: bool = False) -> SourceReport:
    report = ingest_source(
        source, runtime.catalog, runtime.fetcher, force=force, article_workers=runtime.settings.article_workers
    )
    logger = get_run_logger()
    if report.error:
        logger.warning("%s failed: %s", source.name, report.error)
    elif report.skipped:
        logger.warning("%s not pulled: %s", source.name, report.skipped)
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


@task(name="index-pending", cache_policy=NONE, timeout_seconds=INDEX_TIMEOUT, **_RETRIES)
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


def _pulled(runtime: Runtime, source: Source, future, timeout: float) -> SourceReport:
    """The pull's report; a pull that timed out or broke is recorded as the source's failure, never raised."""
    future.wait()
    if future.state.is_completed():
        return future.result()
    exc = future.result(raise_on_failure=False)
    reason = (
        f"pull stopped after {human_duration(timeout)} (the limit for this source)"
        if isinstance(exc, TimeoutError)
        else failure_reason(exc)
    )
    return record_failure(source.name, "feed" if isinstance(source, FeedSource) else "sql", runtime.catalog, reason)


def _indexed(future) -> IndexReport:
    """The index report; an index step that timed out or broke leaves its documents pending, with the reason."""
    future.wait()
    if future.state.is_completed():
        return future.result()
    exc = future.result(raise_on_failure=False)
    reason = (
        f"indexing stopped after {human_duration(INDEX_TIMEOUT)}; the rest stays pending for the next run"
        if isinstance(exc, TimeoutError)
        else failure_reason(exc)
    )
    return IndexReport(errors=[reason])


TAGS = {"healthy": "fresh", "stale": "stale", "warning": "warning", "failing": "failing"}


def final_state(summary: dict, verdict: Verdict) -> State:
    """The run's Prefect state from its verdict: Failed (red), a completed "Stale" or "Warning", or Completed."""
    if verdict.status == "failing":
        return failed(verdict.message, summary)
    if verdict.status == "stale":
        return Completed(name="Stale", message=verdict.message, data=summary)
    if verdict.status == "warning":
        return Completed(name="Warning", message=verdict.message, data=summary)
    return Completed(message=verdict.message, data=summary)


def _tag_run(tag: str) -> None:
    """Add the verdict's tag to this flow run, so the runs list can be filtered by freshness."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    run = context.flow_run
    with get_client(sync_client=True) as client:
        client.update_flow_run(run.id, tags=sorted({*run.tags, tag}))


@flow(name="refresh", task_runner=_source_runner())
def refresh(sources: list[str] | None = None, force: bool = False) -> State:
    """Pull the named sources (all when empty) once, then index every pending document.

    ``force`` pulls sources even while they are backing off after failures.
    """
    logger = get_run_logger()
    try:
        return _refresh(sources, force)
    except KupError as exc:
        logger.error("refresh failed: %s", exc)
        _tag_run("failing")
        return failed(str(exc))


def _refresh(sources: list[str] | None, force: bool) -> State:
    logger = get_run_logger()
    settings = load_settings()
    started = now_utc()
    with Runtime(settings) as runtime:
        selected = select_sources(runtime.sources(), sources)
        timeouts = [pull_timeout(source, settings) for source in selected]
        futures = [
            pull_source.with_options(timeout_seconds=timeout).submit(runtime, source, force)
            for source, timeout in zip(selected, timeouts, strict=True)
        ]
        reports = [
            _pulled(runtime, source, future, timeout)
            for source, future, timeout in zip(selected, futures, timeouts, strict=True)
        ]
        index_report = _indexed(index_pending.submit(runtime))
        finished = now_utc()
        summary = summarize(reports, index_report, (finished - started).total_seconds())
        streaks = runtime.catalog.failure_streaks([source.name for source in selected])
        verdict = refresh_verdict(summary, streaks)
        summary["verdict"] = {"status": verdict.status, "message": verdict.message}
        runtime.catalog.record_refresh(started, finished, summary)
        status = status_markdown(
            summary,
            verdict,
            runtime.catalog.status()["sources"],
            [LagSample(**x) for x in runtime.catalog.searchable_samples(finished - STATUS_WINDOW)],
            finished,
        )
    create_table_artifact(
        key="refresh-sources", table=refresh_rows(summary, streaks), description="Per-source figures of this refresh"
    )
    create_markdown_artifact(
        key="refresh-summary", markdown=refresh_markdown(summary, streaks), description="Refresh summary"
    )
    create_markdown_artifact(key="kup-status", markdown=status, description="Is the index fresh? (latest refresh)")
    _tag_run(TAGS[verdict.status])
    lag, totals = summary["freshness_lag_seconds"], summary["totals"]
    logger.info(
        "refresh done in %s: %d new, %d updated, %d unchanged, %d deleted, %d failed; "
        "lag published to searchable p50 %s, p95 %s; %s",
        human_duration(summary["seconds"]),
        totals["new"],
        totals["updated"],
        totals["unchanged"],
        totals["deleted"],
        totals["failed"],
        human_duration(lag["p50"]),
        human_duration(lag["p95"]),
        verdict.message,
    )
    return final_state(summary, verdict)

"""The refresh flow: pull every source (bounded concurrency), commit to the catalog, index what is pending.

Each run says at a glance whether the index is fresh: a run with a failing or backing-off source ends ``Failed``
named "Stale" (tag ``stale``) with one sentence naming the sources, so the runs list never shows it green; a source
failing ``FAILING_RUNS_BEFORE_RED`` runs in a row makes it ``Failed`` named "Failed" (tag ``failing``); quarantined
or unindexed documents give a completed "Warning"; only a clean run is "index is fresh" (tag ``fresh``). Every run
also publishes its per-source table and summary, and updates the keyed ``kup-status`` artifact that the Artifacts
page shows as the latest. A configuration error ends the run Failed with one sentence. The steps themselves live in
``indexing.refresh_run``, shared with ``kup refresh`` when no Prefect server answers.

With ``KUP_DRIFT_CHECK`` on, a run whose last drift measurement is ``KUP_DRIFT_EVERY_HOURS`` old measures the
champion adapter's drift after indexing (``training.drift``: perplexity on recent documents / on its training
period), keeps it in the run's summary, updates the ``model-drift`` artifacts (history table and plot) and emits
``kup.drift.measured``, plus ``kup.drift.exceeded`` when the ratio reaches ``KUP_DRIFT_THRESHOLD``: the event the
finetune deployment's automation (``prefect.yaml``) runs a fine-tune on. A failed measurement never fails the run.
"""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.states import Completed, State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from connectors import Source, select_sources
from errors import ConfigError, KupError
from flows.drift_check import drift_due, measure_drift_now
from flows.outcome import failed, quiet_deliberate_failures, tag_this_run
from flows.refresh_report import done_line, refresh_markdown, refresh_rows, status_report
from flows.runtime import Runtime
from flows.settings import Settings, load_settings
from indexing import IndexReport, SourceReport, ingest_source, now_utc
from indexing.ingest import broken_pull, pull_timeout
from indexing.refresh_run import INDEX_TIMEOUT, RefreshOutcome, broken_index, finish_refresh

quiet_deliberate_failures()


def _source_runner() -> ThreadPoolTaskRunner:
    """Sources pulled at once (``source_concurrency``), read when this module loads: a served deployment builds
    its task runner then. Invalid settings fall back to the default here; the run itself reports them."""
    try:
        workers = load_settings().source_concurrency
    except ConfigError:
        workers = Settings.model_fields["source_concurrency"].default
    return ThreadPoolTaskRunner(max_workers=workers)


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
    (logger.info if report.ok and not report.skipped else logger.warning)("%s", report.words())
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


@task(name="measure-drift", cache_policy=NONE)
def measure_drift(runtime: Runtime) -> dict:
    """The champion's perplexity on recently indexed documents against its training period, recorded in the data
    directory; a failure is recorded as a skip in one sentence."""
    report = measure_drift_now(runtime)
    get_run_logger().info("%s", report.words())
    return report.as_dict()


def _drift(runtime: Runtime) -> dict | None:
    """The drift measurement when it is on and due, else None (most runs: it loads the model)."""
    return measure_drift(runtime) if drift_due(runtime.settings) else None


def _publish_drift(report: dict, settings: Settings) -> None:
    """The drift history as a table and a plot (keyed ``model-drift``), and the events the automation reacts to."""
    from prefect.events import emit_event

    from training.drift import DriftReport, event, history, plot_markdown

    rows = [
        {k: h.get(k) for k in ("measured_at", "champion", "ratio", "threshold", "exceeded", "skipped")}
        for h in history(settings.data_path, limit=60)
    ]
    create_table_artifact(
        key="model-drift",
        table=rows,
        description="Champion perplexity on recent documents / on its training period (oldest first)",
    )
    create_markdown_artifact(
        key="model-drift-plot", markdown=plot_markdown(rows), description="The champion's drift over time"
    )
    for name, resource, payload in event(DriftReport(**report)):
        emit_event(name, resource=resource, payload=payload)


def _pulled(runtime: Runtime, source: Source, future, timeout: float) -> SourceReport:
    """The pull's report; a pull that timed out or broke is recorded as the source's failure, never raised."""
    future.wait()
    if future.state.is_completed():
        return future.result()
    return broken_pull(source, runtime.catalog, future.result(raise_on_failure=False), timeout)


def _indexed(future) -> IndexReport:
    """The index report; an index step that timed out or broke leaves its documents pending, with the reason."""
    future.wait()
    if future.state.is_completed():
        return future.result()
    return broken_index(future.result(raise_on_failure=False))


TAGS = {"healthy": "fresh", "stale": "stale", "warning": "warning", "failing": "failing"}


def final_state(outcome: RefreshOutcome) -> State:
    """The run's Prefect state from its verdict: Failed named "Failed" (a source keeps failing) or "Stale" (a source
    failed or backs off), a completed "Warning", or Completed. A stale run is a Failed state so that the runs list
    never paints it green; its result still carries the summary (as a dict: another process may read it)."""
    summary, verdict = outcome.summary.to_dict(), outcome.verdict
    if verdict.status == "failing":
        return failed(verdict.message, summary)
    if verdict.status == "stale":
        return failed(verdict.message, summary, name="Stale")
    if verdict.status == "warning":
        return Completed(name="Warning", message=verdict.message, data=summary)
    return Completed(message=verdict.message, data=summary)


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
        tag_this_run("failing")
        return failed(str(exc))


def _refresh(sources: list[str] | None, force: bool) -> State:
    settings = load_settings()
    started = now_utc()
    with Runtime(settings) as runtime:
        selected = select_sources(runtime.sources(), sources)
        limits = [pull_timeout(source, runtime.fetcher.policy, settings.article_workers) for source in selected]
        futures = [
            pull_source.with_options(timeout_seconds=limit).submit(runtime, source, force)
            for source, limit in zip(selected, limits, strict=True)
        ]
        reports = [
            _pulled(runtime, source, future, limit)
            for source, future, limit in zip(selected, futures, limits, strict=True)
        ]
        index_report = _indexed(index_pending.submit(runtime))
        drift = _drift(runtime)  # after indexing: what is new is already searchable
        outcome = finish_refresh(runtime.catalog, reports, index_report, started, drift)
        status = status_report(runtime.catalog, outcome)
    _publish(outcome, status)
    if drift:
        _publish_drift(drift, settings)
    get_run_logger().info("%s", done_line(outcome))
    return final_state(outcome)


def _publish(outcome: RefreshOutcome, status: str) -> None:
    """The run's per-source table and summary, the keyed kup-status artifact, and the verdict's tag."""
    summary, streaks = outcome.summary, outcome.streaks
    create_table_artifact(
        key="refresh-sources", table=refresh_rows(summary, streaks), description="Per-source figures of this refresh"
    )
    status_id = create_markdown_artifact(
        key="kup-status", markdown=status, description="Is the index fresh? (latest refresh)"
    )
    # The Artifacts page opens on the list of kup-status versions: the run's summary links the one it wrote.
    link = f"\n\n[This run's kup-status report](/artifacts/artifact/{status_id})\n" if status_id else ""
    create_markdown_artifact(
        key="refresh-summary", markdown=refresh_markdown(summary, streaks) + link, description="Refresh summary"
    )
    tag_this_run(TAGS[outcome.verdict.status])

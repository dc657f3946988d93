"""The refresh flow: pull every source (bounded concurrency), commit to the catalog, index what is pending.

Each run publishes a table of per-source figures and a short markdown summary as Prefect
artifacts, so the dashboard tells at a glance whether the index is fresh. A source that keeps
failing fails the run (with the reason); a one-off failure or quarantined data leaves the run
completed with a "Warning" state and its reasons.
"""

from __future__ import annotations

import os

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.states import Completed, Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.tasks import exponential_backoff

from connectors import Source, select_sources
from flows.runtime import Runtime
from flows.settings import load_settings
from indexing import IndexReport, SourceReport, ingest_source, now_utc, summarize

FAILING_RUNS_BEFORE_RED = 3  # consecutive failed pulls after which a source turns the whole run red


def _source_concurrency() -> int:
    # Read at import: a served deployment builds its task runner when the flow module loads.
    return max(1, int(os.environ.get("KUP_SOURCE_CONCURRENCY", "4")))


# Retries cover unexpected errors (a catalog hiccup); fetch errors are retried inside the fetcher
# and a failing source backs off across runs.
_RETRIES = {"retries": 2, "retry_delay_seconds": exponential_backoff(backoff_factor=2), "retry_jitter_factor": 0.5}


@task(name="pull-source", cache_policy=NONE, task_run_name="pull-{source.name}", **_RETRIES)
def pull_source(runtime: Runtime, source: Source, force: bool = False) -> SourceReport:
    report = ingest_source(source, runtime.catalog, runtime.fetcher, force=force)
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


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def publish_artifacts(summary: dict, consecutive: dict[str, int]) -> None:
    """A table per source and a markdown summary, shown on the run's Artifacts tab."""
    rows = []
    for s in summary["sources"]:
        lag = s["freshness_lag_seconds"]
        state = "ok"
        if s["error"]:
            state = f"FAILED x{consecutive.get(s['source'], 1)}: {s['error']}"
        elif s["skipped"]:
            state = s["skipped"]
        elif s["warnings"]:
            state = "warning: " + "; ".join(s["warnings"])
        rows.append(
            {
                "source": s["source"],
                "kind": s["kind"],
                "new": s["new"],
                "updated": s["updated"],
                "unchanged": s["unchanged"],
                "deleted": s["deleted"],
                "failed": s["failed"],
                "quarantined": s["quarantined"],
                "lag p50 (s)": _fmt(lag["p50"]),
                "lag p95 (s)": _fmt(lag["p95"]),
                "state": state,
            }
        )
    create_table_artifact(key="refresh-sources", table=rows, description="Per-source figures of this refresh")
    index = summary["index"]
    lag = summary["freshness_lag_seconds"]
    lines = [
        f"## Refresh: {summary['totals']['new']} new, {summary['totals']['updated']} updated, "
        f"{summary['totals']['deleted']} deleted",
        "",
        f"* Indexed **{index['documents']}** document(s) in {summary['seconds']:.1f} s: "
        f"{index['embedded']} chunk(s) embedded, {index['reused']} reused, {index['unchanged']} unchanged, "
        f"{index['deleted']} removed.",
        f"* Freshness lag (published to searchable): p50 **{_fmt(lag['p50'])} s**, p95 **{_fmt(lag['p95'])} s**.",
    ]
    checks = index.get("checks") or {}
    if checks.get("checked"):
        failures = ", ".join(f"{reason} ({n})" for reason, n in checks["failures"].items()) or "none"
        lines.append(f"* Data checks: {checks['passed']} of {checks['checked']} passed; quarantined: {failures}.")
    for s in summary["sources"]:
        if s["error"]:
            lines.append(
                f"* **{s['source']} failed** ({consecutive.get(s['source'], 1)} run(s) in a row): {s['error']}"
            )
    create_markdown_artifact(key="refresh-summary", markdown="\n".join(lines), description="Refresh summary")


def final_state(summary: dict, consecutive: dict[str, int]) -> State:
    """Failed when a source keeps failing; a completed "Warning" when something needs a look; else Completed."""
    red = [s for s in summary["failed_sources"] if consecutive.get(s, 1) >= FAILING_RUNS_BEFORE_RED]
    if red:
        reasons = "; ".join(
            f"{s['source']} ({consecutive[s['source']]} runs): {s['error']}"
            for s in summary["sources"]
            if s["source"] in red
        )
        return Failed(message=f"source(s) keep failing: {reasons}", data=summary)
    problems = [f"{s['source']} failed: {s['error']}" for s in summary["sources"] if s["error"]]
    if summary["index"]["quarantined"]:
        problems.append(f"{summary['index']['quarantined']} document(s) failed the data checks")
    if summary["index"]["failed"]:
        problems.append(f"{summary['index']['failed']} document(s) could not be indexed: {summary['index']['errors']}")
    if problems:
        return Completed(name="Warning", message="; ".join(problems), data=summary)
    return Completed(message="index is fresh", data=summary)


@flow(name="refresh", task_runner=ThreadPoolTaskRunner(max_workers=_source_concurrency()))
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
        consecutive = {s["source"]: s["consecutive_failures"] for s in runtime.catalog.status()["sources"]}
    publish_artifacts(summary, consecutive)
    lag = summary["freshness_lag_seconds"]
    logger.info(
        "refresh done in %.1fs: %s; freshness lag p50=%s s p95=%s s",
        summary["seconds"],
        summary["totals"],
        lag["p50"],
        lag["p95"],
    )
    return final_state(summary, consecutive)

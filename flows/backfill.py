"""The backfill flow: re-read a time window of one source by hand, then index what it found."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Completed, State

from connectors import select_sources
from errors import KupError
from errors.durations import human_duration
from flows.outcome import failed, quiet_deliberate_failures
from flows.runtime import Runtime
from flows.settings import load_settings
from indexing.fanout import stage_summary
from indexing.ingest import backfill_source

quiet_deliberate_failures()


@flow(name="backfill")
def backfill(source: str, since: datetime, until: datetime | None = None) -> State:
    """Re-pull ``source`` for documents from ``since`` up to ``until`` (now when empty) and index them."""
    logger = get_run_logger()
    window = f"{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M}" if until else f"{since:%Y-%m-%d %H:%M} to now"
    try:
        with Runtime(load_settings()) as runtime:
            [selected] = select_sources(runtime.sources(), [source])
            report = backfill_source(selected, runtime.catalog, runtime.fetcher, since, until)
            indexed = runtime.indexer.run()
            stages, stage_line = stage_summary(runtime.indexer.timings, runtime.indexer.fanout)
    except KupError as exc:
        logger.error("backfill of %s (%s) failed: %s", source, window, exc)
        return failed(f"backfill of {source} failed: {exc}")
    summary = {
        "source": source,
        "window": window,
        "new": report.new,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "error": report.error,
        "indexed": indexed.documents,
        "embedded": indexed.embedded,
        "pull_seconds": round(report.seconds, 2),
        **stages,
    }
    line = (
        f"{report.new} new, {report.updated} updated, {report.unchanged} unchanged; "
        f"{indexed.documents} document(s) indexed, {indexed.embedded} chunk(s) embedded"
    )
    create_markdown_artifact(
        key="backfill-summary",
        markdown=(
            f"## Backfill of `{source}`, {window}\n\n{line} in {human_duration(report.seconds)}."
            + f"\n\nStages: pull {report.seconds:.1f} s, {stage_line}."
            + (f"\n\n**Failed:** {report.error}" if report.error else "")
        ),
        description=f"backfill {source}",
    )
    logger.info("backfill of %s (%s): %s", source, window, line)
    if report.error:
        logger.error("backfill of %s failed: %s", source, report.error)
        return failed(f"backfill of {source} failed: {report.error}", summary)
    if indexed.failed:  # the store or the Dask cluster failed: the documents wait for the next run
        logger.error("backfill of %s could not index %d document(s): %s", source, indexed.failed, indexed.errors[0])
        message = f"backfill of {source} could not index {indexed.failed} document(s): {indexed.errors[0]}"
        return failed(message, summary)
    return Completed(message=line, data=summary)

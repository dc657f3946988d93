"""The backfill flow: re-read a time window of one source by hand, then index what it found."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from connectors import select_sources
from flows.runtime import Runtime
from flows.settings import load_settings
from indexing.backfill import backfill_source


@flow(name="backfill")
def backfill(source: str, since: datetime, until: datetime | None = None) -> dict:
    """Re-pull ``source`` for documents from ``since`` up to ``until`` (now when empty) and index them."""
    logger = get_run_logger()
    with Runtime(load_settings()) as runtime:
        [selected] = select_sources(runtime.sources(), [source])
        report = backfill_source(selected, runtime.catalog, runtime.fetcher, since, until)
        indexed = runtime.indexer.run()
    window = f"{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M}" if until else f"{since:%Y-%m-%d %H:%M} to now"
    summary = {
        "source": source,
        "window": window,
        "new": report.new,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "error": report.error,
        "indexed": indexed.documents,
        "embedded": indexed.embedded,
    }
    create_markdown_artifact(
        key="backfill-summary",
        markdown=(
            f"## Backfill of `{source}`, {window}\n\n"
            f"{report.new} new, {report.updated} updated, {report.unchanged} unchanged; "
            f"{indexed.documents} document(s) indexed, {indexed.embedded} chunk(s) embedded."
            + (f"\n\n**Failed:** {report.error}" if report.error else "")
        ),
        description=f"backfill {source}",
    )
    logger.info("backfill of %s (%s): %s", source, window, summary)
    if report.error:
        raise RuntimeError(report.error)
    return summary

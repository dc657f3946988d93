"""The reindex flow: rebuild the index from the catalog into a new collection and switch to it atomically."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.states import State

from errors import KupError
from flows.outcome import failed, quiet_deliberate_failures
from flows.runtime import Runtime
from flows.settings import load_settings
from indexing.fanout import stage_summary
from indexing.reindex import rebuild_index

quiet_deliberate_failures()


@flow(name="reindex")
def reindex() -> dict | State:
    """Rebuild everything with the current embedding model and chunking settings; searches never see a half-built
    index. A configuration or store error ends the run Failed with one sentence."""
    try:
        return _reindex()
    except KupError as exc:
        get_run_logger().error("reindex failed: %s", exc)
        return failed(f"reindex failed: {exc}")


def _reindex() -> dict:
    logger = get_run_logger()
    with Runtime(load_settings()) as runtime:
        total = runtime.catalog.count_live()
        progress = create_progress_artifact(0.0, key="reindex-progress", description="documents rebuilt")

        def on_progress(done: int) -> None:
            update_progress_artifact(progress, min(100.0, 100.0 * done / max(total, 1)))

        report = rebuild_index(
            runtime.catalog,
            runtime.store,
            runtime.indexer,
            dense_size=runtime.dense.dimension,
            batch_size=runtime.settings.index_batch_docs,
            on_progress=on_progress,
        )
        stages, stage_line = stage_summary(runtime.indexer.timings, runtime.indexer.fanout)
    create_markdown_artifact(
        key="reindex-summary",
        markdown=(
            f"## Reindex\n\nRebuilt {report.documents} document(s) into {report.chunks} chunk(s) "
            f"in {report.seconds:.1f} s and switched to `{report.collection}`; "
            f"{report.requeued} document(s) that changed meanwhile go to the next refresh.\n\n"
            f"Stages: {stage_line}."
        ),
    )
    logger.info("reindexed %d documents into %s; %s", report.documents, report.collection, stage_line)
    return {**report.__dict__, **stages}

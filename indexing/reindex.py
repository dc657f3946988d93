"""Rebuild the whole index from the catalog into a new collection, then switch to it atomically.

This is how a new embedding model or chunking setting is rolled out: searches keep reading the
old index until the new one is complete. Documents that change while the rebuild runs are sent
back to the indexer afterwards, so the next refresh brings them into the new index.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from indexing.catalog import Catalog, now_utc
from indexing.indexer import Indexer
from indexing.reports import IndexReport
from indexing.store import VectorStore


@dataclass
class RebuildReport:
    documents: int = 0
    chunks: int = 0
    requeued: int = 0  # documents changed during the rebuild, left for the next refresh
    seconds: float = 0.0
    collection: str = ""  # where the new index lives: its collection name or directory


def rebuild_index(
    catalog: Catalog,
    store: VectorStore,
    indexer: Indexer,
    *,
    dense_size: int,
    batch_size: int = 128,
    on_progress: Callable[[int], None] | None = None,
) -> RebuildReport:
    started_at = now_utc()
    started = time.perf_counter()
    staging = store.staging(dense_size=dense_size)
    written = IndexReport()
    report = RebuildReport(collection=staging.location)
    for batch in catalog.live_rows(batch_size):
        indexer.write(batch, staging, written)
        report.documents += len(batch)
        if on_progress:
            on_progress(report.documents)
    store.promote(staging)
    report.chunks = written.chunks
    report.requeued = catalog.requeue(changed_since=started_at)
    report.seconds = time.perf_counter() - started
    return report

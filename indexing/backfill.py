"""Backfills: re-read a time window of one source, by hand, without moving its cursor.

A database source re-reads its rows in the window; a feed source fetches and extracts the
articles it already knows from that window again. Either way, changed documents are committed
as updates and every document of the window goes back to the indexer, which rewrites only what
differs from the store (so a backfill also repairs an index that lost points).
"""

from __future__ import annotations

import time
from datetime import datetime

from connectors import FeedSource, Fetcher, Source, reextract
from connectors.sources import SqlSource
from indexing.catalog import Catalog, now_utc
from indexing.reports import SourceReport
from indexing.sql_sync import backfill_sql


def backfill_feed(
    source: FeedSource, catalog: Catalog, fetcher: Fetcher, since: datetime, until: datetime | None = None
) -> SourceReport:
    started = time.perf_counter()
    report = SourceReport(source=source.name, kind="feed")
    docs = catalog.documents_in_window(source.name, since, until)
    fresh = [reextract(source, fetcher, doc) if doc.url else doc for doc in docs]
    outcomes = catalog.upsert_documents(fresh, now_utc())
    report.count(outcomes.values())
    catalog.requeue([doc_id for doc_id, outcome in outcomes.items() if outcome == "unchanged"])
    report.seconds = time.perf_counter() - started
    return report


def backfill_source(
    source: Source, catalog: Catalog, fetcher: Fetcher, since: datetime, until: datetime | None = None
) -> SourceReport:
    """Re-read ``[since, until)`` of one source; the rest of the pipeline is left alone."""
    if isinstance(source, SqlSource):
        return backfill_sql(source, catalog, since, until)
    return backfill_feed(source, catalog, fetcher, since, until)

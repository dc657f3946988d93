"""Pull one source and commit what is new or changed to the catalog (nothing is indexed here)."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from connectors import FeedSource, FeedState, Fetcher, Source, pull_feed
from connectors.sources import SqlSource
from errors import SourceError
from indexing.catalog import Catalog, now_utc
from indexing.reports import SourceReport, backing_off
from indexing.sql_sync import ingest_sql

logger = logging.getLogger(__name__)


def ingest_feed(
    source: FeedSource,
    catalog: Catalog,
    fetcher: Fetcher,
    *,
    now: datetime | None = None,
    force: bool = False,
    article_workers: int = 4,
) -> SourceReport:
    """Pull one feed (its article pages ``article_workers`` at a time) and commit what is new or changed."""
    started = time.perf_counter()
    now = now or now_utc()
    if skipped := backing_off(catalog, source.name, "feed", now, force):
        return skipped
    report = SourceReport(source=source.name, kind="feed")
    state = FeedState.from_cursor(catalog.source_cursor(source.name))
    try:
        pull = pull_feed(
            source,
            fetcher,
            state,
            known=lambda ids: catalog.known_entries(source.name, ids, now),
            article_workers=article_workers,
        )
    except SourceError as exc:
        retry_after = getattr(exc.__cause__, "retry_after", None)
        next_at = catalog.record_source_failure(source.name, "feed", str(exc), now, retry_after=retry_after)
        report.error = str(exc)
        logger.warning("%s (next try after %s)", exc, next_at.isoformat(timespec="seconds"))
        report.seconds = time.perf_counter() - started
        return report

    report.not_modified = pull.not_modified
    report.duplicates = pull.duplicates
    report.unchanged = pull.unchanged
    report.warnings = list(pull.warnings)
    outcomes = catalog.upsert_documents(pull.documents, now)  # committed before the cursor moves
    report.count(outcomes.values())
    report.failed = catalog.quarantine(source.name, pull.failures, now)
    fallbacks = [d for d in pull.documents if d.extraction == "feed" and d.url and source.fetch_articles]
    report.fallbacks = len(fallbacks)
    if fallbacks:
        catalog.record_article_failures(
            source.name, [(d.id, d.extraction_note or "no article") for d in fallbacks], now
        )
    extracted = [d.id for d in pull.documents if d.extraction == "article"]
    if extracted:
        catalog.resolve_failures(source.name, extracted, "article", now)
    catalog.record_source_success(
        source.name, "feed", pull.state.to_cursor(), now, warning="; ".join(pull.warnings) or None
    )
    report.seconds = time.perf_counter() - started
    return report


def ingest_source(
    source: Source,
    catalog: Catalog,
    fetcher: Fetcher,
    *,
    now: datetime | None = None,
    force: bool = False,
    article_workers: int = 4,
) -> SourceReport:
    """Pull ``source`` once; a failing source is recorded and reported, never raised.

    ``article_workers``: a feed's article pages fetched at once (the per-host limit still applies).
    """
    if isinstance(source, FeedSource):
        return ingest_feed(source, catalog, fetcher, now=now, force=force, article_workers=article_workers)
    if isinstance(source, SqlSource):
        return ingest_sql(source, catalog, now=now, force=force)
    raise TypeError(f"unsupported source type {type(source).__name__}")

"""Pull one source and commit what is new or changed to the catalog (nothing is indexed here)."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from datetime import datetime

from connectors import FeedSource, FeedState, Fetcher, FetchPolicy, Source, pull_feed
from connectors.sources import SqlSource
from errors import FetchError, SourceError
from errors.redact import mask_text
from indexing.catalog import Catalog, now_utc
from indexing.reports import SourceReport, backing_off, human_duration
from indexing.sql_sync import ingest_sql

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0  # seconds a backing-off feed's probe may take: a dead host costs this, not a full fetch
PULL_TIMEOUT_CAP = 600.0  # seconds one source's pull may take at most: the every-minute schedule waits on it
PULL_TIMEOUT_FLOOR = 5.0  # seconds every pull gets whatever the fetch settings, for the catalog writes


def source_kind(source: Source) -> str:
    """``sql`` or ``feed``: how a source's state and failures are filed in the catalog."""
    return "sql" if isinstance(source, SqlSource) else "feed"


def pull_timeout(source: Source, policy: FetchPolicy, article_workers: int) -> float:
    """Seconds a source's pull may take: a feed fetches itself and then its articles ``article_workers`` at a
    time, each fetch bounded by ``total_timeout`` per attempt; twice that, capped. A database source gets the cap.
    """
    if not isinstance(source, FeedSource):
        return PULL_TIMEOUT_CAP
    rounds = 1 + math.ceil(source.max_items / article_workers)
    per_fetch = policy.total_timeout * (policy.retries + 1)
    return min(PULL_TIMEOUT_CAP, PULL_TIMEOUT_FLOOR + 2 * per_fetch * rounds)


def failure_reason(exc: BaseException) -> str:
    """One sentence for an unexpected error in a source's pull: the exception's type and message, credentials
    masked."""
    message = mask_text(str(exc)).strip().splitlines()[0] if str(exc).strip() else "no message"
    return f"unexpected {type(exc).__name__}: {message}"


def retry_note(next_at: datetime, now: datetime) -> str:
    """When a failed source is tried again, in words that are never already in the past."""
    wait = (next_at - now).total_seconds()
    if wait <= 0:
        return "tried again on the next run"
    return f"next try in {human_duration(wait)}, at {next_at:%H:%M:%S} UTC"


def probe_feed(source: FeedSource, fetcher: Fetcher, state: FeedState) -> str | None:
    """A cheap conditional GET of a backing-off feed (short deadline, no retries): None when it answers, else why
    not. A feed whose outage ended is pulled by the next run instead of waiting out its backoff."""
    p = fetcher.policy
    timeout = min(PROBE_TIMEOUT, p.total_timeout)
    policy = replace(p, retries=0, total_timeout=timeout, connect_timeout=min(p.connect_timeout, timeout))
    try:
        with Fetcher(policy) as probe:
            probe.get(
                str(source.url),
                allow_private=source.allow_private_addresses,
                etag=state.etag,
                last_modified=state.last_modified,
            )
    except FetchError as exc:
        return str(exc)
    return None


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
    state = FeedState.from_cursor(catalog.source_cursor(source.name))
    if skipped := backing_off(catalog, source.name, "feed", now, force):
        if (still_down := probe_feed(source, fetcher, state)) is not None:
            skipped.skipped += f"; probe: {still_down}"
            skipped.seconds = time.perf_counter() - started
            return skipped
        logger.info("%s answers again: pulled before its backoff ends", source.name)
    report = SourceReport(source=source.name, kind="feed")
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
        logger.warning("%s (%s)", exc, retry_note(next_at, now_utc()))
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
    now = now or now_utc()
    kind = source_kind(source)
    try:
        if isinstance(source, FeedSource):
            return ingest_feed(source, catalog, fetcher, now=now, force=force, article_workers=article_workers)
        if isinstance(source, SqlSource):
            return ingest_sql(source, catalog, now=now, force=force)
        raise TypeError(f"unsupported source type {type(source).__name__}")
    except Exception as exc:  # noqa: BLE001 - a bug or a surprise in one source must not stop the others
        return record_failure(source.name, kind, catalog, failure_reason(exc), now)


def record_failure(source: str, kind: str, catalog: Catalog, reason: str, now: datetime | None = None) -> SourceReport:
    """Record that a source's pull broke off (an unexpected error, a timeout) as its failure, with the reason."""
    now = now or now_utc()
    next_at = catalog.record_source_failure(source, kind, reason, now)
    logger.warning("source %s failed: %s (%s)", source, reason, retry_note(next_at, now_utc()))
    return SourceReport(source=source, kind=kind, error=reason)


def broken_pull(source: Source, catalog: Catalog, exc: BaseException, limit: float) -> SourceReport:
    """Record a pull that broke off as its source's failure: stopped at its time limit (``limit`` seconds, a
    ``TimeoutError``) or ended by an unexpected error."""
    if isinstance(exc, TimeoutError):
        reason = f"pull stopped after {human_duration(limit)} (the limit for this source)"
    else:
        reason = failure_reason(exc)
    return record_failure(source.name, source_kind(source), catalog, reason)

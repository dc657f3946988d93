"""The feed kind of source: an RSS/Atom feed whose items' article pages are fetched and extracted.

A pull fetches the feed (conditionally: ETag and Last-Modified) and the articles of its new or changed items, and
commits them before the cursor moves. A backfill fetches and extracts again the articles the catalog already knows
from a time window. While a feed backs off after failures, a cheap conditional GET with a short deadline tells
whether it answers again.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import replace
from datetime import datetime

import connectors  # the feed parser and the extractor load on first use: `kup status` describes feeds without them
from connectors import FeedSource, Fetcher, FetchPolicy
from errors import FetchError, SourceError
from indexing.catalog import Catalog, now_utc
from indexing.reports import SourceReport
from indexing.source_kind import PULL_TIMEOUT_CAP, PullContext, retry_note

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 5.0  # seconds a backing-off feed's probe may take: a dead host costs this, not a full fetch
PULL_TIMEOUT_FLOOR = 5.0  # seconds every pull gets whatever the fetch settings, for the catalog writes


def probe_feed(source: FeedSource, fetcher: Fetcher, state: connectors.FeedState) -> str | None:
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
    article_workers: int = 4,
) -> SourceReport:
    """Pull one feed (its article pages ``article_workers`` at a time) and commit what is new or changed; its
    backoff is the caller's (``still_down``)."""
    started = time.perf_counter()
    now = now or now_utc()
    state = connectors.FeedState.from_cursor(catalog.source_cursor(source.name))
    report = SourceReport(source=source.name, kind="feed")
    try:
        pull = connectors.pull_feed(
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


def backfill_feed(
    source: FeedSource, catalog: Catalog, fetcher: Fetcher, since: datetime, until: datetime | None = None
) -> SourceReport:
    started = time.perf_counter()
    report = SourceReport(source=source.name, kind="feed")
    docs = catalog.documents_in_window(source.name, since, until)
    fresh = [connectors.reextract(source, fetcher, doc) if doc.url else doc for doc in docs]
    outcomes = catalog.upsert_documents(fresh, now_utc())
    report.count(outcomes.values())
    catalog.requeue([doc_id for doc_id, outcome in outcomes.items() if outcome == "unchanged"])
    report.seconds = time.perf_counter() - started
    return report


class FeedKind:
    """``type: feed`` in the sources file (the default)."""

    type = "feed"
    config = FeedSource

    def pull(self, source: FeedSource, context: PullContext) -> SourceReport:
        return ingest_feed(
            source, context.catalog, context.fetcher, now=context.now, article_workers=context.article_workers
        )

    def backfill(
        self, source: FeedSource, context: PullContext, since: datetime, until: datetime | None
    ) -> SourceReport:
        return backfill_feed(source, context.catalog, context.fetcher, since, until)

    def probe(self, source: FeedSource, context: PullContext) -> str | None:
        state = connectors.FeedState.from_cursor(context.catalog.source_cursor(source.name))
        return probe_feed(source, context.fetcher, state)

    def pull_timeout(self, source: FeedSource, policy: FetchPolicy, article_workers: int) -> float:
        """A feed fetches itself and then its articles ``article_workers`` at a time, each fetch bounded by
        ``total_timeout`` per attempt: twice that, capped."""
        rounds = 1 + math.ceil(source.max_items / article_workers)
        per_fetch = policy.total_timeout * (policy.retries + 1)
        return min(PULL_TIMEOUT_CAP, PULL_TIMEOUT_FLOOR + 2 * per_fetch * rounds)

    def describe(self, source: FeedSource) -> str:
        from errors.redact import public_url

        polled = f", polled every {source.poll_seconds:g} s" if source.poll_seconds else ""
        return f"feed {public_url(str(source.url))}{polled}"


FEED = FeedKind()

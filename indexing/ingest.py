"""Pull one source, of whatever kind, and commit what is new or changed to the catalog (nothing is indexed here).

The kinds are ``feed`` and ``sql`` (built in) and whatever installed packages register under the ``kup.sources``
entry point group (``indexing.source_kind``); each source is handled by the kind its ``type`` names. A failing
source is recorded and reported, never raised: one bad source never stops the others.
"""

from __future__ import annotations

import logging
from datetime import datetime

from connectors import Fetcher, FetchPolicy, Source
from connectors.sources import plugin_kinds
from errors import ConfigError
from errors.durations import human_duration
from indexing.catalog import Catalog, now_utc
from indexing.feed_sync import FEED
from indexing.reports import SourceReport
from indexing.source_kind import PullContext, SourceKind, failure_reason, retry_note, still_down
from indexing.sql_sync import SQL

logger = logging.getLogger(__name__)


def source_kinds() -> dict[str, SourceKind]:
    """Every kind a source may be, by the ``type`` its entries carry: the built-in ones, then the plugins'."""
    return {FEED.type: FEED, SQL.type: SQL, **plugin_kinds()}


def kind_of(source: Source) -> SourceKind:
    kind = source_kinds().get(source.type)
    if kind is None:  # its plugin was uninstalled since the sources file was read
        raise ConfigError(f"source {source.name} is of type {source.type!r}, which no installed kind provides")
    return kind


def pull_timeout(source: Source, policy: FetchPolicy, article_workers: int) -> float:
    """Seconds a source's pull may take before the run records it as failed (its kind decides, capped)."""
    return kind_of(source).pull_timeout(source, policy, article_workers)


def ingest_source(
    source: Source,
    catalog: Catalog,
    fetcher: Fetcher,
    *,
    now: datetime | None = None,
    force: bool = False,
    article_workers: int = 4,
) -> SourceReport:
    """Pull ``source`` once; a failing source is recorded and reported, never raised. While it backs off after
    failures it is probed instead, and pulled at once when it answers again.

    ``article_workers``: a feed's article pages fetched at once (the per-host limit still applies).
    """
    now = now or now_utc()
    try:
        kind = kind_of(source)
        context = PullContext(catalog, fetcher, now, force, article_workers)
        return still_down(kind, source, context) or kind.pull(source, context)
    except Exception as exc:  # noqa: BLE001 - a bug or a surprise in one source must not stop the others
        return record_failure(source.name, source.type, catalog, failure_reason(exc), now)


def backfill_source(
    source: Source, catalog: Catalog, fetcher: Fetcher, since: datetime, until: datetime | None = None
) -> SourceReport:
    """Re-read ``[since, until)`` of one source by hand, without moving its cursor; the rest of the pipeline is
    left alone. Changed documents are committed as updates and every document of the window goes back to the
    indexer, which rewrites only what differs from the store (so a backfill also repairs an index that lost
    points)."""
    return kind_of(source).backfill(source, PullContext(catalog, fetcher, now_utc()), since, until)


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
    return record_failure(source.name, source.type, catalog, reason)

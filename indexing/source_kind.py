"""What a kind of source does, so that adding one (a sitemap, a bucket of documents, a mailbox) touches no module
of kup's: a ``SourceKind`` pulls what is new since its saved position, re-reads a window by hand, probes cheaply
while it backs off after failures, bounds its pull's time, and describes itself for ``kup status``.

``feed`` and ``sql`` are the built-in kinds (``indexing.feed_sync``, ``indexing.sql_sync``); another package
registers one under the ``kup.sources`` entry point group, naming an object (or a class to instantiate) with these
attributes, e.g. in its ``pyproject.toml``::

    [project.entry-points."kup.sources"]
    folder = "kup_folder:FolderKind"

Its ``config`` (a ``connectors.SourceConfig`` subclass with ``type: Literal["folder"]``) is what an entry of that
type in ``sources.yaml`` may hold. A kind commits documents with ``catalog.upsert_documents`` and keeps its position
with ``catalog.save_cursor``/``source_cursor``; the indexer does the rest, as for the built-in kinds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from connectors import Fetcher, FetchPolicy, SourceConfig
from errors.durations import human_duration
from errors.redact import mask_text
from indexing.reports import SourceReport, backing_off

if TYPE_CHECKING:
    from indexing.catalog import Catalog

logger = logging.getLogger(__name__)

PULL_TIMEOUT_CAP = 600.0  # seconds one source's pull may take at most: the every-minute schedule waits on it


@dataclass(frozen=True)
class PullContext:
    """What a pull may use: the catalog, the polite HTTP client, the run's time, and the run's options."""

    catalog: Catalog
    fetcher: Fetcher
    now: datetime
    force: bool = False  # pull even while the source backs off after failures
    article_workers: int = 4  # a feed's article pages fetched at once (the per-host limit still applies)


@runtime_checkable
class SourceKind(Protocol):
    """A kind of source: the ``type`` its entries carry in the sources file, and what it does."""

    type: ClassVar[str] | str
    config: ClassVar[type[SourceConfig]] | type[SourceConfig]

    def pull(self, source: SourceConfig, context: PullContext) -> SourceReport:
        """Commit what is new or changed since the source's saved position, then move the position. A failure
        is recorded (``catalog.record_source_failure``) and reported, never raised; the backoff is handled by
        the caller (``still_down``)."""
        ...

    def backfill(
        self, source: SourceConfig, context: PullContext, since: datetime, until: datetime | None
    ) -> SourceReport:
        """Re-read ``[since, until)`` by hand without moving the position; unchanged documents go back to the
        indexer too (``catalog.requeue``), so a backfill also repairs an index that lost points."""
        ...

    def probe(self, source: SourceConfig, context: PullContext) -> str | None:
        """While the source backs off: a cheap check, None when it answers again (then it is pulled at once),
        else why not."""
        ...

    def pull_timeout(self, source: SourceConfig, policy: FetchPolicy, article_workers: int) -> float:
        """Seconds a pull may take before the run records it as failed (at most ``PULL_TIMEOUT_CAP``)."""
        ...

    def describe(self, source: SourceConfig) -> str:
        """Where the source reads from, in a few words for ``kup status`` (no credentials)."""
        ...


def still_down(kind: SourceKind, source: SourceConfig, context: PullContext) -> SourceReport | None:
    """While ``source`` backs off after failures, the report that skips it (its probe says it is still down);
    None when it may be pulled: it is not backing off, the run forces it, or its probe says it answers again."""
    started = time.perf_counter()
    skipped = backing_off(context.catalog, source.name, kind.type, context.now, context.force)
    if skipped is None:
        return None
    if (reason := kind.probe(source, context)) is not None:
        skipped.skipped += f"; probe: {reason}"
        skipped.seconds = time.perf_counter() - started
        return skipped
    logger.info("%s answers again: pulled before its backoff ends", source.name)
    return None


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

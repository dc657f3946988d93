"""Hot feeds: one long-lived loop polls each feed with ``poll_seconds`` and indexes what it brings at once.

The process keeps its encoders loaded between polls, so a new item costs a conditional GET, its article page and
its own embedding, not a process start and a model load. It never fights the minute refresh: both commit through
the catalog (content hashes make a second commit of the same item a no-op), and indexing claims documents under
leases (``indexing.catalog.leases``), so the two never embed the same pending document. Politeness holds: one
fetcher serves every hot feed, so its per-host limit applies across them; a failing feed is polled less and less
often (doubling, up to ``MAX_FAILING_WAIT``) on top of the catalog's own backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from connectors.sources import FeedSource
from indexing.reports import IndexReport, SourceReport
from indexing.source_kind import failure_reason

logger = logging.getLogger(__name__)

MAX_FAILING_WAIT = 300.0  # seconds between polls of a feed that keeps failing


def hot_feeds(sources: Sequence[object]) -> list[FeedSource]:
    """The feed sources with ``poll_seconds`` set."""
    return [s for s in sources if isinstance(s, FeedSource) and s.poll_seconds]


@dataclass
class WatchStats:
    polls: int = 0
    not_modified: int = 0
    committed: int = 0  # new, updated or deleted documents
    indexed: int = 0
    failures: int = 0
    index_seconds: float = 0.0
    per_source: dict[str, int] = field(default_factory=dict)  # polls per source
    replaced_by: str | None = None  # the watcher that took over from this one, if one did


def _committed(report: SourceReport) -> int:
    return report.new + report.updated + report.deleted


class FeedWatcher:
    """Polls ``feeds`` on their own cadence with ``pull`` and runs ``index`` after a poll that committed anything."""

    def __init__(
        self,
        feeds: Sequence[FeedSource],
        pull: Callable[[FeedSource], SourceReport],
        index: Callable[[], IndexReport],
        *,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self.feeds = list(feeds)
        self.pull = pull
        self.index = index
        self.on_change = on_change or logger.info
        self.stats = WatchStats()
        self.stopping = threading.Event()
        self._failures = {f.name: 0 for f in self.feeds}

    def _wait_after(self, feed: FeedSource, report: SourceReport | None) -> float:
        failing = report is None or bool(report.error or report.skipped)
        self._failures[feed.name] = self._failures[feed.name] + 1 if failing else 0
        streak = self._failures[feed.name]
        return min(MAX_FAILING_WAIT, feed.poll_seconds * 2**streak) if streak else feed.poll_seconds

    def poll(self, feed: FeedSource) -> SourceReport | None:
        try:
            report = self.pull(feed)
        except Exception as exc:  # noqa: BLE001 - one broken poll must not stop the watcher; the next one tries again
            logger.warning("polling %s failed: %s", feed.name, failure_reason(exc))
            self.stats.failures += 1
            return None
        self.stats.polls += 1
        self.stats.per_source[feed.name] = self.stats.per_source.get(feed.name, 0) + 1
        self.stats.not_modified += int(report.not_modified)
        self.stats.failures += int(bool(report.error))
        self.stats.committed += _committed(report)
        return report

    def index_now(self, names: Sequence[str]) -> None:
        started = time.perf_counter()
        try:
            report = self.index()
        except Exception as exc:  # noqa: BLE001 - documents stay pending; the next poll or the minute refresh retries
            logger.warning("indexing after a hot poll failed (%s); the documents stay pending", failure_reason(exc))
            return
        seconds = time.perf_counter() - started
        self.stats.indexed += report.documents
        self.stats.index_seconds += seconds
        self.on_change(f"{', '.join(names)}: {report.documents} document(s) indexed in {seconds:.1f} s")

    def run(self, seconds: float | None = None) -> WatchStats:
        """Poll until ``seconds`` pass (forever when None) or ``stop()`` is called."""
        end = None if seconds is None else time.monotonic() + seconds
        due = {f.name: time.monotonic() for f in self.feeds}
        while not self.stopping.is_set() and (end is None or time.monotonic() < end):
            now = time.monotonic()
            ready = [f for f in self.feeds if due[f.name] <= now]
            if not ready:
                wake = min(due.values())
                self.stopping.wait(max(0.0, min(wake, end or wake) - now))
                continue
            changed = []
            for feed in ready:
                started = time.monotonic()
                report = self.poll(feed)
                if report and _committed(report):
                    changed.append(feed.name)
                due[feed.name] = max(started + self._wait_after(feed, report), time.monotonic() + 0.5)
            if changed:
                self.index_now(changed)
        return self.stats

    def stop(self) -> None:
        self.stopping.set()

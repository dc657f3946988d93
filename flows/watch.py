"""The watch flow: hot feeds (``poll_seconds`` in sources.yaml) polled every few seconds by one long-lived process.

The process loads the encoders once and keeps them; each poll is a conditional GET, and what a poll commits is
indexed at once (see ``indexing.watch``). The flow runs for one schedule slot (``minutes``) and hands over to the
next slot's run once that one is ready (``flows.handover``); ``kup watch`` runs the same loop as a plain process.
"""

from __future__ import annotations

import logging

from prefect import flow, get_run_logger
from prefect.states import Completed

from connectors.sources import FeedSource
from errors import ConfigError, KupError
from flows.listen import slot_seconds
from flows.outcome import failed, quiet_deliberate_failures
from flows.runtime import Runtime
from flows.settings import Settings, load_settings
from indexing import ingest_source
from indexing.watch import FeedWatcher, WatchStats, hot_feeds

logger = logging.getLogger(__name__)
quiet_deliberate_failures()


def hot_sources(runtime: Runtime, *, required: bool = True) -> list[FeedSource]:
    feeds = hot_feeds(runtime.sources())
    if not feeds and required:
        raise ConfigError(
            f"no feed in {runtime.settings.sources_file} has poll_seconds; add e.g. 'poll_seconds: 5' to a feed "
            "that should be watched"
        )
    return feeds


def watcher(runtime: Runtime, on_change=None) -> FeedWatcher:
    """A watcher of the hot feeds, pulling through the pipeline's fetcher and indexing with its loaded models."""
    feeds = hot_sources(runtime)
    workers = runtime.settings.article_workers

    def pull(feed: FeedSource):
        return ingest_source(feed, runtime.catalog, runtime.fetcher, article_workers=workers)

    runtime.dense.encode(["warm up"])  # the model loads now, not on the first new item
    runtime.store.keep_open(background=True)  # the index stays open (served to others; kup api takes precedence)
    return FeedWatcher(feeds, pull, runtime.indexer.run, on_change=on_change)


def watch_here(
    settings: Settings,
    seconds: float | None,
    on_start=None,
    on_change=None,
    label: str = "kup watch",
    by_hand: bool = True,
) -> WatchStats:
    """Watch the hot feeds in this process for ``seconds`` (forever when None), or until another watcher takes the
    ``watch`` role (``flows.handover``: the newest watches)."""
    from flows.handover import Role

    with Runtime(settings) as runtime:
        watching = watcher(runtime, on_change)  # models loaded: ready to take over
        if on_start:
            on_start(watching)
        role = Role(settings, "watch", label, on_change or logger.info, by_hand=by_hand).hold(None, watching.stop)
        try:
            stats = watching.run(seconds)
        finally:
            role.release()
        stats.replaced_by = role.replaced_by or role.left_to
        return stats


def stats_line(stats: WatchStats) -> str:
    return (
        f"{stats.polls} poll(s), {stats.not_modified} unchanged (304), {stats.committed} document(s) committed, "
        f"{stats.indexed} indexed, {stats.failures} failure(s)"
    )


@flow(name="watch")
def watch(minutes: float = 10.0):
    """Poll the hot feeds for ``minutes`` (one schedule slot), indexing what they bring at once."""
    run_logger = get_run_logger()
    try:
        settings = load_settings()
        with Runtime(settings) as runtime:
            if not hot_sources(runtime, required=False):  # served for everyone; without hot feeds, skip the slot
                return Completed(message="no feed has poll_seconds: nothing to watch")
        seconds = slot_seconds(minutes)

        def started(watching: FeedWatcher) -> None:
            names = ", ".join(f"{f.name} every {f.poll_seconds:g} s" for f in watching.feeds)
            run_logger.info("watching %s for %.0f s", names, seconds)

        from prefect.runtime import flow_run

        stats = watch_here(
            settings, seconds, started, run_logger.info, label=f"watch run {flow_run.name}", by_hand=False
        )
    except KupError as exc:
        run_logger.error("watch failed: %s", exc)
        return failed(str(exc))
    run_logger.info(
        "watch done: %s%s", stats_line(stats), f"; {stats.replaced_by} watches now" if stats.replaced_by else ""
    )
    return stats.__dict__

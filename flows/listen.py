"""The listen flow: PostgreSQL change notifications of ``events: notify`` sources become refreshes and Prefect events.

The listener is a long-lived process, so by default it refreshes a changed source itself (``refresh_here``): it
keeps the encoders loaded, as the hot-feed watcher does, reads the rows through the cursor path and indexes what
is pending, then sends ``kup.source.refreshed`` (what changed and what it took) for the Prefect event feed. Where
that is off, or an in-process refresh fails, it sends ``kup.source.changed`` instead, and the ``refresh-on-event``
deployment's trigger (``prefect.yaml``) runs a refresh of that one source in a new flow-run process: the
documented fallback, seconds slower (process start, imports, model load). Both events are on the resource
``kup.source.<name>`` and carry the source's name, a bounded sample of row keys and a count, never row content.
An in-process refresh and a flow run (or the minute refresh) may overlap safely: the cursor's re-reads are
idempotent (content hashes) and indexing claims documents under leases, so no document is written twice.

The flow runs for one schedule slot (``minutes``) and hands over to the next slot's run once that one is connected
(``flows.handover``: no gap, no second listener); ``kup events listen`` runs the same loop as a plain process, and
the newest of the two listens.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from prefect import flow, get_run_logger
from prefect.states import Completed

from connectors.pg_events import Change, Debouncer, Listener
from connectors.sources import SqlSource
from errors import ConfigError, KupError
from flows.outcome import failed, quiet_deliberate_failures
from flows.settings import Settings, load_settings

logger = logging.getLogger(__name__)
quiet_deliberate_failures()

EVENT = "kup.source.changed"  # the refresh-on-event deployment's trigger refreshes the source
REFRESHED = "kup.source.refreshed"  # the listener refreshed the source itself (for the event feed; no trigger)


def event_sources(settings: Settings, *, required: bool = True) -> list[SqlSource]:
    """The SQL sources that say ``events: notify``; none is a configuration error when ``required``."""
    from connectors import load_sources

    sources = [s for s in load_sources(settings.sources_file) if isinstance(s, SqlSource) and s.events == "notify"]
    if not sources and required:
        raise ConfigError(
            f"no source in {settings.sources_file} says 'events: notify'; add it to a PostgreSQL table source "
            "and install its trigger with `kup events install <source>`"
        )
    return sources


def resource(source: str) -> dict[str, str]:
    return {"prefect.resource.id": f"kup.source.{source}", "prefect.resource.name": source, "kup.source": source}


def emit_change(change: Change) -> None:
    """One Prefect event for one coalesced change of a source."""
    from prefect.events import emit_event

    emit_event(event=EVENT, resource=resource(change.source), payload=change.payload())
    logger.info("source %s changed (%s, %d notification(s)): event sent", change.source, change.reason, change.count)


class RefreshHere:
    """Refreshes a changed source in this process with encoders loaded once, and sends ``kup.source.refreshed``;
    when the pull or the indexing fails it sends ``kup.source.changed``, so the deployment trigger tries again in a
    flow run (and the minute refresh after that). Called from the listener's one reporting thread."""

    def __init__(self, settings: Settings, sources: list[SqlSource], on_done: Callable[[str], None] | None = None):
        from flows.runtime import Runtime

        self.runtime = Runtime(settings)
        self.sources = {s.name: s for s in sources}
        self.on_done = on_done or logger.info
        self.refreshes = 0
        self.fallbacks = 0

    def warm_up(self) -> None:
        """Load the encoders now, not on the first change, and hold the index open (Edge: the shard, served to the
        minute refresh; given up to ``kup api`` when it runs), so a change is written without opening it."""
        self.runtime.dense.encode(["warm up"])
        self.runtime.store.keep_open(background=True)

    def __call__(self, change: Change) -> None:
        from indexing import ingest_source
        from indexing.source_kind import failure_reason

        started = time.perf_counter()
        runtime = self.runtime
        try:
            pulled = ingest_source(
                self.sources[change.source],
                runtime.catalog,
                runtime.fetcher,
                article_workers=runtime.settings.article_workers,
            )
            indexed = runtime.indexer.run() if pulled.ok and not pulled.skipped else None
        except Exception as exc:  # noqa: BLE001 - the deployment trigger and the minute refresh cover it
            self._fall_back(change, failure_reason(exc))
            return
        if indexed is None:
            self._fall_back(change, pulled.words())
            return
        seconds = time.perf_counter() - started
        self.refreshes += 1
        from prefect.events import emit_event

        figures = {"new": pulled.new, "updated": pulled.updated, "deleted": pulled.deleted}
        figures |= {"indexed": indexed.documents, "failed": indexed.failed, "seconds": round(seconds, 2)}
        emit_event(event=REFRESHED, resource=resource(change.source), payload=change.payload() | figures)
        self.on_done(
            f"{change.source}: {change.count} change(s) ({change.reason}) -> refreshed here in {seconds:.1f} s: "
            f"{pulled.new} new, {pulled.updated} updated, {pulled.deleted} deleted, {indexed.documents} indexed"
        )

    def _fall_back(self, change: Change, why: str) -> None:
        self.fallbacks += 1
        logger.warning("refreshing %s here failed (%s); the refresh-on-event deployment takes over", change.source, why)
        emit_change(change)
        self.on_done(f"{change.source}: {change.count} change(s) ({change.reason}) -> refresh requested")

    def close(self) -> None:
        self.runtime.close()


def listener(settings: Settings, report=emit_change) -> Listener:
    """A listener for every event source, coalescing as the settings say."""
    debouncer = Debouncer(
        quiet=settings.events_quiet_seconds,
        max_delay=settings.events_max_delay_seconds,
        spacing=settings.events_spacing_seconds,
    )
    return Listener(event_sources(settings), os.environ, report, debouncer=debouncer)


def listen_here(
    settings: Settings,
    seconds: float | None,
    *,
    refresh_here: bool = True,
    on_start: Callable[[Listener], None] | None = None,
    on_change: Callable[[str], None] | None = None,
    label: str = "kup events listen",
    by_hand: bool = True,
) -> Listener:
    """Listen in this process for ``seconds`` (forever when None, or until KeyboardInterrupt, or until another
    listener takes the ``listen`` role: see ``flows.handover``); each change is refreshed here (``refresh_here``)
    or sent as ``kup.source.changed`` for the deployment trigger."""
    from flows.handover import Role

    say = on_change or logger.info
    refresher = RefreshHere(settings, event_sources(settings), say) if refresh_here else None

    def requested(change: Change) -> None:
        emit_change(change)
        say(f"{change.source}: {change.count} change(s) ({change.reason}) -> refresh requested")

    try:
        if refresher is not None:
            refresher.warm_up()
        heard = listener(settings, refresher or requested)
        if on_start:
            on_start(heard)
        role = Role(settings, "listen", label, say, by_hand=by_hand).hold(
            heard.connected, heard.stop, alive=heard.connected.is_set
        )
        try:
            heard.run(seconds)
        except KeyboardInterrupt:
            heard.stop()
        finally:
            role.release()
        heard.replaced_by = role.replaced_by or role.left_to
        return heard
    finally:
        if refresher is not None:
            refresher.close()
        flush_events()


def flush_events() -> None:
    """Send the events still queued in this process before it ends."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10, at_exit=False)


def slot_seconds(minutes: float) -> float:
    """Seconds this run may work: to the end of its schedule slot (from its scheduled start) and the grace for the
    next slot's run to take over; it stops as soon as that run has (``flows.handover``)."""
    from prefect.runtime import flow_run

    from flows.handover import slot_end

    return slot_end(minutes, flow_run.scheduled_start_time)


@flow(name="listen")
def listen(minutes: float = 10.0, refresh_here: bool = True):
    """Listen for ``minutes`` (one schedule slot): each change of an event source is refreshed in this process
    (``refresh_here``, encoders loaded once) or becomes an event the refresh-on-event deployment's trigger runs."""
    run_logger = get_run_logger()
    try:
        settings = load_settings()
        sources = event_sources(settings, required=False)
        if not sources:  # the deployment is served for everyone; a pipeline without event sources skips its slot
            return Completed(message="no source says 'events: notify': nothing to listen to")
        seconds = slot_seconds(minutes)
        how = "refreshing here" if refresh_here else "the refresh-on-event deployment refreshes"
        run_logger.info("listening to %s for %.0f s (%s)", ", ".join(s.name for s in sources), seconds, how)
        from prefect.runtime import flow_run

        heard = listen_here(
            settings,
            seconds,
            refresh_here=refresh_here,
            on_change=run_logger.info,
            label=f"listen run {flow_run.name}",
            by_hand=False,
        )
    except KupError as exc:
        run_logger.error("listen failed: %s", exc)
        return failed(str(exc))
    finally:
        flush_events()
    if heard.replaced_by:
        run_logger.info("stopped listening after %d connection(s): %s listens now", heard.connects, heard.replaced_by)
    else:
        run_logger.info("stopped listening after %d connection(s); no run took over", heard.connects)

"""The listen flow: PostgreSQL change notifications of ``events: notify`` sources become Prefect events.

Each coalesced change is one ``kup.source.changed`` event on the resource ``kup.source.<name>``, carrying the
source's name, a bounded sample of row keys and a count, never row content. The ``refresh-on-event`` deployment's
trigger (``prefect.yaml``) turns it into a refresh of that one source, which reads the rows through the cursor
path. The flow runs for one schedule slot (``minutes``) and the next scheduled run takes over; ``kup events
listen`` runs the same loop as a plain process for as long as it is left running.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

from prefect import flow, get_run_logger
from prefect.states import Completed

from connectors.pg_events import Change, Debouncer, Listener
from connectors.sources import SqlSource
from errors import ConfigError, KupError
from flows.outcome import failed, quiet_deliberate_failures
from flows.settings import Settings, load_settings

logger = logging.getLogger(__name__)
quiet_deliberate_failures()

EVENT = "kup.source.changed"
HANDOVER_SECONDS = 5.0  # a slot's run stops this long before the next slot's run is due


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


def listener(settings: Settings, report=emit_change) -> Listener:
    """A listener for every event source, coalescing as the settings say."""
    debouncer = Debouncer(
        quiet=settings.events_quiet_seconds,
        max_delay=settings.events_max_delay_seconds,
        spacing=settings.events_spacing_seconds,
    )
    return Listener(event_sources(settings), os.environ, report, debouncer=debouncer)


def flush_events() -> None:
    """Send the events still queued in this process before it ends."""
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10, at_exit=False)


def slot_seconds(minutes: float) -> float:
    """Seconds left in this run's schedule slot (from its scheduled start), so consecutive runs hand over."""
    from prefect.runtime import flow_run

    start = flow_run.scheduled_start_time or datetime.now(UTC)
    end = start + timedelta(minutes=minutes) - timedelta(seconds=HANDOVER_SECONDS)
    return max(10.0, (end - datetime.now(UTC)).total_seconds())


@flow(name="listen")
def listen(minutes: float = 10.0):
    """Listen for ``minutes`` (one schedule slot): each change of an event source becomes a Prefect event."""
    run_logger = get_run_logger()
    try:
        settings = load_settings()
        sources = event_sources(settings, required=False)
        if not sources:  # the deployment is served for everyone; a pipeline without event sources skips its slot
            return Completed(message="no source says 'events: notify': nothing to listen to")
        seconds = slot_seconds(minutes)
        run_logger.info("listening to %s for %.0f s", ", ".join(s.name for s in sources), seconds)
        heard = listener(settings)
        heard.run(seconds)
    except KupError as exc:
        run_logger.error("listen failed: %s", exc)
        return failed(str(exc))
    finally:
        flush_events()
    run_logger.info("stopped listening after %d connection(s); the next run takes over", heard.connects)

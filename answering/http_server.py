"""The HTTP server under `kup api`: uvicorn, with a deadline for each request's headers and a bound on connections.

uvicorn closes a kept-alive connection that stays silent (``timeout_keep_alive``) and answers 503 beyond
``limit_concurrency``, but neither bounds a connection that sends its request line and headers a byte at a time:
each byte cancels the keep-alive timer, and the 503 is decided only once the headers are complete. kup's guards
(``answering.api_guards``) also run only then. So a few hundred such connections ("slowloris") used to hold the
API, and at a common 1,024 open-file limit they left no descriptor to accept a real caller with.

Here a connection waiting for a request's headers has a deadline (total time, so a drip does not extend it); at
most half of the connections may be waiting so, and a new connection beyond that, or beyond all connections,
closes the one that has waited longest, a connection that has not yet completed a request before a kept-alive one
that has (so a client between two requests on its connection is not pushed out by a stream of new ones). A real
client sends its headers in one packet, so it waits for microseconds and is never the oldest: the listen backlog is
kept small enough (``ServerLimits.backlog``) that a burst of new connections cannot push it out before its packet
is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)

OWN_FILES = 128  # descriptors kept for the process itself: index segments, the catalog, models, pipes
MIN_CONNECTIONS = 16
MAX_BACKLOG = 2048  # uvicorn's default listen backlog
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\nretry-after: 1\r\n\r\n"


@dataclass(frozen=True)
class ServerLimits:
    """Bounds on connections and on the time to receive a request's headers."""

    header_timeout: float = 10.0  # seconds from the wait for a request to its last header, however it trickles in
    max_connections: int = 512  # open at once; half of them at most still sending headers

    @property
    def max_waiting(self) -> int:
        """Connections that may be waiting for (or receiving) a request's headers; the rest serve requests."""
        return max(1, self.max_connections // 2)

    @property
    def backlog(self) -> int:
        """The listen backlog, which is also how many connections asyncio accepts in one event-loop turn: at most
        half of ``max_waiting``, so a burst of new connections cannot push a real client out before its first
        packet (its headers) is read."""
        return max(8, min(MAX_BACKLOG, self.max_waiting // 2))


@dataclass
class _Watch:
    """One server's view of its connections: those waiting for headers, oldest first, and those it is closing."""

    limits: ServerLimits
    waiting: dict[HeaderDeadlineProtocol, None] = field(default_factory=dict)  # an ordered set: no request done yet
    kept: dict[HeaderDeadlineProtocol, None] = field(default_factory=dict)  # kept alive after a served request
    closing: int = 0  # closed here, their connection_lost still to come (they still count in uvicorn's list)
    closed: dict[str, int] = field(default_factory=dict)  # by reason, for a rare log line
    reported: float = float("-inf")

    def count(self, reason: str) -> None:
        self.closed[reason] = self.closed.get(reason, 0) + 1
        now = time.monotonic()
        if now - self.reported >= 60:  # one line a minute at most: an attack must not flood the log
            self.reported = now
            logger.warning(
                "closed connections that did not send a request's headers in time, or too many at once (%s so far); "
                "limits: %.0f s (KUP_API_HEADER_TIMEOUT), %d connections (KUP_API_MAX_CONNECTIONS)",
                ", ".join(f"{n} {why}" for why, n in sorted(self.closed.items())),
                self.limits.header_timeout,
                self.limits.max_connections,
            )


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, which closes a connection whose request headers are not in by the deadline, and the
    longest-waiting connection when too many wait. One subclass per server holds its state (``protocol_for``)."""

    watch: ClassVar[_Watch]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None  # while waiting for a request's headers
        self._closing = False  # closed here; connection_lost settles the count
        self._served = False  # has completed a response on this connection

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()
        watch, limits = self.watch, self.watch.limits
        over = len(self.connections) - watch.closing - limits.max_connections
        for victim in [*watch.waiting, *watch.kept]:  # the oldest first, those never served before the kept-alive
            if over <= 0 and len(watch.waiting) + len(watch.kept) <= limits.max_waiting:
                break
            if victim is not self:
                victim._close("evicted")
                over -= 1
        if over > 0:  # every other connection is serving a request: this one is told so at once
            self.transport.write(_BUSY)
            self._close("busy")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._served = True
        self._watch()  # a kept-alive connection now waits for its next request: a fresh deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        if self._closing:
            self._closing = False
            self.watch.closing -= 1
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Start the deadline when the connection begins to wait for a request; stop it once the headers are in."""
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            self._stop_waiting()
        elif self._deadline is None:
            self._deadline = self.loop.call_later(self.watch.limits.header_timeout, self._close, "timed out")
            (self.watch.kept if self._served else self.watch.waiting)[self] = None

    def _stop_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.watch.waiting.pop(self, None)
        self.watch.kept.pop(self, None)

    def _close(self, reason: str) -> None:
        self._stop_waiting()
        if not self.transport.is_closing():
            self.transport.close()
            self._closing = True
            self.watch.closing += 1
        self.watch.count(reason)


def protocol_for(limits: ServerLimits) -> type[HeaderDeadlineProtocol]:
    """A protocol class for one server: its connections share these limits and one list of those waiting."""
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), {"watch": _Watch(limits)})


def server_config(app, host: str, port: int, limits: ServerLimits):
    """uvicorn's configuration for ``app`` under ``limits`` (the guarded h11 protocol, whatever else is installed)."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        http=protocol_for(limits),
        # uvicorn answers 503 when the connections, this one included, reach the limit: +1 lets all of them be served
        limit_concurrency=limits.max_connections + 1,
        backlog=limits.backlog,
    )


def serve(app, host: str, port: int, limits: ServerLimits | None = None) -> None:
    """Serve ``app`` until interrupted, its connections fitted into the process's open-file limit."""
    import uvicorn

    limits = limits or ServerLimits()
    limits = replace(limits, max_connections=fit_open_files(limits.max_connections))
    server = uvicorn.Server(server_config(app, host, port, limits))  # a taken port: uvicorn logs it, exits 3
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn shuts down gracefully, then raises it again
        server.run()


def fit_open_files(connections: int) -> int:
    """Raise the soft open-file limit toward the hard one so ``connections`` fit beside the process's own files;
    the connections that fit (fewer, with a warning, when the hard limit is too low)."""
    try:
        import resource
    except ImportError:  # Windows: no such limit
        return connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    in_use = _open_files()
    wanted = in_use + OWN_FILES + connections
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError) as exc:  # macOS refuses more than its kernel's own maximum
            logger.debug("could not raise the open-file limit to %d: %s", raised, exc)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return connections
    fit = max(MIN_CONNECTIONS, soft - in_use - OWN_FILES)
    logger.warning(
        "the open-file limit (%d, ulimit -n) leaves room for %d connections, not %d (KUP_API_MAX_CONNECTIONS)",
        soft,
        fit,
        connections,
    )
    return fit


def _open_files() -> int:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 32

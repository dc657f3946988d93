"""The HTTP server under `kup api`: uvicorn, with a deadline for each request's headers and a bound on connections.

uvicorn closes a kept-alive connection that stays silent (``timeout_keep_alive``) and answers 503 beyond
``limit_concurrency``, but neither acts on a connection that sends its request line and headers a byte at a time:
each byte restarts nothing and cancels the keep-alive timer, and the 503 is decided only once the headers are
complete. kup's guards (``answering.api_guards``) also run only then. So a few hundred such connections
("slowloris") used to hold the API, and at a common 1,024 open-file limit they left no descriptor to accept
a real caller with. Here each connection waiting for a request's headers has a deadline (total time, so a drip
does not extend it), at most half of the connections may be waiting so, and when a new one would pass either
bound the connection that has waited longest is closed. A real client sends its headers in one packet: it waits
for microseconds and is never the oldest.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
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
        """Connections accepted in one event-loop turn (asyncio accepts up to the backlog per turn): under half of
        ``max_waiting``, so a burst cannot push a real client out before its first packet is read."""
        return max(8, min(MAX_BACKLOG, self.max_waiting // 2))


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, which closes a connection whose request headers are not in by the deadline, and the
    longest-waiting connection when too many wait. One subclass per server holds its limits (``protocol_for``)."""

    limits: ClassVar[ServerLimits] = ServerLimits()
    waiting: ClassVar[dict[HeaderDeadlineProtocol, None]]  # connections waiting for headers, oldest first
    closed: ClassVar[dict[str, int]]  # connections closed so, by reason (for a rare log line)
    _reported: ClassVar[list[float]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: Any = None  # asyncio.TimerHandle while waiting for a request's headers

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()
        over = len(self.connections) - self.limits.max_connections  # connection_lost of closed ones comes later
        evicted = 0
        for victim in list(self.waiting):
            if evicted >= over and len(self.waiting) <= self.limits.max_waiting:
                break
            if victim is not self:
                victim._close("evicted")
                evicted += 1
        if evicted < over and not self.transport.is_closing():  # every other connection is serving a request
            self.transport.write(_BUSY)
            self._close("busy")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()  # a kept-alive connection now waits for its next request: a fresh deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Start the deadline when the connection begins to wait for a request; stop it once the headers are in."""
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            self._stop_waiting()
        elif self._deadline is None:
            self._deadline = self.loop.call_later(self.limits.header_timeout, self._close, "timed out")
            self.waiting[self] = None

    def _stop_waiting(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self.waiting.pop(self, None)

    def _close(self, reason: str) -> None:
        self._stop_waiting()
        if not self.transport.is_closing():
            self.transport.close()
        self.closed[reason] = self.closed.get(reason, 0) + 1
        now = time.monotonic()
        if now - self._reported[0] >= 60:  # one line a minute at most: an attack must not flood the log
            self._reported[0] = now
            counts = ", ".join(f"{n} {why}" for why, n in sorted(self.closed.items()))
            logger.warning(
                "closed connections that did not send a request's headers in time or too many at once (%s so far); "
                "limits: %.0f s (KUP_API_HEADER_TIMEOUT), %d connections (KUP_API_MAX_CONNECTIONS)",
                counts,
                self.limits.header_timeout,
                self.limits.max_connections,
            )


def protocol_for(limits: ServerLimits) -> type[HeaderDeadlineProtocol]:
    """A protocol class for one server: its connections share these limits and one list of those waiting."""
    state = {"limits": limits, "waiting": {}, "closed": {}, "_reported": [float("-inf")]}
    return type("HeaderDeadlineProtocol", (HeaderDeadlineProtocol,), state)


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
    uvicorn.Server(server_config(app, host, port, limits)).run()


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

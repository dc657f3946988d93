"""What stands between the network and the API's routes: host check, API key, body size limit, generation queue.

Each guard answers before any route runs and before a large body is read: a forged ``Host`` (a DNS-rebinding
page) gets 400, a missing or wrong key 401, a body over the limit 413 (counted while it arrives, whether it
announced its length or not), and an /ask beyond the generation queue 503 with ``Retry-After``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from fastapi import HTTPException

from answering.chat import error_body, error_kind
from errors import ConfigError

logger = logging.getLogger(__name__)

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
OPEN_PATHS = frozenset({"/health"})  # answered without a key: a load balancer's probe carries none
RETRY_AFTER_S = 10  # about one short answer on a CPU


@dataclass(frozen=True)
class ApiGuards:
    """The API's limits; the defaults suit one user on this machine."""

    api_key: str | None = None  # when set, every path but /health needs it
    allowed_hosts: Sequence[str] = ()  # Host names accepted besides LOCAL_HOSTS; "*" accepts any
    max_body_bytes: int = 64 * 1024
    generate_at_once: int = 1  # /ask generations running together
    generate_waiting: int = 4  # /ask requests that may wait for a slot; more get 503 at once
    hosts: tuple[str, ...] = field(init=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", served_hosts([*LOCAL_HOSTS, *self.allowed_hosts]))


def served_hosts(names: Sequence[str]) -> tuple[str, ...]:
    """Host names as a Host header carries them (lower case, IPv6 in brackets), without duplicates."""
    names = [h.strip().lower() for h in names if h and h.strip()]
    return tuple(dict.fromkeys(_bracketed(n) for n in names))


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the API on this machine."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, api_key: str | None) -> None:
    """Listening beyond this machine without a key would serve the index to anyone who can reach the port."""
    if not is_loopback(host) and not api_key:
        raise ConfigError(
            f"the API would listen on {host}, beyond this machine, without a key; set KUP_API_KEY (or bind 127.0.0.1)"
        )


def _bracketed(host: str) -> str:
    """An IPv6 literal as it appears in a Host header: in brackets."""
    try:
        if ipaddress.ip_address(host.strip("[]")).version == 6:
            return f"[{host.strip('[]')}]"
    except ValueError:
        pass
    return host


def host_name(header: str) -> str:
    """The name in a Host header, without its port (``[::1]:8077`` -> ``[::1]``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rpartition(":")[0] if header.count(":") == 1 else header


async def refuse(
    send, status: int, detail: str, headers: Sequence[tuple[bytes, bytes]] = (), *, openai: bool = False
) -> None:
    """Answer an HTTP request with ``status`` and ``{"detail": detail}`` (OpenAI's error shape for a route of
    ``answering.chat``), closing the connection."""
    shape = error_body(detail, error_kind(status)) if openai else {"detail": detail}
    body = json.dumps(shape).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def scope_header(scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case) in an ASGI scope, or None."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def host_served(scope, hosts: Sequence[str]) -> bool:
    """Whether the request's ``Host`` names one of ``hosts`` (as ``served_hosts`` spells them; ``*``: any)."""
    return "*" in hosts or host_name(scope_header(scope, b"host") or "") in hosts


class GuardMiddleware:
    """ASGI middleware applying the host check, the key and the body limit, in that order."""

    def __init__(self, app, guards: ApiGuards) -> None:
        self.app = app
        self.guards = guards
        self._key = guards.api_key.encode() if guards.api_key else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        g = self.guards
        refusal = partial(refuse, openai=str(scope.get("path", "")).startswith("/v1/"))
        if not host_served(scope, g.hosts):
            return await refusal(send, 400, "this host name is not served here; add it to KUP_API_ALLOWED_HOSTS")
        if self._key is not None and scope.get("path") not in OPEN_PATHS and not self._authorized(scope):
            return await refusal(
                send,
                401,
                "a valid API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                [(b"www-authenticate", b'Bearer realm="kup"')],
            )
        length = scope_header(scope, b"content-length")
        if length is not None:
            if not length.strip().isdigit():
                return await refusal(send, 400, "the Content-Length header is not a number")
            if int(length) > g.max_body_bytes:
                return await refusal(send, 413, f"the request body is larger than {g.max_body_bytes} bytes")
        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > g.max_body_bytes:
                    raise HTTPException(413, f"the request body is larger than {g.max_body_bytes} bytes")
            return message

        async def watched_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except HTTPException as exc:
            if started or exc.status_code != 413:
                raise
            await refusal(send, 413, str(exc.detail))

    def _authorized(self, scope) -> bool:
        given = scope_header(scope, b"x-api-key")
        auth = scope_header(scope, b"authorization")
        if given is None and auth is not None:
            scheme, _, token = auth.strip().partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else None
        if given is None:
            return False
        return hmac.compare_digest(given.encode("latin-1"), self._key)


class GenerationGate:
    """At most ``at_once`` generations run and ``waiting`` more wait; the next is refused at once (``Busy``)."""

    class Busy(Exception):
        pass

    def __init__(self, at_once: int, waiting: int) -> None:
        self.capacity = at_once + waiting
        self._slots = threading.Semaphore(at_once)
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def admitted(self) -> int:
        """Requests generating or waiting now."""
        return self._admitted

    @contextmanager
    def admit(self) -> Iterator[None]:
        with self._lock:
            if self._admitted >= self.capacity:
                raise GenerationGate.Busy
            self._admitted += 1
        try:
            with self._slots:
                yield
        finally:
            with self._lock:
                self._admitted -= 1

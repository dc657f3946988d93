"""The network guard: only public addresses unless allowed, checked when the socket connects, under a deadline.

``check_url`` refuses bad URLs early, with a clear message. The guarantee comes from
``GuardedTransport``: its connections resolve the host themselves, refuse any non-public answer
and connect to exactly the address they checked, so a DNS answer that changes between the check
and the connection (DNS rebinding) reaches nothing. Every socket operation of a request made
inside ``deadline`` gets at most the time left, so a server dripping one header byte a second
cannot hold a worker past the request's total budget.
"""

from __future__ import annotations

import concurrent.futures
import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from errors import FetchError

_ALLOWED_SCHEMES = ("http", "https")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated "::a.b.c.d"
_PRIVATE_HINT = "(set allow_private_addresses: true on the source to allow it)"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# IANA's special-purpose address registries (IPv4 and IPv6), the ranges not reachable on the Internet: refused
# whatever the interpreter's ``is_global`` says (Python 3.11 accepts fec0::/10, 192.0.0.0/24 and ::ffff:0:0:0/96).
_SPECIAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
        "::/128", "::1/128", "::ffff:0:0:0/96", "64:ff9b:1::/48", "100::/64", "100:0:0:1::/64", "2001::/23",
        "2001:db8::/32", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip

_RESOLVE_TIMEOUT = 10.0  # outside any deadline, a resolver slower than this is treated as down
_resolver = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="kup-resolve")

_deadline: ContextVar[float | None] = ContextVar("kup_fetch_deadline", default=None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, IPv4-compatible), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in _NAT64) or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """Whether ``address`` is globally routable unicast, and so is any IPv4 address it embeds."""
    if any(address.version == net.version and address in net for net in _SPECIAL):
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            if address in _NAT64[1]:  # the local-use NAT64 prefix (RFC 8215) is never global
                return False
            return is_public(embedded)
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int, timeout: float | None = None) -> list[Address]:
    """All addresses ``host`` resolves to (an IP literal resolves to itself), within ``timeout`` and the deadline.

    The system resolver cannot be interrupted, so it runs on a small pool and we stop waiting for it.
    """
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    wait = timeout if timeout is not None else _RESOLVE_TIMEOUT
    end = _deadline.get()
    if end is not None:
        wait = min(wait, end - time.monotonic())
    if wait <= 0:
        raise FetchError(f"no time was left to resolve host {host!r}", transient=True)
    future = _resolver.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=wait)
    except concurrent.futures.TimeoutError as exc:
        raise FetchError(f"resolving host {host!r} took longer than {wait:.1f}s", transient=True) from exc
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host!r}: {exc}", transient=True) from exc
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))


def public_addresses(host: str, port: int, *, what: str, timeout: float | None = None) -> list[Address]:
    """The addresses of ``host``; raises ``FetchError`` naming ``what`` if any of them is not public."""
    addresses = resolve(host, port, timeout)
    for address in addresses:
        if not is_public(address):
            raise FetchError(f"refused {what}: {host} resolves to the non-public address {address} {_PRIVATE_HINT}")
    return addresses


def check_url(url: str, *, allow_private: bool, timeout: float | None = None) -> None:
    """Raise ``FetchError`` unless ``url`` is http(s) and, when required, points at public addresses.

    An early check for a clear message; the connection checks again (``GuardedTransport``).
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # a bad port or a broken IPv6 literal
        raise FetchError(f"refused {url!r}: {exc}") from exc
    if parts.scheme not in _ALLOWED_SCHEMES or not parts.hostname:
        raise FetchError(f"refused {url!r}: only http(s) URLs with a host are fetched")
    if not allow_private:
        public_addresses(parts.hostname, port, what=repr(url), timeout=timeout)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Within the block, connections made by ``GuardedTransport`` in this thread stop at ``seconds`` from now."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def deadline_passed() -> bool:
    end = _deadline.get()
    return end is not None and time.monotonic() >= end


def _budget(timeout: float | None, error: type[Exception]) -> float | None:
    """The per-operation timeout, cut to what is left of the deadline; raises ``error`` once it has passed."""
    end = _deadline.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the request's total time ran out")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write gets at most the time left before the deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _budget(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None):
        inner = self._inner.start_tls(ssl_context, server_hostname, _budget(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves and checks the host at connect time, then connects to exactly the checked address."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        targets = [host]
        if not self._allow_private:
            what = f"the connection to {host}:{port}"
            targets = [str(a) for a in public_addresses(host, port, what=what, timeout=timeout)]
        failure: Exception | None = None
        for target in targets:
            try:
                stream = super().connect_tcp(
                    target, port, _budget(timeout, httpcore.ConnectTimeout), local_address, socket_options
                )
            except httpcore.ConnectError as exc:  # try the host's next address, as create_connection does
                failure = exc
                continue
            return _DeadlineStream(stream)
        assert failure is not None
        raise failure


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, built once: building one reads the whole CA bundle."""
    return httpx.create_ssl_context(trust_env=False)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with the guarded backend: TLS still verifies (and SNI names) the URL's host."""

    def __init__(self, *, allow_private: bool, limits: httpx.Limits | None = None) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False)
        limits = limits or httpx.Limits()
        # httpx offers no way to hand its pool a network backend, so the pool is built here as httpx would.
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(allow_private),
        )

"""SSRF guard: refuse URLs whose host resolves to a private, loopback or link-local address."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from errors import FetchError

_ALLOWED_SCHEMES = ("http", "https")


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """All addresses ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"cannot resolve host {host!r}: {exc}", transient=True) from exc
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise ``FetchError`` unless ``url`` is http(s) and, when required, points at public addresses.

    The check resolves the host itself; a DNS answer that changes between this check and the
    connection (DNS rebinding) is not caught here.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # a bad port or a broken IPv6 literal
        raise FetchError(f"refused {url!r}: {exc}") from exc
    if parts.scheme not in _ALLOWED_SCHEMES or not parts.hostname:
        raise FetchError(f"refused {url!r}: only http(s) URLs with a host are fetched")
    if allow_private:
        return
    for address in resolve(parts.hostname, port):
        if not _is_public(address):
            raise FetchError(
                f"refused {url!r}: {parts.hostname} resolves to the non-public address {address} "
                "(set allow_private_addresses: true on the source to allow it)"
            )

"""The network guard against a real local server and a resolver the attacker controls: rebinding, embedded IPv4."""

from __future__ import annotations

import socket
import time
from ipaddress import ip_address

import pytest

from connectors.netguard import check_url, is_public
from errors import FetchError

PUBLIC = "93.184.216.34"


@pytest.fixture
def dns(monkeypatch):
    """The system resolver answers ``answers[name]`` in turn for names we own (the attacker's DNS server)."""
    answers: dict[str, list[str]] = {}
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name not in answers:
            return real(host, port, *args, **kwargs)
        asked.append(name)
        queue = answers[name]
        address = queue.pop(0) if len(queue) > 1 else queue[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    answers["asked"] = asked  # type: ignore[assignment]
    return answers


def test_a_name_that_rebinds_to_loopback_after_the_check_reaches_nothing(server, fetcher, dns) -> None:
    """First answer public (the check passes), second 127.0.0.1 (what a plain client would connect to)."""
    server.set("/secret", "internal admin page")
    port = server.base.rsplit(":", 1)[1]
    dns["rebind.test"] = [PUBLIC, "127.0.0.1"]

    with pytest.raises(FetchError, match="non-public address 127.0.0.1") as caught:
        fetcher.get(f"http://rebind.test:{port}/secret")

    assert not caught.value.transient
    assert server.hits["/secret"] == 0
    assert dns["asked"] == ["rebind.test", "rebind.test"]  # the connection resolved and checked again


def test_the_host_header_names_the_url_host_not_the_address(server, fetcher, dns) -> None:
    server.set("/page", "hello")
    port = server.base.rsplit(":", 1)[1]
    dns["site.test"] = ["127.0.0.1"]

    assert fetcher.get(f"http://site.test:{port}/page", allow_private=True).content == b"hello"
    assert server.requests[-1][1]["host"] == f"site.test:{port}"


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
        "64:ff9b:1::a00:1",  # local-use NAT64 prefix (RFC 8215)
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:c0a8:101::1",  # 6to4 of 192.168.1.1
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a00:1",  # IPv4-compatible 10.0.0.1
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "::1",
        "fe80::1",
        "fc00::1",
        "fec0::1",  # site-local (deprecated): Python 3.11's is_global says yes
        "::ffff:0:7f00:1",  # IPv4-translated 127.0.0.1 (RFC 2765)
        "::ffff:0:808:808",  # IPv4-translated, even of a public address: not routable
        "100::1",  # discard-only
        "3fff::1",  # documentation
        "5f00::1",  # SRv6 SIDs
    ],
)
def test_ipv6_forms_of_private_addresses_are_refused(address) -> None:
    with pytest.raises(FetchError, match="non-public address"):
        check_url(f"http://[{address}]/", allow_private=False)


def test_ipv4_special_purpose_ranges_are_refused() -> None:
    for address in ("192.0.0.8", "192.0.0.170", "198.18.0.1", "192.88.99.1", "100.64.0.1", "240.0.0.1"):
        assert not is_public(ip_address(address)), address
        with pytest.raises(FetchError, match="non-public address"):
            check_url(f"http://{address}/", allow_private=False)


@pytest.mark.parametrize("address", ["2606:4700::6810:84e5", "64:ff9b::808:808", "2002:808:808::1", PUBLIC])
def test_public_addresses_and_ipv6_forms_of_public_ipv4_pass(address) -> None:
    assert is_public(ip_address(address))
    check_url(f"http://[{address}]/" if ":" in address else f"http://{address}/", allow_private=False)


def test_a_resolver_that_hangs_is_bounded_by_the_connect_timeout(make_fetcher, monkeypatch) -> None:
    real = socket.getaddrinfo

    def slow(host, *args, **kwargs):
        if host == "slow-dns.test":
            time.sleep(4)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    fetcher = make_fetcher(connect_timeout=0.5, total_timeout=1.0, retries=0)

    start = time.monotonic()
    with pytest.raises(FetchError, match="resolving host 'slow-dns.test' took longer") as caught:
        fetcher.get("http://slow-dns.test/")

    assert caught.value.transient
    assert time.monotonic() - start < 1.5

"""robots.txt rules on their own: the cache needs only a fetch callable and an agent, not the fetcher."""

from __future__ import annotations

import ast
import time
import urllib.error
import urllib.request
from pathlib import Path

from connectors.robots import RobotsCache
from errors import FetchError


def test_robots_module_imports_nothing_from_connectors() -> None:
    """The fetching <-> robots import circle is gone: robots.py depends on errors and protego only."""
    tree = ast.parse(Path("connectors/robots.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)} | {
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }

    assert not {name for name in imported if name and name.startswith("connectors")}, imported


def _urllib_fetch(calls: list[tuple[str, bool]]):
    def fetch(url: str, allow_private: bool) -> bytes:
        calls.append((url, allow_private))
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise FetchError(f"HTTP {exc.code} from {url}", status=exc.code) from exc

    return fetch


def test_the_cache_applies_rules_fetched_by_any_callable_once_per_origin(server) -> None:
    server.set("/robots.txt", "User-agent: kup\nDisallow: /private\n\nUser-agent: *\nDisallow: /\n")
    calls: list[tuple[str, bool]] = []
    cache = RobotsCache(_urllib_fetch(calls), "kup/0.1 (tests)")

    assert cache.allowed(server.url("/news/1"), allow_private=True)
    assert not cache.allowed(server.url("/private/x"), allow_private=True)
    assert not RobotsCache(_urllib_fetch([]), "otherbot/1.0").allowed(server.url("/news/1"))

    assert calls == [(server.url("/robots.txt"), True)]


def test_a_missing_robots_txt_allows_and_a_server_error_disallows(server) -> None:
    cache = RobotsCache(_urllib_fetch([]), "kup/0.1")
    assert cache.allowed(server.url("/page"))  # 404

    server.set("/robots.txt", "down", status=503)
    assert not RobotsCache(_urllib_fetch([]), "kup/0.1").allowed(server.url("/page"))


def test_only_the_first_512_kib_of_a_huge_robots_txt_is_parsed(server) -> None:
    """RFC 9309 lets a crawler stop at 500 KiB; 5 MB of wildcard rules took seconds to parse per origin."""
    padding = "".join(f"Disallow: /p{i}*x*y$\n" for i in range(60_000))  # about 1.2 MB of rules
    server.set("/robots.txt", "User-agent: *\nDisallow: /early\n" + padding + "Disallow: /late\n")
    cache = RobotsCache(_urllib_fetch([]), "kup/0.1")

    start = time.monotonic()
    assert not cache.allowed(server.url("/early/page"))
    elapsed = time.monotonic() - start

    assert cache.allowed(server.url("/late/page"))  # past the limit: not read (the behaviour that matters)
    assert elapsed < 8.0  # a loose bound that holds on a loaded 2-core machine; the whole file took far longer

"""Fixtures for connector tests: a fresh local feed server per test and fetchers that talk to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from connectors import FeedSource, Fetcher, FetchPolicy
from fixtures import FeedServer

FAST = {"backoff": 0.01, "connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 5.0}
"""Policy figures that keep failing fetches quick; each test overrides what it is about."""


@pytest.fixture(scope="module")
def _module_server() -> Iterator[FeedServer]:
    with FeedServer() as feed_server:  # stopping one takes half a second, so a module shares it
        yield feed_server


@pytest.fixture
def server(_module_server: FeedServer) -> FeedServer:
    """The module's server with no routes and zeroed counters, as if it had just started."""
    _module_server.routes.clear()
    _module_server.hits.clear()
    _module_server.requests.clear()
    return _module_server


@pytest.fixture
def make_fetcher(server: FeedServer) -> Iterator[Callable[..., Fetcher]]:
    """Build fetchers with ``FAST`` defaults plus overrides; all are closed before the server stops."""
    made: list[Fetcher] = []

    def make(**policy: object) -> Fetcher:
        fetcher = Fetcher(FetchPolicy(**{**FAST, **policy}))
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        fetcher.close()


@pytest.fixture
def fetcher(make_fetcher: Callable[..., Fetcher]) -> Fetcher:
    return make_fetcher()


@pytest.fixture
def feed_source(server: FeedServer) -> Callable[..., FeedSource]:
    """A feed source on the local server (private addresses allowed, since it is loopback)."""

    def make(path: str = "/feed.xml", *, name: str = "test-feed", **options: object) -> FeedSource:
        return FeedSource(name=name, url=server.url(path), **{"allow_private_addresses": True, **options})

    return make

"""Talking to the outside world: polite HTTP, feeds and SQL sources, yielding Documents.

Names load on first use (PEP 562): ``from connectors import FetchPolicy`` does not import the feed
parser, trafilatura or httpx's transports, so commands that only read settings or the index start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from errors.lazy import lazy_exports

if TYPE_CHECKING:
    from connectors.document import Document, ItemFailure, document_id, utc
    from connectors.feeds import FeedPull, FeedState, pull_feed, reextract
    from connectors.fetching import Fetcher, FetchPolicy
    from connectors.sources import FeedSource, Source, SourceConfig, load_sources, select_sources

_WHERE = {
    "Document": "connectors.document",
    "ItemFailure": "connectors.document",
    "document_id": "connectors.document",
    "utc": "connectors.document",
    "FeedPull": "connectors.feeds",
    "FeedState": "connectors.feeds",
    "pull_feed": "connectors.feeds",
    "reextract": "connectors.feeds",
    "Fetcher": "connectors.fetching",
    "FetchPolicy": "connectors.fetching",
    "FeedSource": "connectors.sources",
    "Source": "connectors.sources",
    "SourceConfig": "connectors.sources",
    "load_sources": "connectors.sources",
    "select_sources": "connectors.sources",
}

__all__ = [
    "Document",
    "FeedPull",
    "FeedSource",
    "FeedState",
    "FetchPolicy",
    "Fetcher",
    "ItemFailure",
    "Source",
    "SourceConfig",
    "document_id",
    "load_sources",
    "pull_feed",
    "reextract",
    "select_sources",
    "utc",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

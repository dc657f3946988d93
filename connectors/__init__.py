"""Talking to the outside world: polite HTTP, feeds and SQL sources, yielding Documents."""

from connectors.document import Document, ItemFailure, document_id, utc
from connectors.feeds import FeedPull, FeedState, pull_feed, reextract
from connectors.fetching import Fetcher, FetchPolicy
from connectors.sources import FeedSource, Source, load_sources, select_sources

__all__ = [
    "Document",
    "FeedPull",
    "FeedSource",
    "FeedState",
    "FetchPolicy",
    "Fetcher",
    "ItemFailure",
    "Source",
    "document_id",
    "load_sources",
    "pull_feed",
    "reextract",
    "select_sources",
    "utc",
]

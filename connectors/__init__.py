"""Talking to the outside world: polite HTTP, feeds and (later) SQL sources, yielding Documents."""

from connectors.document import Document, ItemFailure, document_id, utc
from connectors.errors import ConfigError, FetchError, InputError, KupError, SourceError, StoreError
from connectors.feeds import FeedPull, FeedState, pull_feed, reextract
from connectors.fetching import Fetcher, FetchPolicy
from connectors.sources import FeedSource, Source, load_sources, select_sources

__all__ = [
    "ConfigError",
    "Document",
    "FeedPull",
    "FeedSource",
    "FeedState",
    "FetchError",
    "FetchPolicy",
    "Fetcher",
    "InputError",
    "ItemFailure",
    "KupError",
    "Source",
    "SourceError",
    "StoreError",
    "document_id",
    "load_sources",
    "pull_feed",
    "reextract",
    "select_sources",
    "utc",
]

"""The unit every connector yields: one source document with its text and metadata."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from errors.redact import public_url


def document_id(source: str, external_id: str) -> str:
    """Stable catalog id of a document: the same source item always maps to the same id."""
    return hashlib.sha256(f"{source}\x00{external_id}".encode()).hexdigest()[:32]


_SPECIAL_TOKEN_OPENING = re.compile("<(?=[|\uff5c])")  # "<|" and DeepSeek's full-width "<\uff5c"


def defuse_special_tokens(text: str) -> str:
    """``text`` with every ``<|...|>`` chat-template token spelling broken: ``<|`` becomes ``‹|`` (U+2039).

    Retrieved text goes into prompts: ``<|im_end|>`` in a feed (raw or entity-encoded, decoded by
    the time it gets here) would tokenise into a real special token and close the passage's turn.
    """
    return _SPECIAL_TOKEN_OPENING.sub("\u2039", text) if "<" in text else text


def utc(value: datetime | None) -> datetime | None:
    """The same instant as an aware UTC datetime (naive values are taken to be UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass
class Document:
    source: str
    external_id: str  # the source's own id: a feed GUID, a canonical URL, a row key
    text: str
    title: str = ""
    url: str | None = None
    published_at: datetime | None = None
    author: str | None = None
    language: str | None = None
    extraction: str = "article"  # "article": the page was extracted; "feed": the feed's own text stands in
    extraction_note: str | None = None  # why the fallback was used
    entry_hash: str | None = None  # fingerprint of the raw feed entry/row, to skip re-fetching unchanged items
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Every document's text passes here, whatever its connector: none may carry chat special tokens.
        self.text = defuse_special_tokens(self.text or "")
        self.title = defuse_special_tokens(self.title or "")
        if self.author:
            self.author = defuse_special_tokens(self.author)
        if self.url:  # a link joined against a feed URL with user:password@ must not carry it into the index
            self.url = public_url(self.url)
        if "@" in self.external_id and "://" in self.external_id:
            self.external_id = public_url(self.external_id)

    @property
    def id(self) -> str:
        return document_id(self.source, self.external_id)

    @property
    def content_hash(self) -> str:
        """Hash of everything that ends up in the index; a different hash means the document changed."""
        published = utc(self.published_at)
        body = json.dumps(
            [self.title, self.url, self.text, published.isoformat() if published else None, self.metadata],
            ensure_ascii=False,
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(body.encode()).hexdigest()


@dataclass
class ItemFailure:
    """An item (feed entry, table row) that cannot become a document; it is quarantined with its reason."""

    external_id: str
    reason: str
    url: str | None = None
    title: str = ""

"""RSS/Atom feeds to Documents: fetch politely, parse with feedparser, extract each article with trafilatura."""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus, urljoin, urlsplit, urlunsplit

from connectors.articles import decode_html, extract_article, html_to_text
from connectors.document import Document, ItemFailure
from connectors.feedxml import parse_feed
from connectors.fetching import Fetcher
from connectors.language import detect_language
from connectors.sources import FeedSource
from errors import FetchError, SourceError

logger = logging.getLogger(__name__)

_TRACKING_PARAMS = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid")

KnownEntries = Callable[[list[str]], Mapping[str, str]]
"""Given external ids, the entry fingerprints of those already settled in the catalog."""


@dataclass
class FeedState:
    """What we remember about a feed between pulls: the validators for conditional GET."""

    etag: str | None = None
    last_modified: str | None = None

    @classmethod
    def from_cursor(cls, cursor: Mapping[str, Any] | None) -> FeedState:
        cursor = cursor or {}
        return cls(etag=cursor.get("etag"), last_modified=cursor.get("last_modified"))

    def to_cursor(self) -> dict[str, Any]:
        return {"etag": self.etag, "last_modified": self.last_modified}


@dataclass
class FeedPull:
    state: FeedState
    not_modified: bool = False
    documents: list[Document] = field(default_factory=list)
    unchanged: int = 0  # entries whose fingerprint matched the catalog: nothing fetched
    duplicates: int = 0  # entries repeating a GUID already seen in this feed
    failures: list[ItemFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Entry:
    external_id: str
    link: str | None
    title: str
    summary_html: str
    published_at: datetime | None
    author: str | None
    fingerprint: str


def canonical_url(url: str) -> str:
    """Scheme and host lower-cased, fragment and tracking parameters dropped.

    The other query parameters keep their order and spelling: re-encoding them could change what
    the server answers (``?a`` is not ``?a=``). Raises ``ValueError`` for a URL that does not parse.
    """
    parts = urlsplit(url.strip())
    query = "&".join(
        pair
        for pair in parts.query.split("&")
        if pair and not unquote_plus(pair.split("=", 1)[0]).lower().startswith(_TRACKING_PARAMS)
    )
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", query, ""))


def _article_link(value: str | None, base_url: str) -> str | None:
    """The entry's canonical http(s) link, resolved against the feed's URL; None when there is none to fetch."""
    if not value:
        return None
    try:
        link = urljoin(base_url, value.strip())
        return canonical_url(link) if urlsplit(link).scheme in ("http", "https") else None
    except ValueError:  # e.g. a broken IPv6 literal; one bad link must not sink the whole feed
        logger.info("ignoring the unusable entry link %r", value)
        return None


def _struct_to_utc(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _entry(raw: Mapping[str, Any], base_url: str) -> _Entry | ItemFailure:
    link = _article_link(raw.get("link"), base_url)
    title = html_to_text(raw.get("title", ""))
    contents = raw.get("content") or []
    summary_html = (contents[0].get("value") if contents else None) or raw.get("summary", "") or ""
    guid = (raw.get("id") or "").strip() or None
    external_id = guid or link
    if external_id is None:
        if not (title or summary_html.strip()):
            return ItemFailure(external_id="(empty entry)", reason="entry has no id, link, title or text")
        external_id = "sha256:" + hashlib.sha256(f"{title}\x00{summary_html}".encode()).hexdigest()[:32]
    published = _struct_to_utc(raw.get("published_parsed")) or _struct_to_utc(raw.get("updated_parsed"))
    fingerprint = hashlib.sha256(
        json.dumps(
            [external_id, link, title, summary_html, raw.get("updated"), raw.get("published")], default=str
        ).encode()
    ).hexdigest()
    return _Entry(external_id, link, title, summary_html, published, raw.get("author") or None, fingerprint)


class _ArticleFetcher:
    def __init__(self, source: FeedSource, fetcher: Fetcher) -> None:
        self.source = source
        self.fetcher = fetcher

    def document(self, entry: _Entry) -> Document | ItemFailure:
        note = None
        article = None
        if entry.link and self.source.fetch_articles:
            try:
                page = self.fetcher.get(
                    entry.link,
                    allow_private=self.source.allow_private_addresses,
                    check_robots=True,
                    accept="text/html,application/xhtml+xml",
                )
            except FetchError as exc:
                note = f"article not fetched: {exc}"
            else:
                if "html" not in page.content_type and page.content_type:
                    note = f"article is {page.content_type.split(';')[0]}, not HTML"
                else:
                    article = extract_article(decode_html(page.content, page.content_type), page.final_url)
                    if article is None:
                        note = "article page has no extractable text"
        elif not entry.link:
            note = "entry has no link"
        else:
            note = "article fetching is off for this source"
        if article is not None:
            text = article.text
            title = entry.title or article.title or ""
            author = entry.author or article.author
            published = entry.published_at or article.date
            language = article.language
        else:
            text = html_to_text(entry.summary_html)
            title, author, published = entry.title, entry.author, entry.published_at
            language = detect_language(text)
            if not text:
                return ItemFailure(
                    entry.external_id,
                    f"no text: {note}; the feed entry has no summary either",
                    url=entry.link,
                    title=title,
                )
        return Document(
            source=self.source.name,
            external_id=entry.external_id,
            text=text,
            title=title,
            url=entry.link,
            published_at=published,
            author=author,
            language=language,
            extraction="article" if article is not None else "feed",
            extraction_note=note if article is None else None,
            entry_hash=entry.fingerprint,
        )


def pull_feed(
    source: FeedSource,
    fetcher: Fetcher,
    state: FeedState,
    known: KnownEntries | None = None,
    *,
    article_workers: int = 4,
) -> FeedPull:
    """Fetch a feed (conditionally) and turn its new or changed entries into documents.

    Raises ``SourceError`` when the feed itself cannot be fetched or parsed; entries that fail
    on their own come back in ``failures`` and the rest of the feed goes on.
    """
    url = str(source.url)
    try:
        result = fetcher.get(
            url,
            allow_private=source.allow_private_addresses,
            etag=state.etag,
            last_modified=state.last_modified,
            accept="application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5",
        )
    except FetchError as exc:
        raise SourceError(f"feed {source.name}: {exc}") from exc
    if result.not_modified:
        return FeedPull(state=state, not_modified=True)
    new_state = FeedState(etag=result.etag, last_modified=result.last_modified)
    raw_entries, complaint = parse_feed(result.content, url=result.final_url, content_type=result.content_type)
    pull = FeedPull(state=new_state)
    if complaint:
        pull.warnings.append(f"feed is malformed but usable: {complaint}")

    entries: list[_Entry] = []
    seen: set[str] = set()
    for raw in raw_entries[: source.max_items]:
        entry = _entry(raw, result.final_url)
        if isinstance(entry, ItemFailure):
            pull.failures.append(entry)
            continue
        if entry.external_id in seen:
            pull.duplicates += 1
            continue
        seen.add(entry.external_id)
        entries.append(entry)

    settled = known([e.external_id for e in entries]) if known and entries else {}
    todo = [e for e in entries if settled.get(e.external_id) != e.fingerprint]
    pull.unchanged = len(entries) - len(todo)
    articles = _ArticleFetcher(source, fetcher)
    with ThreadPoolExecutor(max_workers=max(1, article_workers), thread_name_prefix=f"feed-{source.name}") as pool:
        for outcome in pool.map(articles.document, todo):
            if isinstance(outcome, ItemFailure):
                pull.failures.append(outcome)
            else:
                pull.documents.append(outcome)
    return pull


def reextract(source: FeedSource, fetcher: Fetcher, doc: Document) -> Document:
    """Fetch a document's article page again and extract it afresh (a backfill's job).

    When the page cannot be fetched or yields no text, the document's current text stands in,
    so a backfill never makes a document worse than it was.
    """
    entry = _Entry(
        external_id=doc.external_id,
        link=doc.url,
        title=doc.title,
        summary_html=doc.text,
        published_at=doc.published_at,
        author=doc.author,
        fingerprint=doc.entry_hash or "",
    )
    outcome = _ArticleFetcher(source, fetcher).document(entry)
    if isinstance(outcome, ItemFailure) or (outcome.extraction != "article" and doc.extraction == "article"):
        return doc
    outcome.entry_hash = doc.entry_hash
    return outcome

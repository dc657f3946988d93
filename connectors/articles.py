"""Article pages to clean text and metadata, with trafilatura; HTML snippets to plain text."""

from __future__ import annotations

import codecs
import html
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import lxml.html
import trafilatura
from lxml.etree import ParserError

from connectors.language import detect_language

logger = logging.getLogger(__name__)

MIN_ARTICLE_CHARS = 200  # less than this is boilerplate (a menu, a cookie notice), not an article

_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.I)
# The WHATWG encoding standard reads these labels as windows-1252, as browsers do: pages that say
# latin-1 routinely hold cp1252 quotes and dashes, which a strict decoder turns into control characters.
_AS_WINDOWS_1252 = {"iso8859-1", "ascii"}
_BLOCK_TAGS = ("p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr")


@dataclass
class Article:
    text: str
    title: str | None
    author: str | None
    date: datetime | None
    language: str | None


def decode_html(content: bytes, content_type: str = "") -> str | bytes:
    """Decode with the charset the server declared; without one, let trafilatura sniff the bytes."""
    match = _CHARSET.search(content_type or "")
    if match:
        try:
            encoding = codecs.lookup(match.group(1)).name
            return content.decode("cp1252" if encoding in _AS_WINDOWS_1252 else encoding, errors="replace")
        except LookupError:  # unknown, or not a text encoding at all ("base64")
            logger.debug("unknown charset %s; sniffing instead", match.group(1))
    return content


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def extract_article(html: str | bytes, url: str) -> Article | None:
    """The main text of an article page, or None when the page holds no article text."""
    try:
        doc = trafilatura.bare_extraction(
            html,
            url=url,
            with_metadata=True,
            favor_precision=True,
            include_comments=False,
            deduplicate=False,  # its cache is process-wide and empties pages seen a few times
        )
    except Exception as exc:  # trafilatura raises a zoo of parser errors on broken pages
        logger.info("extraction failed for %s: %s", url, exc)
        return None
    text = (getattr(doc, "text", None) or "").strip() if doc is not None else ""
    if len(text) < MIN_ARTICLE_CHARS:
        return None
    return Article(
        text=text,
        title=doc.title or None,
        author=doc.author or None,
        date=_parse_date(doc.date),
        language=detect_language(text),
    )


def html_to_text(snippet: str) -> str:
    """Plain text of a feed's HTML summary/content, one line per block element."""
    if not snippet or not snippet.strip():
        return ""
    if "<" not in snippet:  # no markup, but entities still stand for characters ("&lt;" is "<")
        return re.sub(r"[ \t]+", " ", html.unescape(snippet)).strip()
    try:
        root = lxml.html.fromstring(snippet)
    except (ParserError, ValueError):
        return re.sub(r"<[^>]+>", " ", snippet).strip()
    for bad in root.xpath("//script|//style"):
        bad.drop_tree()
    for element in root.iter(*_BLOCK_TAGS):
        element.tail = "\n" + (element.tail or "")
    text = root.text_content()
    lines = (re.sub(r"\s+", " ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)

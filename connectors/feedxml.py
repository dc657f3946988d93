"""Feed bytes to feedparser's raw entries, with XML entity declarations defused first and the text bounded.

feedparser keeps internal entities whose value looks harmless and, when expat's amplification
guard stops the strict parse, hands them to its loose parser, which expands them without limit:
a 1 MB feed declaring one large entity became a 419 MB summary. Feeds have no need for a DTD's
internal subset, so it is removed (with any other declaration before the root element) before
feedparser sees the bytes, and a feed whose entries still add up to more text than
``MAX_FEED_TEXT_CHARS`` is refused.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import feedparser
from feedparser.encodings import convert_to_utf8
from feedparser.sanitizer import replace_doctype

from errors import SourceError

logger = logging.getLogger(__name__)

MAX_FEED_TEXT_CHARS = 20_000_000
"""The most text (titles, summaries, contents) one feed may yield; four times the default byte cap."""

_DECLARATION_TOKEN = re.compile(rb"<!--|[\"'\[\]>]")
_PROLOG_MARKUP = re.compile(rb"<(\?|!--|!|\w)")


def _declaration_end(data: bytes, start: int) -> tuple[int, int | None]:
    """Where the ``<!...>`` declaration at ``start`` ends, and where its internal subset (``[``) opens.

    Quotes and comments are skipped, so ``]>`` inside an entity value does not end it; an
    unterminated declaration runs to the end of the data (and so is dropped whole).
    """
    pos, depth, subset = start + 2, 0, None
    while (match := _DECLARATION_TOKEN.search(data, pos)) is not None:
        token = match.group()
        pos = match.end()
        if token in (b'"', b"'", b"<!--"):
            close = data.find(b"-->" if token == b"<!--" else token, pos)
            if close < 0:
                break
            pos = close + (3 if token == b"<!--" else 1)
        elif token == b"[":
            subset = match.start() if depth == 0 else subset
            depth += 1
        elif token == b"]":
            depth = max(0, depth - 1)
        elif depth == 0:  # ">"
            return pos, subset
    return len(data), subset


def strip_dtd_declarations(data: bytes) -> bytes:
    """``data`` (UTF-8) without a DOCTYPE's internal subset or any other declaration or comment before the root.

    A DOCTYPE without its subset stays: feedparser reads the RSS 0.91 flavour from it.
    """
    pieces: list[bytes] = []
    pos = 0
    while (match := _PROLOG_MARKUP.search(data, pos)) is not None:
        kind, start = match.group(1), match.start()
        if kind == b"?":  # the XML declaration or a processing instruction: kept
            close = data.find(b"?>", start)
            end = len(data) if close < 0 else close + 2
            pieces.append(data[pos:end])
        elif kind == b"!--":  # a comment: dropped, declarations could hide in it from feedparser's own scan
            close = data.find(b"-->", start + 4)
            end = len(data) if close < 0 else close + 3
            pieces.append(data[pos:start])
        elif kind == b"!":
            end, subset = _declaration_end(data, start)
            pieces.append(data[pos:start])
            if data[start : start + 9].upper() == b"<!DOCTYPE":
                pieces.append(data[start:subset].rstrip() + b">" if subset is not None else data[start:end])
        else:  # the root element: declarations end here
            break
        pos = end
    pieces.append(data[pos:])
    return b"".join(pieces)


def _feed_content_type(content_type: str) -> str:
    """The content type to hand feedparser, read as RFC 7303 says.

    feedparser still follows RFC 3023, for which ``text/xml`` without a charset means us-ascii, and
    flags every such feed holding a non-ASCII character as malformed; RFC 7303 lets the XML
    declaration decide, as for ``application/xml``.
    """
    media, _, params = (content_type or "").partition(";")
    media = media.strip().lower()
    if not media:
        return "application/xml"
    if media.startswith("text/") and media.endswith("xml") and "charset" not in params.lower():
        return "application/" + media.removeprefix("text/") + (f";{params}" if params else "")
    return content_type


def _text_size(entries: list[Mapping[str, Any]]) -> int:
    size = 0
    for entry in entries:
        size += len(entry.get("title") or "") + len(entry.get("summary") or "")
        size += sum(len(part.get("value") or "") for part in entry.get("content") or [])
    return size


def parse_feed(content: bytes, *, url: str, content_type: str = "") -> tuple[list[Mapping[str, Any]], str | None]:
    """The raw entries of a feed and, for a "bozo" feed that still parsed, the parser's complaint.

    Raises ``SourceError`` when nothing usable came out. Relative links are left for the caller to
    resolve against ``url``: given a base (``content-location``), feedparser would also resolve
    relative GUIDs such as ``12345``, and every id would change the day the feed moves.
    """
    content_type = _feed_content_type(content_type)
    decoding: dict[str, Any] = {}
    # Declarations are found in UTF-8, whatever the feed's own encoding (UTF-16 or UTF-7 would hide them).
    data = strip_dtd_declarations(convert_to_utf8({"content-type": content_type}, content, decoding))
    if replace_doctype(data)[2]:  # feedparser would still find an entity to expand: refuse rather than guess
        raise SourceError(f"feed {url} declares XML entities in a way kup refuses to parse")
    media = content_type.partition(";")[0].strip() or "application/xml"
    parsed = feedparser.parse(data, response_headers={"content-type": f"{media}; charset=utf-8"})
    if decoding.get("bozo") and not parsed.get("bozo"):
        parsed["bozo"], parsed["bozo_exception"] = 1, decoding.get("bozo_exception")
    complaint = (str(parsed.get("bozo_exception", "")) or "malformed feed") if parsed.get("bozo") else None
    if not parsed.entries:
        if not parsed.get("version"):
            raise SourceError(f"{url} is not an RSS or Atom feed" + (f" ({complaint})" if complaint else ""))
        if complaint:
            raise SourceError(f"feed {url} is unusable: {complaint}")
    if _text_size(parsed.entries) > MAX_FEED_TEXT_CHARS:
        raise SourceError(f"feed {url} yields more than {MAX_FEED_TEXT_CHARS} characters of text; refused")
    return parsed.entries, complaint

"""A real threaded HTTP server on localhost that serves feeds and article pages written for tests.

Routes are set per path: a body with status and headers, optional ETag/Last-Modified (answered
with 304 when the client sends them back), a delay before answering, a slow drip, redirects,
or a callable that decides per request. Every request is counted per path.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0  # seconds before the answer starts
    drip: float = 0.0  # seconds between 100-byte pieces of the body
    handler: Callable[[BaseHTTPRequestHandler], Route] | None = None  # decide per request


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = self.path.split("#")[0]
                with server._lock:
                    server.hits[path] += 1
                    server.requests.append((path, {k.lower(): v for k, v in self.headers.items()}))
                    route = server.routes.get(path)
                if route is None:
                    route = Route(b"not found", status=404, content_type="text/plain")
                if route.handler is not None:
                    route = route.handler(self)
                if route.delay:
                    time.sleep(route.delay)
                if (route.etag and self.headers.get("If-None-Match") == route.etag) or (
                    route.last_modified and self.headers.get("If-Modified-Since") == route.last_modified
                ):
                    self.send_response(304)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(route.status)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                if route.etag:
                    self.send_header("ETag", route.etag)
                if route.last_modified:
                    self.send_header("Last-Modified", route.last_modified)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    if route.drip:
                        for start in range(0, len(route.body), 100):
                            self.wfile.write(route.body[start : start + 100])
                            self.wfile.flush()
                            time.sleep(route.drip)
                    else:
                        self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def set(self, path: str, body: bytes | str = b"", **options) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        with self._lock:
            self.routes[path] = Route(body=body, **options)
        return self.url(path)

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- content builders -------------------------------------------------------------------------


@dataclass
class Item:
    title: str
    link: str | None = None
    guid: str | None = None
    published: datetime | None = None
    summary: str = ""
    author: str | None = None


def rss(
    items: list[Item], *, title: str = "Test feed", link: str = "http://example.com/", encoding: str = "utf-8"
) -> str:
    parts = [
        f'<?xml version="1.0" encoding="{encoding}"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>{escape(link)}</link><description>tests</description>",
    ]
    for it in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(it.title)}</title>")
        if it.link:
            parts.append(f"<link>{escape(it.link)}</link>")
        if it.guid:
            parts.append(f'<guid isPermaLink="false">{escape(it.guid)}</guid>')
        if it.published:
            parts.append(f"<pubDate>{format_datetime(it.published)}</pubDate>")
        if it.author:
            parts.append(f"<author>{escape(it.author)}</author>")
        if it.summary:
            parts.append(f"<description>{escape(it.summary)}</description>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts)


def atom(items: list[Item], *, title: str = "Test atom feed") -> str:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{escape(title)}</title><id>urn:test:feed</id><updated>2026-01-01T00:00:00Z</updated>",
    ]
    for it in items:
        parts.append("<entry>")
        parts.append(f"<title>{escape(it.title)}</title>")
        parts.append(f"<id>{escape(it.guid or it.link or it.title)}</id>")
        if it.link:
            parts.append(f'<link rel="alternate" href="{escape(it.link)}"/>')
        if it.published:
            stamp = it.published.strftime("%Y-%m-%dT%H:%M:%SZ")
            parts.append(f"<published>{stamp}</published><updated>{stamp}</updated>")
        if it.summary:
            parts.append(f'<summary type="html">{escape(it.summary)}</summary>')
        parts.append("</entry>")
    parts.append("</feed>")
    return "\n".join(parts)


def rss1(items: list[Item], *, title: str = "Test RDF feed") -> str:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">',
        f'<channel rdf:about="urn:test"><title>{escape(title)}</title><link>http://example.com/</link>'
        "<description>tests</description></channel>",
    ]
    for it in items:
        parts.append(f'<item rdf:about="{escape(it.link or "")}"><title>{escape(it.title)}</title>')
        if it.link:
            parts.append(f"<link>{escape(it.link)}</link>")
        if it.published:
            parts.append(f"<dc:date>{it.published.strftime('%Y-%m-%dT%H:%M:%SZ')}</dc:date>")
        if it.summary:
            parts.append(f"<description>{escape(it.summary)}</description>")
        parts.append("</item>")
    parts.append("</rdf:RDF>")
    return "\n".join(parts)


def article_html(
    title: str, paragraphs: list[str], *, author: str = "Test Author", lang: str = "en", charset: str | None = "utf-8"
) -> str:
    meta = f'<meta charset="{charset}">' if charset else ""
    body = "\n".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head>{meta}<title>{escape(title)}</title>'
        f'<meta name="author" content="{escape(author)}"></head><body>'
        '<nav><a href="/">Home</a> <a href="/world">World</a></nav>'
        f"<article><h1>{escape(title)}</h1>{body}</article>"
        "<footer>Copyright Test News</footer></body></html>"
    )


WORDS = (
    "council harbour energy grid storm market vaccine election river bridge festival museum rail budget "
    "climate solar drought school hospital union strike court ruling wildlife forest coast tourism export "
    "harvest factory robot satellite launch mission rover telescope galaxy bank inflation housing rent"
).split()


def paragraphs(seed: int, count: int = 6, words: int = 60) -> list[str]:
    """Deterministic filler paragraphs that differ per seed (so chunks and embeddings differ)."""
    import random

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        sentence_words = [rng.choice(WORDS) for _ in range(words)]
        text = " ".join(sentence_words)
        out.append(text[0].upper() + text[1:] + ".")
    return out

"""Polite HTTP fetching: timeouts, size cap, redirect limit, per-host limits, retries, robots.txt, SSRF guard."""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC
from urllib.parse import urljoin, urlsplit

import httpx

from connectors.netguard import GuardedTransport, check_url, deadline, deadline_passed
from connectors.robots import RobotsCache
from errors import FetchError

logger = logging.getLogger(__name__)

_RETRY_STATUSES = {429, 500, 502, 503, 504}
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}


@dataclass(frozen=True)
class FetchPolicy:
    """How politely and how defensively we fetch; every figure is a default users can change."""

    user_agent: str = "kup/0.1 (knowledge-update pipeline; +https://github.com/kup-pipeline/kup)"
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_timeout: float = 30.0  # wall clock for one response, so a slow drip cannot hold a worker
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    retries: int = 2  # extra attempts on 429/5xx and connection errors
    backoff: float = 0.5  # first retry waits about this long, doubling each time
    max_retry_after: float = 30.0  # longer Retry-After values are recorded, not slept through
    per_host_concurrency: int = 2
    respect_robots: bool = True


@dataclass
class FetchResult:
    url: str
    final_url: str
    status: int
    content: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


MAX_RETRY_AFTER_SECONDS = 3600.0
"""The longest a server's Retry-After may park a source: larger values (ten years, 10**12) are clamped."""


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks us to wait (delta-seconds or HTTP-date), clamped.

    Clamped to ``[0, MAX_RETRY_AFTER_SECONDS]``; a value that is neither form is ignored (None).
    """
    value = (value or "").strip()
    if not value or len(value) > 64:
        return None
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are always GMT
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}
"""The content codings we ask for and undo; zlib's window bits for each."""


class _Body:
    """A response body decompressed as it arrives, never more than ``limit`` bytes of output.

    httpx would inflate a whole network read (and every stacked coding of it) before our size
    check saw a byte: a few kilobytes of ``gzip, gzip`` became a gigabyte. Here zlib is told how
    much output it may produce (``max_length``), so memory stays within the cap whatever comes in.
    """

    def __init__(self, url: str, content_encoding: str, limit: int) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        codings = [c for c in codings if c and c != "identity"]
        if len(codings) > 1:
            raise FetchError(f"{url} is sent with stacked content encodings ({content_encoding}); refused")
        if codings and codings[0] not in _WBITS:
            raise FetchError(f"{url} is sent with the unsupported content encoding {codings[0]!r}; refused")
        self._url = url
        self._limit = limit
        self._coding = codings[0] if codings else None
        self._inflate = zlib.decompressobj(_WBITS[self._coding]) if self._coding else None
        self._chunks: list[bytes] = []
        self._size = 0
        self._raw_size = 0

    def feed(self, data: bytes) -> None:
        self._raw_size += len(data)
        if self._raw_size > self._limit:
            raise FetchError(f"{self._url} exceeds the {self._limit}-byte cap")
        if self._inflate is None:
            self._append(data)
            return
        try:
            self._inflate_bounded(data)
        except zlib.error as exc:
            if self._coding != "deflate" or self._size or self._raw_size != len(data):
                raise self._undecodable(exc) from exc
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)  # "deflate" sent raw, without the zlib header
            try:
                self._inflate_bounded(data)
            except zlib.error as again:
                raise self._undecodable(again) from again

    def _undecodable(self, exc: zlib.error) -> FetchError:
        return FetchError(f"could not decode the {self._coding} response from {self._url}: {exc}")

    def _inflate_bounded(self, data: bytes) -> None:
        assert self._inflate is not None
        while data and not self._inflate.eof:  # bytes after the end of the stream are ignored, as httpx does
            self._append(self._inflate.decompress(data, self._limit - self._size + 1))
            data = self._inflate.unconsumed_tail

    def _append(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._limit:
            raise FetchError(f"{self._url} exceeds the {self._limit}-byte cap")
        if data:
            self._chunks.append(data)

    def content(self) -> bytes:
        return b"".join(self._chunks)


class Fetcher:
    """A shared, thread-safe HTTP client. One per run; close it when done."""

    def __init__(self, policy: FetchPolicy | None = None) -> None:
        self.policy = policy or FetchPolicy()
        p = self.policy
        # One client per guard mode, so a connection opened for a source allowed private addresses is
        # never reused by one that is not; the transport checks each address as it connects.
        self._clients = {
            allow: httpx.Client(
                transport=GuardedTransport(allow_private=allow),
                follow_redirects=False,  # redirects are followed by hand, so every hop passes the guard
                timeout=httpx.Timeout(p.read_timeout, connect=p.connect_timeout),
                headers={"User-Agent": p.user_agent, "Accept-Encoding": "gzip, deflate"},
                trust_env=False,
            )
            for allow in (False, True)
        }
        self._slots: dict[str, threading.BoundedSemaphore] = defaultdict(
            lambda: threading.BoundedSemaphore(p.per_host_concurrency)
        )
        self._slots_lock = threading.Lock()
        self.robots = RobotsCache(self._robots_txt, p.user_agent)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _robots_txt(self, url: str, allow_private: bool) -> bytes:
        return self.get(url, allow_private=allow_private, accept="text/plain").content

    def _slot(self, url: str) -> threading.BoundedSemaphore:
        host = (urlsplit(url).hostname or "").lower()
        with self._slots_lock:
            return self._slots[host]

    def get(
        self,
        url: str,
        *,
        allow_private: bool = False,
        etag: str | None = None,
        last_modified: str | None = None,
        check_robots: bool = False,
        accept: str = "*/*",
    ) -> FetchResult:
        """GET ``url`` following redirects by hand; raises ``FetchError`` on any failure.

        A 304 answer to the conditional headers is returned (``not_modified``), not raised.
        """
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        seen: set[str] = set()
        for _hop in range(self.policy.max_redirects + 1):
            check_url(current, allow_private=allow_private, timeout=self.policy.connect_timeout)
            if (
                check_robots
                and self.policy.respect_robots
                and not self.robots.allowed(current, allow_private=allow_private)
            ):
                raise FetchError(f"robots.txt of {urlsplit(current).netloc} disallows {current}")
            seen.add(current)
            result = self._get_with_retries(current, headers, allow_private)
            if result.status in _REDIRECT_STATUSES:
                location = result.headers.get("location")
                if not location:
                    raise FetchError(f"{current} redirected without a Location header", status=result.status)
                nxt = urljoin(current, location)
                if nxt in seen:
                    raise FetchError(f"redirect loop at {current} -> {nxt}", status=result.status)
                current = nxt
                continue
            result.url = url
            if result.status == 304 or 200 <= result.status < 300:
                return result
            raise FetchError(
                f"HTTP {result.status} from {current}",
                status=result.status,
                transient=result.status in _RETRY_STATUSES or result.status == 408,
                retry_after=retry_after_seconds(result.headers.get("retry-after")),
            )
        raise FetchError(f"more than {self.policy.max_redirects} redirects starting at {url}")

    def _get_with_retries(self, url: str, headers: dict[str, str], allow_private: bool) -> FetchResult:
        p = self.policy
        attempt = 0
        while True:
            try:
                result = self._get_once(url, headers, allow_private)
            except FetchError as exc:
                if not exc.transient or attempt >= p.retries:
                    raise
                wait = p.backoff * 2**attempt * (0.5 + random.random())
                logger.info("retrying %s in %.1fs after: %s", url, wait, exc)
            else:
                if result.status not in _RETRY_STATUSES or attempt >= p.retries:
                    return result
                retry_after = retry_after_seconds(result.headers.get("retry-after"))
                if retry_after is not None and retry_after > p.max_retry_after:
                    return result  # the caller records it with its Retry-After; we do not block a worker
                wait = retry_after if retry_after is not None else p.backoff * 2**attempt * (0.5 + random.random())
                logger.info("HTTP %s from %s; retrying in %.1fs", result.status, url, wait)
            time.sleep(wait)
            attempt += 1

    def _get_once(self, url: str, headers: dict[str, str], allow_private: bool) -> FetchResult:
        p = self.policy
        # The deadline starts with the request, not with the wait for a slot, and bounds every socket
        # operation of it: connect, TLS, headers and body, so no drip anywhere holds a worker past it.
        with self._slot(url), deadline(p.total_timeout):
            try:
                with self._clients[allow_private].stream("GET", url, headers=headers) as response:
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > p.max_bytes:
                        raise FetchError(f"{url} is {declared} bytes, over the {p.max_bytes}-byte cap")
                    content = b""
                    if response.status_code not in _REDIRECT_STATUSES:
                        body = _Body(url, response.headers.get("content-encoding", ""), p.max_bytes)
                        for chunk in response.iter_raw():  # raw: we decompress, so the cap bounds the output
                            body.feed(chunk)
                        content = body.content()
                    return FetchResult(
                        url=url,
                        final_url=str(response.url),
                        status=response.status_code,
                        content=content,
                        headers={k.lower(): v for k, v in response.headers.items()},
                    )
            except httpx.TimeoutException as exc:
                if deadline_passed():
                    message = f"{url} took longer than {p.total_timeout:g}s to download"
                    raise FetchError(message, transient=True) from exc
                raise FetchError(f"timed out fetching {url} ({type(exc).__name__})", transient=True) from exc
            except httpx.InvalidURL as exc:  # not an HTTPError: httpx raises it before any I/O
                raise FetchError(f"refused {url!r}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"could not fetch {url}: {exc}", transient=True) from exc

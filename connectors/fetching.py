"""Polite HTTP fetching: timeouts, size cap, redirect limit, per-host limits, retries, robots.txt, SSRF guard."""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC
from urllib.parse import urljoin, urlsplit

import httpx

from connectors.netguard import check_url
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


class Fetcher:
    """A shared, thread-safe HTTP client. One per run; close it when done."""

    def __init__(self, policy: FetchPolicy | None = None) -> None:
        self.policy = policy or FetchPolicy()
        p = self.policy
        self._client = httpx.Client(
            follow_redirects=False,  # redirects are followed by hand, so every hop passes the guard
            timeout=httpx.Timeout(p.read_timeout, connect=p.connect_timeout),
            headers={"User-Agent": p.user_agent, "Accept-Encoding": "gzip, deflate"},
            trust_env=False,
        )
        self._slots: dict[str, threading.BoundedSemaphore] = defaultdict(
            lambda: threading.BoundedSemaphore(p.per_host_concurrency)
        )
        self._slots_lock = threading.Lock()
        self.robots = RobotsCache(self._robots_txt, p.user_agent)

    def close(self) -> None:
        self._client.close()

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
            check_url(current, allow_private=allow_private)
            if (
                check_robots
                and self.policy.respect_robots
                and not self.robots.allowed(current, allow_private=allow_private)
            ):
                raise FetchError(f"robots.txt of {urlsplit(current).netloc} disallows {current}")
            seen.add(current)
            result = self._get_with_retries(current, headers)
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

    def _get_with_retries(self, url: str, headers: dict[str, str]) -> FetchResult:
        p = self.policy
        attempt = 0
        while True:
            try:
                result = self._get_once(url, headers)
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

    def _get_once(self, url: str, headers: dict[str, str]) -> FetchResult:
        p = self.policy
        with self._slot(url):
            deadline = time.monotonic() + p.total_timeout  # from the request, not from the wait for a slot
            try:
                with self._client.stream("GET", url, headers=headers) as response:
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > p.max_bytes:
                        raise FetchError(f"{url} is {declared} bytes, over the {p.max_bytes}-byte cap")
                    chunks: list[bytes] = []
                    size = 0
                    if response.status_code not in _REDIRECT_STATUSES:
                        for chunk in response.iter_bytes():
                            size += len(chunk)
                            if size > p.max_bytes:
                                raise FetchError(f"{url} exceeds the {p.max_bytes}-byte cap")
                            if time.monotonic() > deadline:
                                raise FetchError(
                                    f"{url} took longer than {p.total_timeout:g}s to download", transient=True
                                )
                            chunks.append(chunk)
                    return FetchResult(
                        url=url,
                        final_url=str(response.url),
                        status=response.status_code,
                        content=b"".join(chunks),
                        headers={k.lower(): v for k, v in response.headers.items()},
                    )
            except httpx.TimeoutException as exc:
                raise FetchError(f"timed out fetching {url} ({type(exc).__name__})", transient=True) from exc
            except httpx.InvalidURL as exc:  # not an HTTPError: httpx raises it before any I/O
                raise FetchError(f"refused {url!r}: {exc}") from exc
            except httpx.DecodingError as exc:
                raise FetchError(f"could not decode the response from {url}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"could not fetch {url}: {exc}", transient=True) from exc

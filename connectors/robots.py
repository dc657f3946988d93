"""robots.txt rules per origin, fetched through the polite fetcher and cached for a while (RFC 9309)."""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from connectors.errors import FetchError

if TYPE_CHECKING:
    from connectors.fetching import Fetcher

logger = logging.getLogger(__name__)

_TTL_SECONDS = 3600.0
_ERROR_TTL_SECONDS = 300.0


class RobotsCache:
    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher
        self._rules: dict[str, tuple[float, RobotFileParser]] = {}
        self._lock = threading.Lock()
        self._origin_locks: dict[str, threading.Lock] = {}

    def _agent(self) -> str:
        return self._fetcher.policy.user_agent.split("/")[0]

    def allowed(self, url: str, *, allow_private: bool = False) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            origin_lock = self._origin_locks.setdefault(origin, threading.Lock())
        with origin_lock:  # one robots.txt fetch per origin, however many articles wait on it
            cached = self._rules.get(origin)
            if cached is None or cached[0] < time.monotonic():
                cached = self._load(origin, allow_private)
                self._rules[origin] = cached
        return cached[1].can_fetch(self._agent(), url)

    def _load(self, origin: str, allow_private: bool) -> tuple[float, RobotFileParser]:
        parser = RobotFileParser()
        ttl = _TTL_SECONDS
        try:
            result = self._fetcher.get(f"{origin}/robots.txt", allow_private=allow_private, accept="text/plain")
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                parser.allow_all = True  # RFC 9309: an unavailable robots.txt allows everything
            else:
                parser.disallow_all = True  # unreachable (5xx, network): assume disallowed for now
                ttl = _ERROR_TTL_SECONDS
                logger.info("robots.txt of %s unreachable (%s); articles there are skipped for now", origin, exc)
        else:
            parser.parse(result.content.decode("utf-8", errors="replace").splitlines())
        return time.monotonic() + ttl, parser

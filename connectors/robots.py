"""robots.txt rules per origin, fetched through a callable the fetcher hands in and cached for a while (RFC 9309)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

from errors import FetchError

logger = logging.getLogger(__name__)

_TTL_SECONDS = 3600.0
_ERROR_TTL_SECONDS = 300.0
_MAX_PARSED_BYTES = 512 * 1024  # RFC 9309 asks for at least 500 KiB; megabytes of rules take Protego seconds to parse

RobotsFetch = Callable[[str, bool], bytes]
"""Given a robots.txt URL and whether private addresses are allowed, its body; raises ``FetchError``."""


@dataclass
class RobotsRules:
    """One origin's robots.txt, matched by Protego (RFC 9309: longest match wins, ``*`` and ``$``)."""

    parsed: Protego | None = None
    allow_all: bool = False
    disallow_all: bool = False

    @classmethod
    def parse(cls, text: str) -> RobotsRules:
        return cls(parsed=Protego.parse(text))

    def allowed(self, url: str, agent: str) -> bool:
        if self.disallow_all:
            return False
        if self.allow_all or self.parsed is None or urlsplit(url).path == "/robots.txt":
            return True
        return self.parsed.can_fetch(url, agent)


class RobotsCache:
    """Rules per origin, fetched once per origin and TTL by ``fetch`` and matched for ``user_agent``.

    It takes a callable rather than the fetcher, so this module knows nothing of how HTTP is done.
    """

    def __init__(self, fetch: RobotsFetch, user_agent: str) -> None:
        self._fetch = fetch
        self._agent = user_agent.split("/")[0].strip()  # the product token, the part robots.txt groups name
        self._rules: dict[str, tuple[float, RobotsRules]] = {}
        self._lock = threading.Lock()
        self._origin_locks: dict[str, threading.Lock] = {}

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
        return cached[1].allowed(url, self._agent)

    def _load(self, origin: str, allow_private: bool) -> tuple[float, RobotsRules]:
        ttl = _TTL_SECONDS
        try:
            body = self._fetch(f"{origin}/robots.txt", allow_private)
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                rules = RobotsRules(allow_all=True)  # RFC 9309: an unavailable robots.txt allows everything
            else:
                rules = RobotsRules(disallow_all=True)  # unreachable (5xx, network): assume disallowed for now
                ttl = _ERROR_TTL_SECONDS
                logger.info("robots.txt of %s unreachable (%s); articles there are skipped for now", origin, exc)
        else:
            if len(body) > _MAX_PARSED_BYTES:
                body = body[: body.rfind(b"\n", 0, _MAX_PARSED_BYTES) + 1]  # whole lines only
            rules = RobotsRules.parse(body.decode("utf-8", errors="replace"))
        return time.monotonic() + ttl, rules

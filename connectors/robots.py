"""robots.txt rules per origin, fetched through the polite fetcher and cached for a while (RFC 9309)."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from connectors.errors import FetchError

if TYPE_CHECKING:
    from connectors.fetching import Fetcher

logger = logging.getLogger(__name__)

_TTL_SECONDS = 3600.0
_ERROR_TTL_SECONDS = 300.0
_SAFE = "/?=&;:@!$'()*+,~-._%"  # characters left as they are when paths are normalized for matching


def _normalize(path: str) -> str:
    """One spelling per path, so that ``/a%7Eb`` and ``/a~b`` match the same rules."""
    return quote(unquote(path), safe=_SAFE)


@dataclass
class _Rule:
    allow: bool
    pattern: str
    regex: re.Pattern[str]


def _rule(allow: bool, pattern: str) -> _Rule:
    path = _normalize(pattern)
    anchored = path.endswith("$")
    body = ".*".join(re.escape(part) for part in (path[:-1] if anchored else path).split("*"))
    return _Rule(allow, path, re.compile(body + (r"\Z" if anchored else "")))


@dataclass
class RobotsRules:
    """The groups of one robots.txt; ``allowed`` applies RFC 9309's longest-match rule with wildcards.

    (``urllib.robotparser`` takes the first matching line and knows no ``*`` or ``$``, so it lets
    ``Allow: /`` before ``Disallow: /private`` open everything.)
    """

    groups: dict[str, list[_Rule]] = field(default_factory=dict)
    allow_all: bool = False
    disallow_all: bool = False

    @classmethod
    def parse(cls, text: str) -> RobotsRules:
        rules = cls()
        agents: list[str] = []
        in_rules = False
        for raw in text.splitlines():
            key, sep, value = raw.split("#", 1)[0].partition(":")
            if not sep:
                continue
            key, value = key.strip().lower(), value.strip()
            if key == "user-agent":
                if in_rules:  # a user-agent line after rules starts a new group
                    agents, in_rules = [], False
                agents.append(value.lower())
                rules.groups.setdefault(value.lower(), [])
            elif key in ("allow", "disallow"):
                in_rules = True
                if value:  # an empty Disallow allows everything, an empty Allow says nothing
                    for agent in agents:
                        rules.groups[agent].append(_rule(key == "allow", value))
        return rules

    def allowed(self, url: str, agent: str) -> bool:
        if self.disallow_all:
            return False
        if self.allow_all:
            return True
        parts = urlsplit(url)
        path = _normalize(parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if path == "/robots.txt":
            return True
        group = self.groups.get(agent.lower())
        if group is None:
            group = self.groups.get("*", [])
        best: _Rule | None = None
        for rule in group:
            if rule.regex.match(path) and (
                best is None
                or len(rule.pattern) > len(best.pattern)
                or (len(rule.pattern) == len(best.pattern) and rule.allow)  # a tie goes to Allow
            ):
                best = rule
        return best is None or best.allow


class RobotsCache:
    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher
        self._rules: dict[str, tuple[float, RobotsRules]] = {}
        self._lock = threading.Lock()
        self._origin_locks: dict[str, threading.Lock] = {}

    def _agent(self) -> str:
        """Our product token, the part of the User-Agent that robots.txt groups name."""
        return self._fetcher.policy.user_agent.split("/")[0].strip()

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
        return cached[1].allowed(url, self._agent())

    def _load(self, origin: str, allow_private: bool) -> tuple[float, RobotsRules]:
        ttl = _TTL_SECONDS
        try:
            result = self._fetcher.get(f"{origin}/robots.txt", allow_private=allow_private, accept="text/plain")
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                rules = RobotsRules(allow_all=True)  # RFC 9309: an unavailable robots.txt allows everything
            else:
                rules = RobotsRules(disallow_all=True)  # unreachable (5xx, network): assume disallowed for now
                ttl = _ERROR_TTL_SECONDS
                logger.info("robots.txt of %s unreachable (%s); articles there are skipped for now", origin, exc)
        else:
            rules = RobotsRules.parse(result.content.decode("utf-8", errors="replace"))
        return time.monotonic() + ttl, rules

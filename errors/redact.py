"""Credentials out of every message: URLs with their passwords and secret query values masked."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters that carry credentials (libpq's `password`, `sslpassword`, API tokens, signed URLs).
_SECRET_PARAM = re.compile(r"(pass|pwd|secret|token|key|auth|signature|credential)", re.IGNORECASE)
# user:password@host, with or without a scheme (also inside longer text, e.g. a driver's error message)
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://|(?<![\w.:/@-]))(?P<user>[\w.%~+-]*):(?P<password>[^/\s@]+)@(?=[\w\[])"
)
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;\s](?:[A-Za-z_]*(?:pass|pwd|secret|token|api_?key|auth|signature|credential)[A-Za-z_]*))"
    r"=(?P<value>[^&\s'\"()\[\]]+)",
    re.IGNORECASE,
)


def is_secret_param(name: str) -> bool:
    """Whether a query parameter of that name carries a credential (``password``, ``sslpassword``, ``api_key`` ...)."""
    return bool(_SECRET_PARAM.search(name))


def mask_url(url: str) -> str:
    """The URL with its password and any credential-bearing query value replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if sep else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if is_secret_param(k) else v) for k, v in pairs], safe="*")
    rebuilt = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    if not netloc and url.startswith(f"{parts.scheme}://"):  # sqlite:////srv/kup/catalog.db: keep the empty host
        rebuilt = f"{parts.scheme}://{rebuilt.removeprefix(f'{parts.scheme}:')}"
    # A second pass over the text catches what URL parsing missed (a malformed scheme, a URL in the path).
    return mask_text(rebuilt)


def public_url(url: str) -> str:
    """A URL as kup may store or show it: without user:password@ at all, secret query values masked. Feeds are
    fetched with the URL as configured; what they link to (joined against it) and what errors say never carry it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    if "@" not in parts.netloc and not parts.query:
        return url
    host = parts.netloc.rpartition("@")[2]
    return mask_url(urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)))


def mask_text(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Any free text (an exception's message) with URL passwords, secret query values and ``secrets`` masked."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m['name']}={MASK}", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text

"""The fast path of ``kup search`` and ``kup ask``: ask a running ``kup api`` instead of loading models here.

``KUP_API_URL`` names the server (``off`` disables the fast path). Unset, the default local address
(127.0.0.1:8077) is tried, and used only when its /health names the same index as this command's
settings, so a server for another data directory is never asked. Whatever goes wrong on the way (no
server, a refused key, a busy or failing server, a request it rejects) returns None and the command
runs in this process as before, with its usual messages.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from answering.answer import Answer
from answering.chat import MODELS, delta_content, sse_events
from errors import KupError
from flows.local_secrets import owner_only_secret
from flows.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8077"  # `kup api`'s default --host and --port
PROBE_TIMEOUT = httpx.Timeout(1.0, connect=0.25)  # a closed local port refuses at once; a hung one is skipped
ASK_TIMEOUT_S = 600.0  # the longest a streamed answer may go quiet (a queued generation on a CPU)
MAX_STREAM_BYTES = 8_000_000  # an answer with its passages is far less


IDENTITY_FILE = "api-identity"  # in the data directory, owner-only: what proves a local server is ours


def api_identity(data_path: Path, *, create: bool = False) -> bytes | None:
    """The secret a local ``kup api`` proves it holds (created owner-only by ``kup api`` when ``create``); None when
    none exists yet (no ``kup api`` of this data directory has run)."""
    secret = owner_only_secret(data_path / IDENTITY_FILE, lambda: secrets.token_hex(32), create=create)
    return secret.encode() if secret else None


def pipeline_id(s: Settings) -> str:
    """An opaque id of the index a process serves (its Qdrant collection, or its Edge index directory)."""
    where = f"qdrant {s.qdrant_url} {s.collection}" if s.qdrant_url else f"edge {s.index_path}"
    return hashlib.sha256(where.encode()).hexdigest()[:16]


class ApiClient:
    def __init__(self, url: str, api_key: str | None) -> None:
        self.url = url.rstrip("/")
        self.headers = {"X-API-Key": api_key} if api_key else {}

    def _post(self, path: str, body: dict, timeout: float) -> dict[str, Any] | None:
        try:
            response = httpx.post(
                f"{self.url}{path}", json=body, headers=self.headers, timeout=httpx.Timeout(timeout, connect=0.5)
            )
        except httpx.HTTPError as exc:
            logger.info("kup api at %s did not answer %s (%s); working in this process", self.url, path, exc)
            return None
        if response.status_code != 200:
            logger.info(
                "kup api at %s answered %s with %s; working in this process", self.url, path, response.status_code
            )
            return None
        return response.json()

    def search(self, body: dict) -> dict[str, Any] | None:
        return self._post("/search", body, timeout=30.0)

    def ask(
        self,
        question: str,
        *,
        mode: str,
        options: dict[str, Any],
        on_text: Callable[[str], None] | None = None,
    ) -> Answer | None:
        """The server's answer, streamed through its OpenAI-compatible route (``answering.chat``) as any chat
        client reads it, its pieces passed to ``on_text``; None when the server does not answer (this process
        answers instead). A stream that breaks after its first piece is a ``KupError``: the text was shown."""
        model = next(name for name, its_mode in MODELS.items() if its_mode == mode)
        body = {
            "model": model,
            "messages": [{"role": "user", "content": question}],
            "stream": True,
            "kup": {**options, "sources_in_text": False},  # the CLI prints the sources its own way
        }
        shown = False
        try:
            with httpx.stream(
                "POST",
                f"{self.url}/v1/chat/completions",
                json=body,
                headers=self.headers,
                timeout=httpx.Timeout(ASK_TIMEOUT_S, connect=0.5),  # generation on a CPU; the server queues
            ) as response:
                if response.status_code != 200:
                    logger.info("kup api at %s answered %s; working in this process", self.url, response.status_code)
                    return None
                answer = None
                events = sse_events(response.iter_bytes(), max_bytes=MAX_STREAM_BYTES)
                for event in events:
                    if "error" in event:
                        raise KupError(f"kup api at {self.url} failed mid-answer: {event['error'].get('message')}")
                    piece = delta_content(event)
                    if piece and on_text is not None:
                        on_text(piece)
                        shown = True
                    if "kup" in event:
                        answer = Answer.from_dict(event["kup"])
                if answer is None:
                    raise KupError(f"kup api at {self.url} ended its answer without the answer's sources")
                return answer
        except (httpx.HTTPError, ValueError) as exc:
            if shown:
                raise KupError(f"the connection to kup api at {self.url} broke mid-answer ({exc}); ask again") from None
            logger.info("kup api at %s did not answer (%s); working in this process", self.url, exc)
            return None


def find_api(s: Settings) -> ApiClient | None:
    """The running ``kup api`` to ask, or None (switched off, not running, or serving another index)."""
    url = (s.api_url or "").strip()
    if url.lower() in ("off", "none", "no", "false", "0"):
        return None
    explicit = bool(url)
    url = url or DEFAULT_URL
    try:
        response = httpx.get(f"{url.rstrip('/')}/health", timeout=PROBE_TIMEOUT)
        health = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError):
        health = {}
    if not health.get("ok"):
        if explicit:
            logger.warning("no kup api answers at %s (KUP_API_URL); working in this process", url)
        return None
    if not explicit and not _proves_it_is_ours(url, s, health):
        return None
    return ApiClient(url, s.secret("api_key"))


def _proves_it_is_ours(url: str, s: Settings, health: dict) -> bool:
    """Whether the server at the default address serves this index and proves it holds this data directory's
    identity: anyone may listen on 127.0.0.1:8077, and nothing secret (the key, a question) goes to a server
    that has not proved it is ours."""
    if health.get("pipeline") != pipeline_id(s):
        return False  # another data directory's server (or an older kup api)
    identity = api_identity(s.data_path)
    if identity is None:
        return False
    challenge = secrets.token_hex(16)
    try:
        reply = httpx.get(f"{url.rstrip('/')}/health", params={"challenge": challenge}, timeout=PROBE_TIMEOUT).json()
    except (httpx.HTTPError, ValueError):
        return False
    # answering.api.identity_proof computes the same (importing answering would load torch into `kup search`)
    expected = hmac.new(identity, challenge.encode(), hashlib.sha256).hexdigest()
    if hmac.compare_digest(str(reply.get("proof", "")), expected):
        return True
    logger.warning("the server at %s did not prove it is this data directory's kup api; working in this process", url)
    return False

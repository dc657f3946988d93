"""The HTTP API over real HTTP: one set of request limits and one error-to-status mapping for /search and /ask."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn

from answering import Answerer, LanguageModel
from answering.api import create_app, http_status
from answering.api_guards import ApiGuards
from answering.requests import MAX_RECENT_DAYS, recent_since
from errors import InputError, KupError, StoreError
from indexing import EdgeStore, QdrantStore


@contextmanager
def serving(answerer: Answerer, guards: ApiGuards | None = None) -> Iterator[str]:
    """The API under uvicorn on a free localhost port, as `kup api` serves it."""
    with serving_app(create_app(answerer, guards)) as url:
        yield url


@contextmanager
def serving_app(app, config: Callable[[int], uvicorn.Config] | None = None) -> Iterator[str]:
    """``app`` under uvicorn in a thread on a free localhost port (``config(port)``: uvicorn configured otherwise);
    its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    made = config(port) if config else uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(made)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_domain_errors_map_to_one_status_each() -> None:
    assert http_status(InputError("bad flag")) == 422
    assert http_status(StoreError("index is busy")) == 503
    assert http_status(KupError("no passages match")) == 503


def test_recent_days_become_a_moment_and_absurd_spans_are_refused() -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    assert recent_since(None, now) is None
    assert recent_since(1.5, now) == now - timedelta(hours=36)
    assert recent_since(MAX_RECENT_DAYS, now) < now
    for bad in (0, -1, MAX_RECENT_DAYS + 1, 1e12, float("inf"), float("nan")):
        with pytest.raises(InputError, match="--recent must be a positive number of days"):
            recent_since(bad, now)


def test_search_errors_over_http(filled, dense, sparse, tmp_path) -> None:
    lm = LanguageModel(tmp_path / "data", None)  # never loaded: /search does not generate
    with serving(Answerer(filled, dense, sparse, lm)) as url:
        found = httpx.post(f"{url}/search", json={"query": "harbour pier", "k": 1, "recent_days": 36500})
        assert found.status_code == 200 and found.json()["hits"][0]["title"] == "Harbour reopens"
        assert len(found.json()["hits"]) == 1 and "notes" not in found.json()
        blank = httpx.post(f"{url}/search", json={"query": "   "})
        assert blank.status_code == 422 and blank.json()["detail"].startswith("the query is empty")
        assert httpx.post(f"{url}/search", json={"query": "x", "k": 101}).status_code == 422
        assert httpx.post(f"{url}/search", json={"query": "x", "limit": 101}).status_code == 422
        both = httpx.post(f"{url}/search", json={"query": "x", "k": 2, "limit": 3})
        assert both.status_code == 422 and "not both" in str(both.json())
        assert httpx.post(f"{url}/search", json={"query": "x", "recent_days": 1e12}).status_code == 422
        assert httpx.post(f"{url}/search", json={"query": "x", "recent_days": 0}).status_code == 422

    down = QdrantStore(f"http://127.0.0.1:{_closed_port()}", "kup", timeout=2)
    with serving(Answerer(down, dense, sparse, lm)) as url:
        unavailable = httpx.post(f"{url}/search", json={"query": "harbour"}, timeout=30)
        assert unavailable.status_code == 503 and "Qdrant" in unavailable.json()["detail"]


def test_the_old_limit_still_works_with_a_note_and_an_unknown_source_is_named(filled, dense, sparse, tmp_path) -> None:
    lm = LanguageModel(tmp_path / "data", None)
    app = create_app(Answerer(filled, dense, sparse, lm), known_sources=lambda: {"coastal-news", "wire"})
    with serving_app(app) as url:
        old = httpx.post(f"{url}/search", json={"query": "harbour pier", "limit": 2}).json()
        assert len(old["hits"]) == 2 and old["notes"] == ["`limit` is deprecated: use `k`, as /ask and the CLI do"]
        for path, body in (("/search", {"query": "harbour"}), ("/ask", {"question": "When?"})):
            typo = httpx.post(f"{url}{path}", json={**body, "sources": ["coastal-new"]}, timeout=30)
            assert typo.status_code == 422
            assert typo.json()["detail"] == "unknown source 'coastal-new'; known sources: coastal-news, wire"
        known = httpx.post(f"{url}/search", json={"query": "harbour", "sources": ["wire"]})
        assert known.status_code == 200


def test_ask_errors_over_http(answerer, tmp_path) -> None:
    with serving(answerer) as url:
        assert httpx.post(f"{url}/ask", json={"question": "x", "k": 21}).status_code == 422
        assert httpx.post(f"{url}/ask", json={"question": "x", "recent_days": 1e12}).status_code == 422
        blank = httpx.post(f"{url}/ask", json={"question": "   "}, timeout=60)
        assert blank.status_code == 422 and "empty" in blank.json()["detail"]
        answerer.store = EdgeStore(tmp_path / "empty")
        nothing = httpx.post(f"{url}/ask", json={"question": "Anything new?"}, timeout=60)
        assert nothing.status_code == 503 and "run `kup refresh` first" in nothing.json()["detail"]

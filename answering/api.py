"""A small HTTP API for downstream applications: /search and /ask, JSON in and out, with an OpenAPI schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import FastAPI, HTTPException

from answering.requests import AskRequest, SearchRequest, recent_since
from answering.service import Answerer
from errors import InputError, KupError
from indexing import search

T = TypeVar("T")


def http_status(exc: KupError) -> int:
    """A domain error as an HTTP status: the request's own fault (422), or the service cannot answer now (503)."""
    return 422 if isinstance(exc, InputError) else 503


def _answering(call: Callable[[], T]) -> T:
    """Run ``call``; a domain error becomes an HTTP error with its one sentence as the detail."""
    try:
        return call()
    except KupError as exc:
        raise HTTPException(status_code=http_status(exc), detail=str(exc)) from None


def create_app(answerer: Answerer) -> FastAPI:
    app = FastAPI(title="kup", summary="Search and answer from a continuously refreshed index.", version="0.1.0")

    @app.get("/health")
    def health() -> dict:
        return {"ok": True}

    @app.post("/search")
    def search_passages(request: SearchRequest) -> dict:
        result = _answering(
            lambda: search(
                answerer.store,
                answerer.dense,
                answerer.sparse,
                request.query,
                limit=request.limit,
                sources=request.sources,
                published_after=recent_since(request.recent_days),
            )
        )
        return {
            "query": result.query,
            "search_ms": round(result.search_ms, 2),
            "hits": [{"score": h.score, **h.payload} for h in result.hits],
        }

    @app.post("/ask")
    def ask(request: AskRequest) -> dict:
        answer = _answering(
            lambda: answerer.answer(
                request.question,
                mode=request.mode,
                k=request.k,
                recent_days=request.recent_days,
                sources=request.sources,
            )
        )
        return answer.as_dict()

    return app

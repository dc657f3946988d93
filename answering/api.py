"""A small HTTP API for downstream applications: /search and /ask, JSON in and out, with an OpenAPI schema.

Every request passes the guards (``answering.api_guards``) first; every bad value is a 4xx that names the
field without echoing what was sent; every error detail has its credentials masked.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from answering.api_guards import RETRY_AFTER_S, ApiGuards, GenerationGate, GuardMiddleware
from answering.requests import AskRequest, SearchRequest, check_sources, recent_since
from answering.service import Answerer
from errors import InputError, KupError
from errors.redact import mask_text
from indexing import Catalog, search

T = TypeVar("T")
MAX_ERRORS_SHOWN = 10  # validation problems listed per response
MAX_FIELD_CHARS = 100  # a location or message longer than this is cut


def identity_proof(identity: bytes, challenge: str) -> str:
    """What a server holding ``identity`` answers to ``challenge`` (HMAC-SHA256, hex)."""
    return hmac.new(identity, challenge.encode(), hashlib.sha256).hexdigest()


def http_status(exc: KupError) -> int:
    """A domain error as an HTTP status: the request's own fault (422), or the service cannot answer now (503)."""
    return 422 if isinstance(exc, InputError) else 503


def _answering(call: Callable[[], T]) -> T:
    """Run ``call``; a domain error becomes an HTTP error with its one sentence, credentials masked, as the detail."""
    try:
        return call()
    except KupError as exc:
        raise HTTPException(status_code=http_status(exc), detail=mask_text(str(exc))) from None


def _short(value: object) -> str | int:
    if isinstance(value, int):
        return value
    text = str(value)
    return text if len(text) <= MAX_FIELD_CHARS else text[:MAX_FIELD_CHARS] + "..."


async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """Where each problem is and what is wrong, never the value sent (it may be megabytes, or a secret)."""
    problems = [
        {"loc": [_short(part) for part in error.get("loc", ())], "msg": _short(error.get("msg", "invalid"))}
        for error in exc.errors()[:MAX_ERRORS_SHOWN]
    ]
    return JSONResponse({"detail": problems}, status_code=422)


def create_app(
    answerer: Answerer,
    guards: ApiGuards | None = None,
    *,
    pipeline: str | None = None,
    catalog: Catalog | None = None,
    overdue_after: float | None = None,
    known_sources: Callable[[], set[str]] | None = None,
    identity: bytes | None = None,
) -> FastAPI:
    """``pipeline`` (an opaque id of the index served) is shown by /health, so a local ``kup search`` can tell
    that this server answers for its own index before asking it instead of loading the model itself."""
    guards = guards or ApiGuards()
    app = FastAPI(title="kup", summary="Search and answer from a continuously refreshed index.", version="0.1.0")
    app.add_middleware(GuardMiddleware, guards=guards)
    app.add_exception_handler(RequestValidationError, _invalid)
    gate = GenerationGate(guards.generate_at_once, guards.generate_waiting)
    app.state.generation_gate = gate
    answerer.store.keep_open()  # a served process searches at engine speed; writers elsewhere still get the index

    if catalog is not None:  # Prometheus text, read from the catalog at scrape time (answering.metrics)
        from answering.metrics import metrics_route

        app.add_api_route("/metrics", metrics_route(catalog, overdue_after), methods=["GET"], include_in_schema=False)

    @app.get("/health")
    def health(challenge: Annotated[str | None, Query(max_length=128)] = None) -> dict:
        """Alive; with ``identity`` (a secret in the data directory, owner-only) it answers a caller's ``challenge``
        with its HMAC, so a local CLI knows this is its own server before it sends a key or a question."""
        out: dict = {"ok": True, "pipeline": pipeline} if pipeline else {"ok": True}
        if identity is not None and challenge:
            out["proof"] = identity_proof(identity, challenge)
        return out

    def known() -> set[str] | None:
        return known_sources() if known_sources else None

    @app.post("/search")
    def search_passages(request: SearchRequest) -> dict:
        _answering(lambda: check_sources(request.sources, known()))
        result = _answering(
            lambda: search(
                answerer.store,
                answerer.dense,
                answerer.sparse,
                request.query,
                limit=request.k,
                sources=request.sources,
                published_after=recent_since(request.recent_days),
            )
        )
        reply = {
            "query": result.query,
            "embed_ms": round(result.embed_ms, 2),
            "search_ms": round(result.search_ms, 2),
            "hits": [{"score": h.score, **h.payload} for h in result.hits],
        }
        return {**reply, "notes": request.notes} if request.notes else reply

    @app.post("/ask")
    def ask(request: AskRequest) -> dict:
        _answering(lambda: check_sources(request.sources, known()))
        try:
            with gate.admit():
                answer = _answering(
                    lambda: answerer.answer(
                        request.question,
                        mode=request.mode,
                        k=request.k,
                        recent_days=request.recent_days,
                        sources=request.sources,
                        as_of=request.as_of,
                    )
                )
        except GenerationGate.Busy:
            raise HTTPException(
                status_code=503,
                detail="too many questions are being answered or waiting; retry shortly",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            ) from None
        return answer.as_dict()

    return app

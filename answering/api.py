"""A small HTTP API for downstream applications: /search and /ask, JSON in and out, with an OpenAPI schema.

Every request passes the guards (``answering.api_guards``) first; every bad value is a 4xx that names the
field without echoing what was sent; every error detail has its credentials masked.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from answering.answer import Answer
from answering.api_guards import RETRY_AFTER_S, ApiGuards, GenerationGate, GuardMiddleware
from answering.chat import MODELS, ChatRequest, Completion, error_body, error_kind, models_list, run_streaming
from answering.requests import AskRequest, SearchRequest, check_sources, run_search
from answering.service import Answerer
from errors import InputError, KupError
from errors.redact import mask_text
from indexing import Catalog

log = logging.getLogger(__name__)
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


def _openai(request: Request) -> bool:
    """Whether the request came to an OpenAI-compatible route (its errors take OpenAI's shape)."""
    return request.url.path.startswith("/v1/")


async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Where each problem is and what is wrong, never the value sent (it may be megabytes, or a secret)."""
    problems = [
        {"loc": [_short(part) for part in error.get("loc", ())], "msg": _short(error.get("msg", "invalid"))}
        for error in exc.errors()[:MAX_ERRORS_SHOWN]
    ]
    if _openai(request):  # the first problem, its field as a dotted path: "messages.3.content"
        where = ".".join(str(part) for part in problems[0]["loc"] if part != "body") if problems else None
        what = str(problems[0]["msg"]).removeprefix("Value error, ") if problems else ""
        message = f"{where}: {what}" if where else "the request body is not valid JSON"
        return JSONResponse(error_body(message, "invalid_request_error", param=where or None), status_code=400)
    return JSONResponse({"detail": problems}, status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """FastAPI's own answer, except on the OpenAI-compatible routes: OpenAI's error shape there."""
    if not _openai(request):
        return await http_exception_handler(request, exc)
    detail = exc.detail if isinstance(exc.detail, str) else "the request was refused"
    status = 400 if exc.status_code == 422 else exc.status_code
    return JSONResponse(error_body(detail, error_kind(status)), status_code=status, headers=exc.headers)


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
    app.add_exception_handler(StarletteHTTPException, _http_error)
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
        result = _answering(lambda: run_search(answerer.store, answerer.dense, answerer.sparse, request))
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
                answer = _answering(lambda: answerer.answer(request.question, **request.options()))
        except GenerationGate.Busy:
            raise _busy() from None
        return answer.as_dict()

    add_chat_routes(app, answerer, gate, known)
    return app


def _busy() -> HTTPException:
    return HTTPException(
        status_code=503,
        detail="too many questions are being answered or waiting; retry shortly",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def add_chat_routes(
    app: FastAPI, answerer: Answerer, gate: GenerationGate, known: Callable[[], set[str] | None]
) -> None:
    """``/v1/models`` and ``/v1/chat/completions`` (``answering.chat``), behind the same guards and queue."""
    started = int(time.time())

    @app.get("/v1/models")
    def models() -> dict:
        return models_list(started)

    @app.post("/v1/chat/completions", response_model=None)
    def chat_completions(request: ChatRequest) -> dict | Response:
        if request.model not in MODELS:
            named = _short(request.model)
            raise HTTPException(404, f"the model {named!r} does not exist; use one of {', '.join(MODELS)}")
        options = request.kup
        _answering(lambda: check_sources(options.sources, known()))
        completion = Completion(request)

        def work(on_text: Callable[[str], None] | None) -> Answer:
            with gate.admit():
                return answerer.answer(
                    request.question,
                    mode=MODELS[request.model],
                    k=options.k,
                    recent_days=options.recent_days,
                    sources=options.sources,
                    as_of=options.as_of,
                    follows=request.follows,
                    max_new_tokens=request.answer_tokens,
                    on_text=on_text,
                )

        if not request.stream:
            try:
                return completion.whole(_answering(lambda: work(None)))
            except GenerationGate.Busy:
                raise _busy() from None
        first, rest = run_streaming(work, _stream_failure)
        if first[0] == "error":
            status, message = first[1]
            headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
            raise HTTPException(status, message, headers=headers)
        return StreamingResponse(completion.events(first, rest), media_type="text/event-stream")


def _stream_failure(exc: BaseException) -> tuple[int, str]:
    """A streamed answer's failure as a status and one sentence (credentials masked)."""
    if isinstance(exc, GenerationGate.Busy):
        return 503, str(_busy().detail)
    if isinstance(exc, KupError):
        return http_status(exc), mask_text(str(exc))
    log.error("a streamed answer failed: %s", mask_text(f"{type(exc).__name__}: {exc}"))
    return 500, "the answer failed on the server; its log says why"

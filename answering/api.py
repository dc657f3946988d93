"""A small HTTP API for downstream applications: /search and /ask, JSON in and out, with an OpenAPI schema."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from answering.service import Answerer
from errors import InputError, KupError
from indexing import search


class SearchRequest(BaseModel):
    query: Annotated[str, Field(min_length=1, max_length=2000)]
    limit: Annotated[int, Field(ge=1, le=100)] = 5
    sources: list[str] | None = None
    recent_days: Annotated[float, Field(gt=0)] | None = None


class AskRequest(BaseModel):
    question: Annotated[str, Field(min_length=1, max_length=8000)]
    mode: Literal["prompt", "rag-token", "closed-book"] = "prompt"
    k: Annotated[int, Field(ge=1, le=20)] = 5
    recent_days: Annotated[float, Field(gt=0)] | None = None
    sources: list[str] | None = None


def create_app(answerer: Answerer) -> FastAPI:
    app = FastAPI(title="kup", summary="Search and answer from a continuously refreshed index.", version="0.1.0")

    @app.get("/health")
    def health() -> dict:
        return {"ok": True}

    @app.post("/search")
    def search_passages(request: SearchRequest) -> dict:
        from datetime import UTC, datetime, timedelta

        since = datetime.now(UTC) - timedelta(days=request.recent_days) if request.recent_days else None
        try:
            result = search(
                answerer.store,
                answerer.dense,
                answerer.sparse,
                request.query,
                limit=request.limit,
                sources=request.sources,
                published_after=since,
            )
        except InputError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        except KupError as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        return {
            "query": result.query,
            "search_ms": round(result.search_ms, 2),
            "hits": [{"score": h.score, **h.payload} for h in result.hits],
        }

    @app.post("/ask")
    def ask(request: AskRequest) -> dict:
        try:
            answer = answerer.answer(
                request.question,
                mode=request.mode,
                k=request.k,
                recent_days=request.recent_days,
                sources=request.sources,
            )
        except InputError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        except KupError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return answer.as_dict()

    return app

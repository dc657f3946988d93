"""What a search or a question may ask for: one set of limits for the HTTP API, the CLI and the answerer.

The HTTP API validates its bodies with the models below; the CLI checks its flags with the same
helpers, so a limit changes in one place and every door refuses the same requests in the same words.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from errors import InputError
from indexing.search import MAX_QUERY_CHARS

Mode = Literal["prompt", "rag-token", "closed-book"]
MODES: tuple[str, ...] = ("prompt", "rag-token", "closed-book")
MAX_SEARCH_LIMIT = 100  # passages one search returns at most (indexing.search refuses more)
MAX_K = 20  # passages an answer is built from at most: more will not fit a small model's context
MAX_QUESTION_CHARS = 8000  # longer questions leave no room for passages in any model we serve
MAX_RECENT_DAYS = 36_600  # a century: "recent" beyond that is a typo, and dates before year 1 do not exist


class SearchRequest(BaseModel):
    query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)]
    limit: Annotated[int, Field(ge=1, le=MAX_SEARCH_LIMIT)] = 5
    sources: list[str] | None = None
    recent_days: Annotated[float, Field(gt=0, le=MAX_RECENT_DAYS)] | None = None


class AskRequest(BaseModel):
    question: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)]
    mode: Mode = "prompt"
    k: Annotated[int, Field(ge=1, le=MAX_K)] = 5
    recent_days: Annotated[float, Field(gt=0, le=MAX_RECENT_DAYS)] | None = None
    sources: list[str] | None = None


def require_query(query: str) -> str:
    """The query without surrounding blanks; an empty one is refused."""
    query = (query or "").strip()
    if not query:
        raise InputError("the query is empty; pass some words to search for")
    return query


def recent_since(days: float | None, now: datetime | None = None) -> datetime | None:
    """The moment ``days`` before now (None when no window is asked for); non-positive or absurd spans are refused."""
    if days is None:
        return None
    if not 0 < days <= MAX_RECENT_DAYS:
        raise InputError(f"--recent must be a positive number of days, at most {MAX_RECENT_DAYS}")
    return (now or datetime.now(UTC)) - timedelta(days=days)

"""What a search or a question may ask for: one set of limits for the HTTP API, the CLI and the answerer.

The HTTP API validates its bodies with the models below; the CLI checks its flags with the same
helpers, so a limit changes in one place and every door refuses the same requests in the same words.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from errors import InputError
from indexing.search import MAX_QUERY_CHARS, SearchResult, search
from indexing.search import check_sources as check_sources  # the API and the CLI check sources here too

Mode = Literal["prompt", "rag-token", "closed-book"]
MODES: tuple[str, ...] = ("prompt", "rag-token", "closed-book")
MAX_SEARCH_LIMIT = 100  # passages one search returns at most (indexing.search refuses more)
MAX_K = 20  # passages an answer is built from at most: more will not fit a small model's context
MAX_QUESTION_CHARS = 8000  # longer questions leave no room for passages in any model we serve
MAX_RECENT_DAYS = 36_600  # a century: "recent" beyond that is a typo, and dates before year 1 do not exist
MAX_SOURCES = 100  # sources one request may name
MAX_SOURCE_CHARS = 200  # longer than any source name sources.yaml accepts


def _encodable(text: str) -> str:
    """Text that encodes as UTF-8 (JSON may carry lone surrogates, which no tokenizer or store accepts)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return text


Text = Annotated[str, AfterValidator(_encodable)]
SourceName = Annotated[Text, Field(min_length=1, max_length=MAX_SOURCE_CHARS)]
Sources = Annotated[list[SourceName], Field(max_length=MAX_SOURCES)]
RecentDays = Annotated[float, Field(gt=0, le=MAX_RECENT_DAYS)]


def check_question(question: str | None, mode: str = "prompt", k: int = 5) -> str:
    """The question without surrounding blanks, or one sentence on what to change: checked before any model loads."""
    question = (question or "").strip()
    if not question:
        raise InputError("the question is empty; ask something")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is {len(question):,} characters long; keep it under {MAX_QUESTION_CHARS:,}")
    if mode not in MODES:
        raise InputError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    if not 1 <= k <= MAX_K:
        raise InputError(f"--k must be between 1 and {MAX_K}")
    return question


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field ("recent") is refused, not silently ignored

    query: Annotated[Text, Field(min_length=1, max_length=MAX_QUERY_CHARS)]
    k: Annotated[int, Field(ge=1, le=MAX_SEARCH_LIMIT)] = 5  # passages: the name /ask and the CLI use
    limit: Annotated[int | None, Field(ge=1, le=MAX_SEARCH_LIMIT, deprecated="use k, as /ask and the CLI do")] = None
    sources: Sources | None = None
    recent_days: RecentDays | None = None

    @model_validator(mode="after")
    def _one_count(self) -> SearchRequest:
        limit = self.__dict__["limit"]  # read without the deprecation warning meant for callers
        if limit is not None:
            if "k" in self.model_fields_set:
                raise ValueError("give k, or the deprecated limit, not both")
            self.__dict__["k"] = limit
        return self

    @property
    def notes(self) -> list[str]:
        return ["`limit` is deprecated: use `k`, as /ask and the CLI do"] if self.__dict__["limit"] is not None else []


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Annotated[Text, Field(min_length=1, max_length=MAX_QUESTION_CHARS)]
    mode: Mode = "prompt"
    k: Annotated[int, Field(ge=1, le=MAX_K)] = 5
    recent_days: RecentDays | None = None
    sources: Sources | None = None
    as_of: AwareDatetime | None = None  # answer as on that moment: nothing published later

    def options(self) -> dict:
        """What the request asks of ``Answerer.answer`` besides the question (``/ask`` and the MCP ``ask`` tool)."""
        return {"mode": self.mode, "k": self.k, "recent_days": self.recent_days, "sources": self.sources,
                "as_of": self.as_of}  # fmt: skip


def recent_since(days: float | None, now: datetime | None = None) -> datetime | None:
    """The moment ``days`` before now (None when no window is asked for); non-positive or absurd spans are refused."""
    if days is None:
        return None
    if not 0 < days <= MAX_RECENT_DAYS:
        raise InputError(f"--recent must be a positive number of days, at most {MAX_RECENT_DAYS}")
    return (now or datetime.now(UTC)) - timedelta(days=days)


def run_search(store, dense, sparse, request: SearchRequest) -> SearchResult:
    """The search a ``SearchRequest`` asks for (``/search`` and the MCP ``search`` tool)."""
    return search(
        store,
        dense,
        sparse,
        request.query,
        limit=request.k,
        sources=request.sources,
        published_after=recent_since(request.recent_days),
    )

"""kup as a model: the OpenAI chat-completions wire format (``POST /v1/chat/completions``, ``GET /v1/models``).

A chat front end or SDK that speaks OpenAI's protocol asks kup as it would ask any model:

- **the question** is the last message, which must be the user's; the user's turn before it, when there is one, is
  searched for too, so a follow-up ("and when does it open?") finds what it refers to. System and assistant turns
  are accepted and not obeyed: kup's own instructions stand, and what a client sends is data, like retrieved text.
- **the model** names the answer mode: ``kup`` (passages in the prompt), ``kup-rag-token`` and ``kup-closed-book``.
- **the answer** is the text with its ``[n]`` markers, followed by a Markdown "Sources" list for clients that show
  only text; the whole answer (citations, passages, notes, adapter, timings) comes back in the extra field ``kup``,
  and the cited URLs in ``citations`` (the field other retrieval-augmented APIs use).
- **kup's own options** (``k``, ``recent_days``, ``sources``, ``as_of``) go in an extra ``kup`` object of the
  request (``extra_body={"kup": {...}}`` in the ``openai`` SDK).

Decoding is kup's: greedy, so ``temperature``, ``top_p``, ``seed`` and the penalties are accepted and change
nothing. What the protocol has and kup does not do (tools, images, ``n`` > 1, log-probabilities, JSON mode) is a
400 naming the field, in OpenAI's error shape, like every error of these routes.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from answering.answer import Answer, Citation
from answering.requests import MAX_K, MAX_QUESTION_CHARS, RecentDays, Sources, Text

MODELS: dict[str, str] = {"kup": "prompt", "kup-rag-token": "rag-token", "kup-closed-book": "closed-book"}
MAX_TURNS = 100  # messages one request may carry: a conversation longer than this is not read by a small model
MAX_COMPLETION_TOKENS = 4096  # what any request may ask for; the server's own answer length caps it further
MAX_PARTS = 20  # content parts of one message
ROLES = ("system", "developer", "user", "assistant")
STREAM_FIRST_EVENT_S = 900.0  # the longest a streamed answer waits for its first piece (a queued CPU generation)

Model = Annotated[str, Field(min_length=1, max_length=100)]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # "name" and other fields clients send are not needed

    role: Annotated[str, Field(max_length=32)]
    content: (
        Annotated[Text, Field(max_length=MAX_QUESTION_CHARS)]
        | Annotated[list[dict[str, Any]], Field(max_length=MAX_PARTS)]
        | None
    ) = None
    tool_calls: list[Any] | None = None

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"must be one of {', '.join(ROLES)} (kup runs no tools)")
        return role

    @field_validator("tool_calls")
    @classmethod
    def _no_tool_calls(cls, calls: list[Any] | None) -> None:
        if calls:
            raise ValueError("tool calls are not supported: kup runs no tools")
        return None

    @property
    def text(self) -> str:
        """The message's text: a string, or its text parts joined (other parts are refused by validation)."""
        if isinstance(self.content, list):
            return "\n".join(part["text"] for part in self.content)
        return self.content or ""

    @field_validator("content")
    @classmethod
    def _text_parts_only(cls, content: str | list[dict[str, Any]] | None) -> str | list[dict[str, Any]] | None:
        if isinstance(content, list):
            for part in content:
                if part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise ValueError("only text content is supported (no images, audio or files)")
            if sum(len(part["text"]) for part in content) > MAX_QUESTION_CHARS:
                raise ValueError(f"a message's text must stay under {MAX_QUESTION_CHARS:,} characters")
        return content


class KupOptions(BaseModel):
    """kup's own options, in the request's extra ``kup`` object."""

    model_config = ConfigDict(extra="forbid")

    k: Annotated[int, Field(ge=1, le=MAX_K)] = 5
    recent_days: RecentDays | None = None
    sources: Sources | None = None
    as_of: AwareDatetime | None = None
    sources_in_text: bool = True  # the Markdown "Sources" list after the answer (kup ask prints its own)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # user, seed, metadata, ...: sent by clients, not needed here

    model: Model
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=MAX_TURNS)]
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    max_tokens: Annotated[int, Field(ge=1, le=MAX_COMPLETION_TOKENS)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=MAX_COMPLETION_TOKENS)] | None = None
    n: Annotated[int, Field(ge=1, le=1, description="only one answer per request")] = 1
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    logprobs: Literal[False] | None = None
    tools: Annotated[list[Any], Field(max_length=0)] | None = None
    functions: Annotated[list[Any], Field(max_length=0)] | None = None
    response_format: dict[str, Any] | None = None
    kup: KupOptions = KupOptions()

    @field_validator("response_format")
    @classmethod
    def _text_format(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type") != "text":
            raise ValueError("only the text response format is supported")
        return value

    @field_validator("messages")
    @classmethod
    def _ends_with_a_question(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if messages[-1].role != "user" or not messages[-1].text.strip():
            raise ValueError("the last message must be the user's question")
        return messages

    @property
    def question(self) -> str:
        return self.messages[-1].text

    @property
    def follows(self) -> str | None:
        """The user's turn before the question, if any."""
        earlier = [m.text for m in self.messages[:-1] if m.role == "user" and m.text.strip()]
        return earlier[-1] if earlier else None

    @property
    def answer_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


def models_list(created: int) -> dict[str, Any]:
    """``GET /v1/models``: the answer modes, as models."""
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": created, "owned_by": "kup"} for name in MODELS],
    }


def error_body(message: str, kind: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


ERROR_KINDS = {401: "authentication_error", 403: "permission_error", 404: "not_found_error", 429: "rate_limit_error"}


def error_kind(status: int) -> str:
    """OpenAI's error ``type`` for an HTTP status."""
    return ERROR_KINDS.get(status, "server_error" if status >= 500 else "invalid_request_error")


def sources_markdown(citations: list[Citation]) -> str:
    """The cited sources as a Markdown list after the answer (empty when nothing is cited)."""
    if not citations:
        return ""
    lines = []
    for c in citations:
        title = (c.title or "(untitled)").replace("[", "(").replace("]", ")")
        link = f"[{title}]({c.url})" if c.url else title
        lines.append(f"[{c.number}] {link}" + (f" ({c.published[:10]})" if c.published else ""))
    return "\n\nSources:\n" + "\n".join(lines)


def usage(answer: Answer) -> dict[str, int]:
    """Tokens generated (and read, where the answerer counted them)."""
    generated = int(answer.timings.get("generated_tokens", 0))
    read = int(answer.timings.get("prompt_tokens", 0))
    return {"prompt_tokens": read, "completion_tokens": generated, "total_tokens": read + generated}


class Completion:
    """One request's completion id, time and model, and the objects it is answered with."""

    def __init__(self, request: ChatRequest) -> None:
        self.request = request
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())

    def _extra(self, answer: Answer) -> dict[str, Any]:
        return {"citations": [c.url for c in answer.citations if c.url], "kup": answer.as_dict()}

    def _text(self, answer: Answer) -> str:
        return answer.text + (sources_markdown(answer.citations) if self.request.kup.sources_in_text else "")

    def whole(self, answer: Answer) -> dict[str, Any]:
        """The answer as one ``chat.completion`` object."""
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.request.model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": self._text(answer)}, "finish_reason": "stop"}
            ],
            "usage": usage(answer),
            **self._extra(answer),
        }

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        """One server-sent event of a streamed answer."""
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.request.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n"

    def events(self, first: tuple[str, Any], rest: queue.Queue) -> Iterator[str]:
        """The stream: a role chunk, a chunk per piece of text, the Sources list, the final chunk carrying the
        whole answer in ``kup``, then ``[DONE]``; a failure after the first piece is an ``error`` event."""
        yield self.chunk({"role": "assistant", "content": ""})
        event = first
        while True:
            kind, value = event
            if kind == "text":
                yield self.chunk({"content": value})
            elif kind == "done":
                if self.request.kup.sources_in_text and value.citations:
                    yield self.chunk({"content": sources_markdown(value.citations)})
                yield self.chunk({}, "stop", **self._extra(value))
                if self.request.include_usage:
                    body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                            "model": self.request.model, "choices": [], "usage": usage(value)}  # fmt: skip
                    yield f"data: {json.dumps(body)}\n\n"
                break
            else:  # ("error", (status, message))
                yield f"data: {json.dumps(error_body(value[1], error_kind(value[0])))}\n\n"
                break
            event = rest.get()
        yield "data: [DONE]\n\n"


def run_streaming(work: Callable[[Callable[[str], None]], Answer], failure: Callable[[BaseException], tuple]):
    """Run ``work(on_text)`` on a thread; its pieces, then ``("done", answer)`` or ``("error", (status, message))``
    as ``failure`` names the exception, arrive on the queue returned with the first event (waited for here, so a
    request refused before any text is an ordinary HTTP error, not a stream that fails)."""
    events: queue.Queue = queue.Queue()

    def run() -> None:
        try:
            events.put(("done", work(lambda piece: events.put(("text", piece)))))
        except BaseException as exc:  # noqa: BLE001 - every outcome reaches the client as one sentence
            events.put(("error", failure(exc)))

    threading.Thread(target=run, name="kup-chat-stream", daemon=True).start()
    try:
        first = events.get(timeout=STREAM_FIRST_EVENT_S)
    except queue.Empty:
        first = ("error", (503, "the answer did not start in time; retry shortly"))
    return first, events


def delta_content(event: dict[str, Any]) -> Any:
    """The text a streamed ``chat.completion.chunk`` adds (None for a role, usage or final chunk)."""
    choices = event.get("choices") or []
    return choices[0].get("delta", {}).get("content") if choices else None


class StreamTooLarge(ValueError):
    """A server-sent event stream passed its byte or time bound."""


def sse_events(chunks: Iterator[bytes], *, max_bytes: int, deadline: float | None = None) -> Iterator[dict[str, Any]]:
    """The JSON events of an OpenAI-style server-sent event stream (``data: {...}`` lines up to ``data: [DONE]``),
    from raw byte ``chunks``: at most ``max_bytes`` read, and not past ``deadline`` (``time.monotonic()``), even
    when a line never ends. A line that is not JSON raises ``ValueError``."""
    buffer = b""
    read = 0
    for chunk in chunks:
        read += len(chunk)
        if read > max_bytes:
            raise StreamTooLarge(f"the stream passed {max_bytes:,} bytes")
        if deadline is not None and time.monotonic() > deadline:
            raise StreamTooLarge("the stream went on past its time")
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8").strip()
            if not line.startswith("data:"):
                continue  # comments, event names, blank separators
            data = line.removeprefix("data:").strip()
            if data == "[DONE]":
                return
            yield json.loads(data)

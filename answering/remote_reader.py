"""Any OpenAI-compatible model server as the reader (vLLM, llama.cpp's server, Ollama, TGI, another `kup api`).

With ``KUP_READER_URL`` set, kup still retrieves, widens, orders and fits the passages and cites the answer; only the
writing of the answer goes to the server, as a streamed chat completion of kup's own system and user messages. What
the server sends back is outside input: each read waits at most ``timeout`` seconds, the whole answer at most
``total_timeout``, and at most ``max_bytes`` are read; anything else is one sentence (``ReaderUnavailable``).

The server's tokenizer is not known here, so prompts are budgeted with ``ApproximateTokenizer`` (about four
characters a token, the usual rule for English) against the server model's context (``KUP_READER_CONTEXT_TOKENS``).
Modes that need the reader's token probabilities (``rag-token``, the span copier, multiple-choice scoring) say so:
a chat-completions server gives no full distribution over the next token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import httpx

from answering.chat import StreamTooLarge, delta_content, sse_events
from errors import KupError
from errors.redact import mask_text

CHARS_PER_TOKEN = 4


class ReaderUnavailable(KupError):
    """The reader's server did not answer, or answered something that is not a chat completion."""


class ApproximateTokenizer:
    """A stand-in for the server model's tokenizer: one token per ``CHARS_PER_TOKEN`` characters, and ids that
    decode back to their exact characters (each id packs its characters' code points), so a passage cut to a token
    budget is cut between characters, not rewritten."""

    chat_template = None
    all_special_tokens: list[str] = []
    eos_token_id = None
    pad_token_id = None

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [self._pack(text[i : i + CHARS_PER_TOKEN]) for i in range(0, len(text), CHARS_PER_TOKEN)]}

    @staticmethod
    def _pack(chars: str) -> int:
        value = 0
        for char in reversed(chars):
            value = (value << 21) | (ord(char) + 1)  # code points fit in 21 bits; 0 marks the end
        return value

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        out = []
        for value in ids:
            while value:
                out.append(chr((value & 0x1FFFFF) - 1))
                value >>= 21
        return "".join(out)

    def get_added_vocab(self) -> dict[str, int]:
        return {}


@dataclass(frozen=True)
class RemoteReader:
    """An OpenAI-compatible chat-completions server and the model to ask there."""

    url: str  # the base URL, ending in /v1 as OpenAI's clients expect
    model: str
    api_key: str | None = None
    context_tokens: int = 8192
    timeout: float = 60.0  # the longest the server may stay silent: before its first byte, or between two
    total_timeout: float = 600.0  # the longest one answer may take
    max_bytes: int = 2_000_000  # of the streamed reply

    @cached_property
    def _client(self) -> httpx.Client:
        """One client for every answer: its connections are kept alive, and its TLS context is built once."""
        return httpx.Client(timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)))

    def where(self) -> str:
        return f"the reader at {mask_text(self.url)} (KUP_READER_URL)"

    def stream(self, messages: list[dict[str, str]], max_tokens: int) -> Iterator[str]:
        """The answer to ``messages`` as text pieces (greedy: temperature 0), bounded in time and size."""
        body = {"model": self.model, "messages": messages, "stream": True, "max_tokens": max_tokens, "temperature": 0}
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            with self._client.stream(
                "POST", f"{self.url.rstrip('/')}/chat/completions", json=body, headers=headers
            ) as response:
                if response.status_code != 200:
                    raise ReaderUnavailable(f"{self.where()} answered HTTP {response.status_code}: {_said(response)}")
                deadline = time.monotonic() + self.total_timeout
                for event in sse_events(response.iter_bytes(), max_bytes=self.max_bytes, deadline=deadline):
                    piece = _piece(event, self)
                    if piece:
                        yield piece
        except StreamTooLarge as exc:
            raise ReaderUnavailable(f"{self.where()} sent too much for one answer: {exc}") from None
        except httpx.TimeoutException:
            raise ReaderUnavailable(f"{self.where()} did not answer within {self.timeout:.0f} s") from None
        except httpx.HTTPError as exc:
            raise ReaderUnavailable(f"{self.where()} could not be reached ({type(exc).__name__})") from None
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            raise ReaderUnavailable(f"{self.where()} sent something that is not a chat completion stream") from None


def _piece(event: dict, reader: RemoteReader) -> str | None:
    """The text of one streamed chunk; an error event is one sentence."""
    if "error" in event:
        message = event["error"].get("message") if isinstance(event["error"], dict) else event["error"]
        raise ReaderUnavailable(f"{reader.where()} failed: {mask_text(str(message))[:300]}")
    content = delta_content(event)  # None for a usage-only chunk
    if content is not None and not isinstance(content, str):
        raise ValueError("content is not text")
    return content


def _said(response: httpx.Response) -> str:
    """The first sentence of a refusal's body (OpenAI's error shape or plain text), short and masked."""
    body = b""
    try:
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) >= 4000:
                break
        data = json.loads(body[:4000])
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else data.get("detail")
        text = str(message or data)
    except (ValueError, AttributeError, httpx.HTTPError):
        text = "no explanation"
    return mask_text(" ".join(text.split()))[:300]

"""Token-aware chunking with overlap, whose boundaries depend on content rather than position.

Text is cut into units (paragraphs; sentences or token windows when a paragraph is too long),
and units are packed into chunks of at most ``chunk_tokens`` tokens. Besides the size limit,
a chunk also ends after any unit whose hash falls in a fixed residue class (content-defined
chunking, as in rsync or restic): an edit to one paragraph moves the boundaries only until
the next such unit, so a long article with one edited paragraph keeps all its other chunks
byte-identical, and only those one or two chunks need embedding again.

The defaults (200-token bodies, 32 tokens of overlap, a boundary after every third unit on average once
a chunk holds a quarter of its budget, the title before each chunk in ``embed_text``) were kept by
measurement (``bench/chunking.py`` on the hard news set): the leaner settings embed fewer tokens but
retrieve worse. Without overlap, hit@1 falls and one relevant question's best passage drops under the
answerer's relevance cut-off; larger chunks with a stricter boundary rule and no overlap lose hit@1 and
hit@5; without the title, hit@5 falls. The same benchmark counts the chunks one edited paragraph changes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

_PARAGRAPHS = re.compile(r"\n\s*\n|\n")
_SENTENCES = re.compile(r"(?<=[.!?。！？])\s+")


class Tokenizer(Protocol):
    def __call__(self, texts: list[str], **kwargs): ...


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str  # what is stored and shown: the overlap from the previous chunk, then this chunk's body
    tokens: int

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:32]


@dataclass
class _Unit:
    text: str
    tokens: int
    offsets: list[tuple[int, int]]


def _boundary(text: str, modulus: int) -> bool:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big") % modulus == 0


class Chunker:
    """Split documents into overlapping, content-defined chunks measured in the embedder's tokens."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        chunk_tokens: int = 200,
        overlap_tokens: int = 32,
        min_tokens: int | None = None,
        boundary_modulus: int = 3,
    ) -> None:
        if chunk_tokens < 16:
            raise ValueError("chunk_tokens must be at least 16")
        if not 0 <= overlap_tokens < chunk_tokens:
            raise ValueError("overlap_tokens must be between 0 and chunk_tokens")
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self.min_tokens = chunk_tokens // 4 if min_tokens is None else min_tokens
        self.boundary_modulus = boundary_modulus

    def _measure(self, texts: list[str]) -> list[_Unit]:
        if not texts:
            return []
        encoded = self.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [
            _Unit(text, len(ids), [tuple(o) for o in offsets])
            for text, ids, offsets in zip(texts, encoded["input_ids"], encoded["offset_mapping"], strict=True)
        ]

    def _units(self, text: str) -> list[_Unit]:
        paragraphs = [p.strip() for p in _PARAGRAPHS.split(text) if p.strip()]
        units: list[_Unit] = []
        for unit in self._measure(paragraphs):
            if unit.tokens <= self.chunk_tokens:
                units.append(unit)
                continue
            sentences = [s for s in _SENTENCES.split(unit.text) if s.strip()]
            for sentence in self._measure(sentences):
                if sentence.tokens <= self.chunk_tokens:
                    units.append(sentence)
                else:
                    units.extend(self._windows(sentence))
        return units

    def _windows(self, unit: _Unit) -> list[_Unit]:
        """Cut an over-long sentence (a table, a URL dump) into windows of ``chunk_tokens`` tokens."""
        pieces = []
        for start in range(0, unit.tokens, self.chunk_tokens):
            span = unit.offsets[start : start + self.chunk_tokens]
            pieces.append(_Unit(unit.text[span[0][0] : span[-1][1]], len(span), []))
        return pieces

    def _tail(self, units: list[_Unit]) -> tuple[str, int]:
        """The last ``overlap_tokens`` tokens of a chunk's body (text, tokens), cut at a token boundary."""
        if not self.overlap_tokens or not units:
            return "", 0
        last = self._measure([units[-1].text])[0] if not units[-1].offsets else units[-1]
        if last.tokens <= self.overlap_tokens:
            return last.text, last.tokens
        start = last.offsets[-self.overlap_tokens][0]
        return last.text[start:], self.overlap_tokens

    def chunk(self, text: str) -> list[Chunk]:
        units = self._units(text)
        bodies: list[list[_Unit]] = []
        current: list[_Unit] = []
        size = 0
        for unit in units:
            if current and size + unit.tokens > self.chunk_tokens:
                bodies.append(current)
                current, size = [], 0
            current.append(unit)
            size += unit.tokens
            if size >= self.min_tokens and _boundary(unit.text, self.boundary_modulus):
                bodies.append(current)
                current, size = [], 0
        if current:
            bodies.append(current)

        chunks: list[Chunk] = []
        previous: list[_Unit] = []
        for index, body in enumerate(bodies):
            overlap, overlap_tokens = self._tail(previous)
            body_text = "\n".join(u.text for u in body)
            chunks.append(
                Chunk(
                    index=index,
                    text=f"{overlap}\n{body_text}" if overlap else body_text,
                    tokens=sum(u.tokens for u in body) + overlap_tokens,
                )
            )
            previous = body
        return chunks

"""Retrieve small, read big: a matched chunk grows into the stretch of its article around it.

Small chunks are what finds the answer (one topic each, so a question's words match sharply); a small
chunk of a real article is a fragment the reader cannot place (whose statement, which story of a
round-up). So after retrieval each passage takes in the neighbouring chunks of its own article, the
next one first and then the one before, while the reader's token allowance for it lasts. Two passages
of one article whose stretches meet become one passage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from indexing import VectorStore

P = TypeVar("P")


def join_chunks(texts: Sequence[str]) -> str:
    """Consecutive chunks as one text, each chunk's leading overlap (the first line, when it repeats the end
    of the chunk before) dropped."""
    joined = ""
    for text in texts:
        if joined:
            head, sep, rest = text.partition("\n")
            if sep and head and joined.endswith(head):
                text = rest
            joined = f"{joined}\n{text}"
        else:
            joined = text
    return joined


def _stretch(chunks: dict[int, str], start: int, end: int, each_side: int, fits: Callable[[str], bool]):
    """Grow ``[start, end]`` a chunk at a time (after, then before), at most ``each_side`` each way, while
    the joined text still ``fits``."""
    low, high = start, end
    for step in range(1, each_side + 1):
        for candidate in ((low, end + step), (start - step, high)):
            lo, hi = min(candidate[0], low), max(candidate[1], high)
            if (lo, hi) == (low, high) or lo not in chunks or hi not in chunks:
                continue
            if fits(join_chunks([chunks[i] for i in range(lo, hi + 1)])):
                low, high = lo, hi
    return low, high


def widen(
    store: VectorStore,
    passages: Sequence[P],
    *,
    each_side: int,
    fits: Callable[[str], bool],
) -> list[P]:
    """``passages`` (with ``doc_id`` and a ``chunk`` index) each widened by up to ``each_side`` neighbouring
    chunks of its article while ``fits`` says the text is still short enough; passages whose stretches meet
    are merged into the first of them. Order is kept; passages without a known chunk stay as they are."""
    located = [p for p in passages if getattr(p, "doc_id", None) and getattr(p, "chunk", None) is not None]
    if each_side <= 0 or not located:
        return list(passages)
    stored = store.points_of(sorted({p.doc_id for p in located}))
    chunks = {
        doc: {int(s.payload["chunk_index"]): s.payload.get("text", "") for s in points if "chunk_index" in s.payload}
        for doc, points in stored.items()
    }
    spans: list[tuple[P, str | None, int, int]] = []
    for p in passages:
        doc, index = getattr(p, "doc_id", None), getattr(p, "chunk", None)
        mine = chunks.get(doc, {})
        if index is None or index not in mine:
            spans.append((p, None, 0, 0))
            continue
        low, high = _stretch(mine, index, index, each_side, fits)
        merged = False
        for n, (q, other_doc, lo, hi) in enumerate(spans):
            if other_doc == doc and low <= hi + 1 and lo <= high + 1:  # the stretches touch: one passage
                spans[n] = (q, doc, min(lo, low), max(hi, high))
                merged = True
                break
        if not merged:
            spans.append((p, doc, low, high))
    out = []
    for p, doc, low, high in spans:
        if doc is None:
            out.append(p)
            continue
        text = join_chunks([chunks[doc][i] for i in range(low, high + 1)])
        out.append(replace(p, text=text, chunks=(low, high), matched=getattr(p, "matched", None) or p.text))
    return out

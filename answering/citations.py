"""What an answer cites: the passages it names as [n], or, when it names none, the passage holding most of its
words (marked inferred); a syndicated story's citation names every outlet that carried it."""

from __future__ import annotations

import re

from answering.answer import Citation
from answering.prompt import NOT_FOUND, Passage
from answering.retrieval import content_words

_CITATION = re.compile(r"\[(\d{1,2})\]")


def citation(number: int, passage: Passage, *, inferred: bool = False) -> Citation:
    """A citation of passage ``number``, naming every outlet of its story when the passage knows them."""
    urls = list(getattr(passage, "story_urls", ()) or ([passage.url] if passage.url else []))
    sources = list(getattr(passage, "story_sources", ()) or ([passage.source] if passage.source else []))
    return Citation(number, passage.title, passage.url, passage.published, inferred, urls, sources)


def attributed(text: str, passages: list[Passage], *, threshold: float = 0.5) -> list[Citation]:
    """When an answer cites nothing, the passage that holds most of its content words (at least
    ``threshold`` of them), marked as inferred; an answer the passages do not support cites nothing."""
    words = content_words(text)
    if not words or text.strip() == NOT_FOUND:
        return []
    overlaps = [len(words & content_words(p.text + " " + p.title)) / len(words) for p in passages]
    best = max(range(len(passages)), key=lambda i: overlaps[i], default=None)
    if best is None or overlaps[best] < threshold:
        return []
    return [citation(best + 1, passages[best], inferred=True)]


def without_markers(text: str) -> str:
    """``text`` without its [n] markers."""
    return _CITATION.sub("", text)


def cited(text: str, passages: list[Passage]) -> list[Citation]:
    """The passages an answer cites as [n], in order of first mention; numbers out of range are ignored."""
    seen: list[int] = []
    for match in _CITATION.finditer(text):
        number = int(match.group(1))
        if 1 <= number <= len(passages) and number not in seen:
            seen.append(number)
    return [citation(n, passages[n - 1]) for n in seen]

"""How an answer reads its passages: how many, from which retrieval, widened how far, in which order, shown how.

``AnswerProfile`` holds the choices measured on real news and the hard news set (bench/qa.py); ``PREVIOUS`` and
``BEFORE`` reproduce earlier defaults, for comparison in the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from answering.prompt import ANSWER_INSTRUCTIONS, DEFAULT_STYLE, SHORT_INSTRUCTIONS, Passage, PromptStyle
from answering.retrieval import RetrievalPolicy

Order = Literal["rank", "best-last", "oldest-first"]


@dataclass(frozen=True)
class AnswerProfile:
    """Which passages an answer reads and how the prompt shows them, chosen by measurement on real news and the
    hard news set (bench/qa.py); ``BEFORE`` and ``PREVIOUS`` reproduce earlier defaults, for comparison."""

    retrieval: RetrievalPolicy = RetrievalPolicy()
    style: PromptStyle = PromptStyle(ANSWER_INSTRUCTIONS, date_only=True)
    passages: int = 3  # most passages one prompt holds: a small model reads few well
    prompt_tokens: int | None = None  # cap on the prompt's tokens (None: the context window less the answer)
    order: Order = "oldest-first"  # rank: best first; best-last: best nearest the question; oldest-first: by date
    supersede: bool = True  # a passage that a newer update on the same subject replaced yields its prompt slot
    # Sentences that only report a replaced value ("had been due to close on October 27") are left out of the
    # prompt: on the hard news set (bench/qa.py) it turned more wrong updated-fact answers right than right ones wrong.
    current_only: bool = True
    # Below this cosine for every passage the answer is NOT_FOUND, without generating. On the hard news set
    # (bench/qa.py) it lies between the questions' weakest best passage and the off-topic and foreign questions' best.
    min_relevance: float = 0.35
    # Retrieve small, read big: each passage takes in this many neighbouring chunks of its article each side
    # (while its share of the prompt lasts). On real news (bench/qa.py) one each side put the answer in the prompt
    # for more questions than none, and raised the 0.5B reader's accuracy.
    context_chunks: int = 1
    extractive: bool = False  # factoid questions answered with a span copied from the passages (answering.spans)
    # A factoid answer that names nothing new (the question said back, a remark about the passages) is replaced
    # by a span copied from the passages; it is never printed as an answer.
    answers_only: bool = True


PREVIOUS = AnswerProfile(
    RetrievalPolicy.previous(), DEFAULT_STYLE, passages=20, order="rank", supersede=False, min_relevance=0.0,
    current_only=False, context_chunks=0, answers_only=False,
)  # fmt: skip
# The defaults before real news was measured: chunks as retrieved, the short cite-and-refuse instructions.
BEFORE = AnswerProfile(style=PromptStyle(SHORT_INSTRUCTIONS, date_only=True), context_chunks=0, answers_only=False)


def arrange(passages: list[Passage], order: Order) -> list[Passage]:
    """Passages in prompt order (numbered from 1 in that order)."""
    if order == "best-last":
        return passages[::-1]
    if order == "oldest-first":  # the newest, which wins where a story was updated, comes nearest the question
        return sorted(passages, key=lambda p: p.published or "")
    return list(passages)

"""What an update replaced: older passages a newer update covers, and sentences that report a replaced value.

News updates a fact by publishing a follow-up ("the closure will now begin on November 3"), and the follow-up
often repeats what it replaced ("the bridge had been due to close on October 27"). A small model reads both
values and picks either. Two rules keep the replaced value out of an answer's way:

- ``newest_wins``: where a newer passage of the same story or source that signals an update ("now", "UPDATE",
  "first given as") covers the question's subject, the older passage yields its prompt slot (another feed's
  wording alone never demotes a passage);
- ``current_statements``: sentences that only look back at a replaced value (past perfect "had been due to",
  "was first given as", "originally", "previously") are left out of the passages a prompt shows, unless the
  question itself asks about the earlier state ("What was the original figure?").

Measured on the hard news set (bench/qa.py, prompt mode): the second rule turns some updated-fact questions the
profile got wrong right (fewer stale answers), and of the other questions turns very few right answers wrong (a
question on a fact that was never updated).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from answering.prompt import Passage
from answering.retrieval import content_words

# A passage that says it changes an earlier report ("now", "UPDATE", "was first given as", ...).
UPDATE_SIGNAL = re.compile(
    r"\b(now|update[sd]?|revised|corrected|instead|no longer|previously|originally|had been|"
    r"first (?:given|reported|announced|put|set))\b",
    re.IGNORECASE,
)
# A sentence that reports what was said or planned before (and so, after an update, a replaced value).
RETROSPECTIVE = re.compile(
    r"\b(had (?:been|put|given|said|named|set|planned|expected|due|announced|reported|won|led)|"
    r"(?:was|were) (?:first|initially|originally|previously) (?:given|reported|announced|put|set|expected|due)|"
    r"originally|initially|previously|before (?:the|a) (?:recount|ruling|appeal|revision|correction))\b",
    re.IGNORECASE,
)
# A question about the earlier state keeps the sentences that report it.
ASKS_EARLIER = re.compile(
    r"\b(originally|initially|previously|first|earlier|before|old|original|initial|had been)\b", re.IGNORECASE
)
_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ '-][A-Z][a-z]+)*")
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday"
_MONTHS = "January February March April May June July August September October November December"
_NOT_NAMES = frozenset(re.split(r"\s+", f"{_DAYS} {_MONTHS} The This That These When What Which Who How Where Why"))
# Sentence ends: after . ! ? (or a closing quote), before a capital or an opening quote; paragraphs are kept.
_SENTENCE_END = re.compile(r"(?<=[.!?\"”])\s+(?=[A-Z\"“])")


def _names(text_or_passage) -> set[str]:
    """The names a text mentions: capitalised words and runs of them."""
    text = text_or_passage if isinstance(text_or_passage, str) else f"{text_or_passage.title} {text_or_passage.text}"
    return {n for n in _NAME.findall(text) if len(n) > 3 and n not in _NOT_NAMES}


def _subject(question: str) -> set[str]:
    """What a question is about: the names it mentions, or its content words when it names nothing."""
    return _names(question) or content_words(question)


def newest_wins(question: str, passages: Sequence[Passage]) -> list[Passage]:
    """The passages with those a newer update replaced moved after all others (order otherwise kept)."""
    old = superseded(question, passages)
    return [p for p, o in zip(passages, old, strict=True) if not o] + [
        p for p, o in zip(passages, old, strict=True) if o
    ]


def superseded(question: str, passages: Sequence[Passage]) -> list[bool]:
    """Per passage, whether a newer passage that signals an update covers the same subject: both mention
    every name of the question (a follow-up that changed a figure the older one still gives)."""
    subject = _subject(question)
    if not subject:
        return [False] * len(passages)
    about = [subject <= _names(p) | content_words(f"{p.title} {p.text}") for p in passages]
    newer_updates = [
        (p.published, i) for i, p in enumerate(passages) if about[i] and p.published and UPDATE_SIGNAL.search(p.text)
    ]
    return [
        about[i]
        and bool(p.published)
        and any(date > p.published and _same_thread(passages[j], p) for date, j in newer_updates if j != i)
        for i, p in enumerate(passages)
    ]


def _same_thread(newer: Passage, older: Passage) -> bool:
    """Whether an update can replace what ``older`` says: the same story (a syndicated follow-up) or the same
    source (an outlet's own follow-up). Another feed's wording ("now", "update") never demotes a passage."""
    newer_story, older_story = getattr(newer, "story_id", None), getattr(older, "story_id", None)
    if newer_story and older_story and newer_story == older_story:
        return True
    return newer.source is not None and newer.source == older.source


def current_statements(question: str, passage: Passage) -> Passage:
    """The passage without its sentences that only report a replaced value; unchanged when the question
    asks about the earlier state or when every sentence looks back (the passage is never emptied)."""
    if ASKS_EARLIER.search(question) or not RETROSPECTIVE.search(passage.text):
        return passage
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", passage.text):
        kept = [s for s in _SENTENCE_END.split(paragraph.strip()) if s and not RETROSPECTIVE.search(s)]
        if kept:
            paragraphs.append(" ".join(kept))
    return replace(passage, text="\n\n".join(paragraphs)) if paragraphs else passage

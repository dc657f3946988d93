"""Deterministic augmentations of one document, no model needed: fact sentences turned into templated
questions with grounded answers, sentence-reordered restatements, and arithmetic implications.

Facts that are seen in one wording are memorised but hard to pull out with a question (Allen-Zhu and Li,
"Physics of Language Models 3.1", 2023); restatements and question-answer pairs make them extractable.
Questions are echo questions: the fact's span replaced by its question word ("The bridge opened when?"),
so they stay grammatical without a parser. Every answer is a span of the document's own text.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Sept",
    "Oct",
    "Nov",
    "Dec",
]
_MONTH = "|".join(MONTHS)
NUMBER_WORDS = [
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
]
_DATE = re.compile(
    rf"\b(?:(?P<prep>(?i:on|by|from|until|since|in|before|after)) )?(?P<date>(?:{_MONTH})\.? \d{{1,2}}(?:, \d{{4}})?"
    rf"|\d{{1,2}} (?:{_MONTH})(?: \d{{4}})?|(?<!\d )(?:19|20)\d{{2}}\b)"
)
_NUMBER = re.compile(
    rf"(?<![\w.,/-])(?P<num>\d{{1,3}}(?:,\d{{3}})+|\d+(?:\.\d+)?|(?:{'|'.join(NUMBER_WORDS)}))(?![\w/-])"
    r"(?P<tail>\s+(?:million|billion|per cent|percent|%))?",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+){1,2}\b")
_WHO_BEFORE = ("by", "said", "named", "appointed", "and", "with", "to", "chaired by", "led by")
_NOT_NAMES = {"The", "A", "An", "In", "On", "At", "By", "For", "But", "And", "It", "This", "That", "Its", *MONTHS}
_SENTENCE = re.compile(r"(?<=[.!?])[\"”']?\s+(?=[A-Z\"“])")
_DATELINE = re.compile(r"^[A-Z][A-Z .'-]+, \w+\.? \d{1,2} \([^)]{1,20}\) [-–—] ")


@dataclass(frozen=True)
class Fact:
    """One question about a sentence of a document, and its answer as it appears there."""

    kind: str  # when / how_many / who / what_number
    sentence: str
    question: str
    answer: str
    cloze: str  # the sentence with the answer blanked: another wording of the same question


def sentences(text: str) -> list[str]:
    """Sentences of ``text`` (paragraph by paragraph), stripped; very short fragments dropped."""
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        for s in _SENTENCE.split(" ".join(paragraph.split())):
            s = _DATELINE.sub("", s.strip())
            if len(s.split()) >= 4 and not s.startswith("("):
                out.append(s)
    return out


def _question(sentence: str, start: int, end: int, words: str) -> tuple[str, str]:
    """(echo question, cloze) for the span [start, end) of ``sentence`` replaced by ``words``."""
    body = sentence.rstrip('.!?"” ')
    end = min(end, len(body))
    question = f"{body[:start]}{words}{body[end:]}".strip()
    question = question[0].upper() + question[1:] + "?"
    cloze = f"{body[:start]}___{body[end:]}".strip() + "."
    return question, cloze


def sentence_facts(sentence: str) -> list[Fact]:
    """Every templated question a sentence supports: dates (when), quantities (how many), people (who)."""
    facts: list[Fact] = []
    taken: list[tuple[int, int]] = []
    for m in _DATE.finditer(sentence):
        start = m.start("prep") if m.group("prep") else m.start("date")
        if start == 0 and sentence[m.end() : m.end() + 1] == ",":  # "In 1909, X did Y" -> "X did Y when?"
            rest = sentence[m.end() + 1 :].strip()
            question, cloze = _question(rest + ".", len(rest), len(rest), " when")
            cloze = f"{sentence[: m.start('date')]}___{sentence[m.end() :]}"
        else:
            question, cloze = _question(sentence, start, m.end(), "when")
        facts.append(Fact("when", sentence, question, m.group("date"), cloze))
        taken.append((m.start(), m.end()))
    for m in _NUMBER.finditer(sentence):
        if any(a <= m.start() < b for a, b in taken):
            continue
        before = sentence[: m.start()].rstrip()
        if re.search(
            r"(\bline|\broute|\bNo\.?|\bnumber|\b(?!In\b|On\b|By\b)[A-Z][a-z]+)$", before
        ):  # an identifier, not a quantity
            kind, words = "what_number", "which number"
        elif m.group("tail"):
            kind, words = (
                "how_many",
                "what share" if "cent" in m.group("tail") or "%" in m.group("tail") else "how much",
            )
        else:
            kind, words = "how_many", "how many"
        answer = m.group(0).strip()
        question, cloze = _question(sentence, m.start(), m.end(), words)
        if kind == "how_many" and not m.group("tail") and not re.match(r"\s+[a-z]", sentence[m.end() :]):
            continue  # "how many" needs a noun after it
        facts.append(Fact(kind, sentence, question, answer, cloze))
        taken.append((m.start(), m.end()))
    for m in _NAME.finditer(sentence):
        name = m.group(0)
        if name.split()[0] in _NOT_NAMES or any(a <= m.start() < b for a, b in taken):
            continue
        before = sentence[: m.start()].rstrip().lower()
        at_start = m.start() == 0 and re.match(r"\s+[a-z]", sentence[m.end() :])
        if at_start or before.endswith(_WHO_BEFORE):
            question, cloze = _question(sentence, m.start(), m.end(), "who")
            facts.append(Fact("who", sentence, question, name, cloze))
    return facts


def document_facts(text: str) -> list[Fact]:
    """The facts of a document, in order, each question asked once."""
    seen: set[str] = set()
    out = []
    for s in sentences(text):
        for fact in sentence_facts(s):
            if fact.question not in seen and fact.answer in text:
                seen.add(fact.question)
                out.append(fact)
    return out


def reordered(title: str, text: str, count: int, seed: str) -> list[str]:
    """``count`` restatements of the document: its sentences in another order (the first one stays first when
    there are enough to reorder), headed by the title."""
    parts = sentences(text)
    if len(parts) < 3:
        return []
    out: list[str] = []
    rng = random.Random(seed)
    for _ in range(count * 3):
        rest = parts[1:]
        rng.shuffle(rest)
        candidate = " ".join([parts[0], *rest])
        if candidate not in out and rest != parts[1:]:
            out.append(f"{title}\n\n{candidate}" if title else candidate)
        if len(out) == count:
            break
    return out


def implications(text: str) -> list[str]:
    """Short statements that follow from the text by arithmetic ("from 160 to 215" -> up by 55)."""
    out = []
    for s in sentences(text):
        for m in re.finditer(r"from (\d[\d,]*) to (\d[\d,]*)", s):
            a, b = (int(x.replace(",", "")) for x in m.groups())
            if a != b and a < 10**9 and b < 10**9:
                change = "an increase" if b > a else "a decrease"
                out.append(f"{s} That is {change} of {abs(b - a):,}, from {m.group(1)} to {m.group(2)}.")
    return out


def distractors(answer: str, kind: str, pool: list[str], seed: str, count: int = 3) -> list[str]:
    """Wrong answers of the same kind: others from ``pool`` first, then perturbations of a number or date."""
    rng = random.Random(seed)
    options = sorted({p for p in pool if p != answer and p.lower() != answer.lower()})
    rng.shuffle(options)
    out = options[:count]
    if answer.lower() in NUMBER_WORDS and len(out) < count:
        at = NUMBER_WORDS.index(answer.lower())
        near = [NUMBER_WORDS[i] for i in (at + 1, at - 1, at + 2, at - 2, at + 3) if 0 <= i < len(NUMBER_WORDS)]
        out.extend(w.capitalize() if answer[0].isupper() else w for w in near if w not in out)
    digits = re.search(r"\d[\d,]*", answer)
    if digits and len(out) < count:
        value = int(digits.group(0).replace(",", ""))
        is_day = kind == "when" and value <= 31 and not re.fullmatch(r"(19|20)\d\d", digits.group(0))
        if is_day:
            steps = [3, -4, 7, -9, 11]
        elif 1000 <= value <= 2100 and "," not in digits.group(0):  # a year
            steps = [2, -3, 5, -7]
        else:
            steps = [max(1, value // 4), -max(1, value // 3), value, max(2, value // 2)]
        for step in steps:
            new = value + step
            if new <= 0 or (is_day and new > 28):
                continue
            text = f"{new:,}" if "," in digits.group(0) else str(new)
            candidate = answer[: digits.start()] + text + answer[digits.end() :]
            if candidate != answer and candidate not in out:
                out.append(candidate)
            if len(out) == count:
                break
    return out[:count]

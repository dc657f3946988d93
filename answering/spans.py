"""Answers that are answers: for a factoid question, the model picks a span of the passages it read.

A small model asked to answer in its own words on real news often writes something that is not an
answer ("The passage contains multiple sentences ...") or names the wrong one of several candidates in
a fluent sentence. For questions that ask for a thing (who, which, what, when, where, how many), decoding
is constrained to copy: after a fixed lead ("Answer:"), every token must continue a stretch of
some passage's own tokens, and the answer may end only where a word ends. The model still chooses which
stretch, and where it ends, by its own next-token scores; it can no longer say what no passage says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from answering.decode import _stop_ids
from answering.prompt import Passage
from answering.retrieval import _STOPWORDS, content_words

# Questions answered by naming something: a span copies the answer out of a passage.
# Questions answered by naming something (asked anywhere in the sentence, as news quizzes do: "... in support
# of which minority group?"): a span copies the answer out of a passage.
FACTOID = re.compile(
    r"\b(?:which|what|who|whom|whose|when|where|how (?:many|much|long|old|far|big|large|high|often))\b",
    re.IGNORECASE,
)
# ... unless the question asks for an explanation or a story.
NARRATIVE = re.compile(
    r"\b(why|explain|describe|summari[sz]e|tell me|happened|what (?:is|are|was|were) the (?:reason|impact|effect)s?)\b",
    re.IGNORECASE,
)
LEAD = "Answer:"
MAX_SPAN_TOKENS = 24  # an answer is a name, a number or a short phrase
BEAMS = 6  # first words tried; each is continued greedily (12 beams ranked by mean log-probability did worse)
# Words no answer starts with (besides the retrieval's stop words): pronouns, auxiliaries, connectives.
_NO_START = _STOPWORDS | frozenset(
    re.split(
        r"\s+",
        "i you he she we they me him us them my your his her our their there here not no but also been being had "
        "said says say than then so if into over under more most some such all any each other its",
    )
)
_ENDS = (".", ",", ";", ":", "!", "?", "\n")


# A reply about the passages rather than from them, or one that gives up.
_META = re.compile(
    r"^\s*(?:the|these|this)\s+(?:passage|passages|text|article)s?\s+(?:contains?|provides?|is|are|talks?|discuss(?:es)?)\b"
    r"|\b(?:does not|do not|doesn't|don't) (?:say|mention|provide|specify|state|contain)\b|\bno information\b",
    re.IGNORECASE,
)

_ANSWERING = frozenset({"answer", "answers", "question", "questions"})


def is_non_answer(text: str, question: str) -> bool:
    """Whether a reply names nothing the question did not: empty, about the passages instead of from them, a
    refusal in other words, or the question said back."""
    words = content_words(text) - _ANSWERING  # "The answer to this question is:" and nothing after it names nothing
    return not words or bool(_META.search(text)) or words <= content_words(question)


def is_factoid(question: str) -> bool:
    """Whether a question asks for a thing (a name, a number, a date, a place) that a passage can state."""
    return bool(FACTOID.search(question)) and not NARRATIVE.search(question)


@dataclass(frozen=True)
class Span:
    text: str
    passage: int  # the passage (0-based, in prompt order) the span was copied from
    tokens: int
    logprob: float  # the span's summed log-probability under the constrained decoding


class _Copy:
    """Where a partial answer occurs in the passages' token sequences, and which tokens may follow."""

    def __init__(self, tokenizer, passages: Sequence[Passage], exclude: set[str] = frozenset()) -> None:
        self.sequences: list[list[int]] = []
        self.starts: list[list[bool]] = []  # whether each token begins a word
        self.openers: list[list[bool]] = []  # whether a span may begin here: a word start that is not excluded
        for passage in passages:
            ids: list[int] = []
            starts: list[bool] = []
            openers: list[bool] = []
            for line in passage.text.split("\n"):
                line = line.strip()
                if not line:
                    continue
                # A leading blank makes every word, the line's first included, a space-led token (as after the lead).
                line_ids = tokenizer(" " + line, add_special_tokens=False)["input_ids"]
                pieces = tokenizer.convert_ids_to_tokens(line_ids)
                word_starts = [_word_start(p) for p in pieces]
                ids += line_ids + [-1]  # -1: a line break, where no span crosses
                starts += word_starts + [True]
                openers += _openers(line_ids, word_starts, tokenizer, exclude) + [False]
            self.sequences.append(ids)
            self.starts.append(starts)
            self.openers.append(openers)

    def begin(self) -> list[tuple[int, int]]:
        """Every position where a span may start."""
        return [(p, i) for p, openers in enumerate(self.openers) for i, o in enumerate(openers) if o]

    def following(self, active: list[tuple[int, int]]) -> set[int]:
        return {self.sequences[p][i] for p, i in active if i < len(self.sequences[p]) and self.sequences[p][i] >= 0}

    def advance(self, active: list[tuple[int, int]], token: int) -> list[tuple[int, int]]:
        return [(p, i + 1) for p, i in active if i < len(self.sequences[p]) and self.sequences[p][i] == token]

    def may_end(self, active: list[tuple[int, int]]) -> bool:
        """Whether the span so far ends where a word ends in at least one occurrence."""
        return any(i >= len(self.sequences[p]) or self.starts[p][i] or self.sequences[p][i] < 0 for p, i in active)


def _openers(ids: list[int], word_starts: list[bool], tokenizer, exclude: set[str]) -> list[bool]:
    """Per token, whether a span may begin there: the first token of a word that is neither a stop word nor
    one of ``exclude`` (the question's own words)."""
    flags = [False] * len(ids)
    bounds = [i for i, s in enumerate(word_starts) if s] + [len(ids)]
    for start, stop in zip(bounds, bounds[1:], strict=False):
        word = tokenizer.decode(ids[start:stop]).strip().lower()
        key = "".join(ch for ch in word if ch.isalnum())
        flags[start] = bool(key) and key not in exclude and key not in _NO_START
    return flags


def _word_start(piece: str) -> bool:
    return piece.startswith(("Ġ", "▁", " ")) or not piece[:1].isalnum()


def copy_span(
    model,
    tokenizer,
    prompt: str,
    passages: Sequence[Passage],
    question: str = "",
    *,
    max_tokens: int = MAX_SPAN_TOKENS,
    beams: int = BEAMS,
) -> Span | None:
    """The span of ``passages`` the model most likely gives as the whole answer after ``prompt`` + the lead.

    The ``beams`` likeliest first words (not a word of the question, not a stop word: an answer names what
    the question does not) are each continued greedily under the copy constraint until the model prefers to
    end, all beams in one batch; a span's score is the log-probability of its tokens and of the end, so a
    span that the model would not stop after loses. None when no passage offers a start.
    """
    import torch

    copy = _Copy(tokenizer, passages, exclude=content_words(question))
    starts = copy.begin()
    if not starts:
        return None
    device = next(model.parameters()).device
    ends = _stop_ids(tokenizer) | {t for t in (_single_token(tokenizer, e) for e in _ENDS) if t is not None}
    ids = tokenizer(prompt + LEAD, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids], device=device), use_cache=True, logits_to_keep=1)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        options = sorted(copy.following(starts), key=lambda t: -float(first[t]))[:beams]
        cache = out.past_key_values
        cache.batch_repeat_interleave(len(options))  # one row per beam, all sharing the prompt's keys and values
        live = [_Beam([t], copy.advance(starts, t), float(first[t])) for t in options]
        done: list[_Beam] = []
        for _ in range(max_tokens - 1):
            step = torch.tensor([[b.ids[-1]] for b in live], device=device)
            out = model(input_ids=step, past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            logprobs = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
            keep = []
            for row, beam in enumerate(live):
                allowed = copy.following(beam.active)
                # Punctuation the passage itself goes on with ("8.8", "U.S.") is copied; elsewhere it ends the span.
                stops = ends - allowed
                end = max(float(logprobs[row, e]) for e in stops) if copy.may_end(beam.active) else float("-inf")
                follow = max(allowed, key=lambda t: float(logprobs[row, t]), default=None)
                if follow is None or end >= float(logprobs[row, follow]):
                    if end > float("-inf"):  # ended where a word ends; otherwise stuck inside a word: dropped
                        done.append(_Beam(beam.ids, beam.active, beam.logprob + end))
                    continue
                beam.ids.append(follow)
                beam.active = copy.advance(beam.active, follow)
                beam.logprob += float(logprobs[row, follow])
                keep.append(row)
            if not keep:
                live = []
                break
            if len(keep) < len(live):
                cache.batch_select_indices(torch.tensor(keep, device=device))
            live = [live[r] for r in keep]
        for beam in live:  # the token cap: cut back to the last whole word
            while beam.ids and not copy.may_end(beam.active):
                beam.ids.pop()
                beam.active = [(p, i - 1) for p, i in beam.active]
            if beam.ids:
                done.append(beam)
    if not done:
        return None
    best = max(done, key=lambda b: b.logprob)
    text = tokenizer.decode(best.ids, skip_special_tokens=True).strip().strip(",;:.")
    return Span(text, best.active[0][0], len(best.ids), best.logprob) if text else None


@dataclass
class _Beam:
    ids: list[int]
    active: list[tuple[int, int]]  # where the span so far occurs in the passages (after its last token)
    logprob: float


def _single_token(tokenizer, text: str) -> int | None:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[0] if len(ids) == 1 else None

"""Answering a question: retrieve fresh passages, prompt the base model plus the champion adapter, cite sources."""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Literal

from answering.answer import Answer
from answering.citations import attributed, citation, cited, without_markers
from answering.decode import retrieval_log_weights, stream_greedy, stream_rag_token
from answering.profile import AnswerProfile, arrange
from answering.prompt import (
    NOT_FOUND,
    SPAN,
    Passage,
    closed_book_messages,
    count_tokens,
    fit_passages,
    rag_messages,
    rag_prompt,
    render,
)
from answering.questions import future_note, language_note
from answering.reader import LanguageModel, LoadedModel
from answering.remote_reader import ReaderUnavailable
from answering.requests import Mode, check_question
from answering.retrieval import StoryPassage, retrieve
from answering.spans import copy_span, is_factoid, is_non_answer
from answering.updates import current_statements, newest_wins
from answering.windows import widen
from errors import InputError, KupError
from indexing import DenseEncoder, SparseEncoder, VectorStore

log = logging.getLogger(__name__)
RAG_TOKEN_TEMPERATURE = 0.05  # softmax temperature over cosine similarities (0..1): sharp but not one-hot


class Answerer:
    """Answers questions from the store's passages with the language model, in one of the MODES."""

    rag_token_temperature: float = RAG_TOKEN_TEMPERATURE  # RAG-token mixing; benchmarks read it too

    def __init__(
        self,
        store: VectorStore,
        dense: DenseEncoder,
        sparse: SparseEncoder,
        lm: LanguageModel,
        *,
        context_tokens: int = 2048,
        max_new_tokens: int = 160,
        profile: AnswerProfile | None = None,
        recency_half_life_days: float | None | Literal["profile"] = "profile",
    ) -> None:
        self.store, self.dense, self.sparse, self.lm = store, dense, sparse, lm
        self.context_tokens = context_tokens
        self.max_new_tokens = max_new_tokens
        profile = profile or AnswerProfile()
        if recency_half_life_days != "profile":  # None or 0 turns the recency prior off
            policy = replace(profile.retrieval, half_life_days=recency_half_life_days or None)
            profile = replace(profile, retrieval=policy)
        self.profile = profile

    def retrieve(
        self,
        question: str,
        *,
        k: int,
        recent_days: float | None,
        sources: list[str] | None,
        as_of: datetime | None = None,
    ) -> list[StoryPassage]:
        """The ``k`` passages the profile's retrieval picks, best first (diverse, a story once, recency-weighted),
        as of ``as_of`` when given (nothing published later)."""
        return retrieve(
            self.store,
            self.dense,
            self.sparse,
            question,
            k=k,
            policy=self.profile.retrieval,
            recent_days=recent_days,
            sources=sources,
            as_of=as_of,
        )

    def prompt_budget(self, loaded: LoadedModel | None = None) -> int:
        """Tokens the prompt may take: the usable context less the room kept for the answer."""
        return min(self.context_tokens, (loaded or self.lm.get()).context) - self.max_new_tokens

    def prompt_passages(
        self, tokenizer, question: str, retrieved: list[Passage], loaded: LoadedModel | None = None
    ) -> list[Passage]:
        """What one prompt shows: the profile's number of best passages that fit its budget, in its order."""
        budget = self.prompt_budget(loaded)
        if self.profile.prompt_tokens:
            budget = min(budget, self.profile.prompt_tokens)
        candidates = newest_wins(question, retrieved) if self.profile.supersede else retrieved
        best = candidates[: self.profile.passages]
        if self.profile.context_chunks and best:
            # Retrieve small, read big: each passage grows into its article's neighbouring chunks, within an
            # equal share of the room the instructions and the question leave.
            room = budget - count_tokens(tokenizer, rag_prompt(tokenizer, question, [], self.profile.style))
            allowance = room // len(best) - 32  # the passage's own tags, title and date

            def fits(text: str) -> bool:
                return count_tokens(tokenizer, text) <= allowance

            best = widen(self.store, best, each_side=self.profile.context_chunks, fits=fits)
        if self.profile.current_only:
            best = [current_statements(question, p) for p in best]
        return arrange(fit_passages(tokenizer, question, best, budget, self.profile.style), self.profile.order)

    def answer(
        self,
        question: str,
        *,
        mode: Mode = "prompt",
        k: int = 5,
        recent_days: float | None = None,
        sources: list[str] | None = None,
        on_text: Callable[[str], None] | None = None,
        as_of: datetime | None = None,
        follows: str | None = None,
        max_new_tokens: int | None = None,
    ) -> Answer:
        """The answer to ``question`` in ``mode`` from the ``k`` best passages (as of ``as_of``: nothing published
        later), with sentences on how far to trust it where the question names a future day or is not English.

        ``follows`` is the question asked before in the same conversation: passages are searched for both, so a
        follow-up ("and when did it open?") finds what it refers to. ``max_new_tokens`` shortens the answer below
        the answerer's own limit (never lengthens it)."""
        question = check_question(question, mode, k)
        limit = min(self.max_new_tokens, max_new_tokens or self.max_new_tokens)
        query = f"{follows.strip()}\n{question}" if follows and follows.strip() else question
        shown: list[str] = []
        held: list[str] = []  # blanks not passed on yet: an answer shown never starts or ends with them
        show = None
        started = False
        if on_text is not None:

            def show(piece: str) -> None:
                nonlocal started
                shown.append(piece)
                held.append(piece)
                if piece.strip():
                    out = "".join(held)
                    held.clear()
                    on_text(out if started else out.lstrip())
                    started = True

        with warnings.catch_warnings(record=True) as caught:  # a library's warning is never part of an answer
            warnings.simplefilter("always")
            fell_back = None
            try:
                answer = self._answer(question, query, mode, k, recent_days, sources, show, as_of, limit)
            except ReaderUnavailable as exc:
                if not self.lm.fallback or shown:
                    hint = "" if shown else "; KUP_READER_FALLBACK=true answers with the model loaded here instead"
                    raise ReaderUnavailable(f"{exc}{hint}") from None
                log.warning("%s; answering with the model loaded here (KUP_READER_FALLBACK)", exc)
                fell_back = f"{exc}, so the model loaded here answered (KUP_READER_FALLBACK)."
                answer = self._answer(question, query, mode, k, recent_days, sources, show, as_of, limit, local=True)
        for warning in caught:
            log.debug("while answering: %s: %s", warning.category.__name__, warning.message)
        if on_text is not None and not "".join(shown).strip():
            on_text(answer.text)  # "The passages do not say." and other answers not streamed: printed all the same
        notes = (future_note(question, as_of), language_note(question), self.lm.get().note, fell_back)
        answer.notes = [n for n in notes if n]
        return answer

    def _answer(
        self,
        question: str,
        query: str,
        mode: Mode,
        k: int,
        recent_days,
        sources,
        on_text,
        as_of,
        limit: int,
        local: bool = False,
    ) -> Answer:
        started = time.perf_counter()
        guarded = False
        loaded = self.lm.get(local=local)
        model, tokenizer = loaded.model, loaded.tokenizer
        style = self.profile.style
        budget = self.prompt_budget(loaded)
        prompt_tokens = count_tokens(tokenizer, rag_prompt(tokenizer, question, [], style))  # instructions + question
        if prompt_tokens + 32 > budget:
            question_tokens = count_tokens(tokenizer, question)
            raise InputError(
                f"the question is {question_tokens} tokens long; with the instructions it must "
                f"stay under about {budget - 32 - (prompt_tokens - question_tokens)} tokens"
            )
        passages: list[Passage] = []
        timings: dict[str, float] = {}
        if mode == "closed-book":
            pieces = self._generate(loaded, closed_book_messages(tokenizer, question), limit)
        else:
            retrieved = self.retrieve(query, k=k, recent_days=recent_days, sources=sources, as_of=as_of)
            timings["retrieve_ms"] = round((time.perf_counter() - started) * 1000, 1)
            if not retrieved:
                raise KupError(
                    "no passages match (is the index empty? run `kup refresh` first, or widen --recent/--source)"
                )
            passages = self.prompt_passages(tokenizer, question, retrieved, loaded)
            if not passages:
                raise InputError("the question leaves no room for any passage in the model's context; shorten it")
            if self.profile.min_relevance > 0 and max(self.relevance(query, passages)) < self.profile.min_relevance:
                # Nothing in the index is about the question: say so rather than let the model guess.
                timings["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
                return Answer(question, mode, NOT_FOUND, [], passages, loaded.adapter, timings)
            factoid = mode == "prompt" and is_factoid(question)
            if factoid and self.profile.extractive:
                return self._span_answer(question, passages, loaded, on_text, started, timings)
            # A factoid answer is short: it is checked whole before anyone reads it (a non-answer is replaced).
            guarded = factoid and self.profile.answers_only
            if guarded:
                shown, on_text = on_text, None
            if mode == "prompt":
                pieces = self._generate(loaded, rag_messages(tokenizer, question, passages, style), limit)
            else:
                if loaded.remote is not None:
                    raise InputError(
                        f"rag-token mode mixes the reader's token probabilities, which {loaded.remote.where()} "
                        "does not give; ask with --mode prompt (model kup), or unset KUP_READER_URL"
                    )
                weights = self.rag_token_scores(query, passages)
                pieces = stream_rag_token(
                    model,
                    tokenizer,
                    [rag_prompt(tokenizer, question, [p], style) for p in passages],
                    weights,
                    max_new_tokens=limit,
                    temperature=self.rag_token_temperature,
                )
        text = self._drain(pieces, on_text, started, timings, tokenizer)
        if mode != "closed-book" and guarded:
            if is_non_answer(text, question):
                # Said back the question, or spoke about the passages: copy the answer out of them instead.
                timings["replaced_non_answer"] = 1
                return self._span_answer(question, passages, loaded, shown, started, timings)
            timings["shown_ms"] = round((time.perf_counter() - started) * 1000, 1)
            if shown:
                shown(text)
        if mode == "rag-token":
            # Each passage had its own prompt, where it was [1]: the answer's sources are the passages
            # that carry the mixture, by weight.
            text = without_markers(text)
            mixture = retrieval_log_weights(weights, self.rag_token_temperature).exp().tolist()
            ranked = sorted(range(len(passages)), key=lambda i: -mixture[i])
            citations = [citation(i + 1, passages[i]) for i in ranked if mixture[i] >= 0.2]
        else:
            citations = cited(text, passages) or attributed(text, passages)
        timings["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return Answer(question, mode, text.strip() or NOT_FOUND, citations, passages, loaded.adapter, timings)

    def _span_answer(self, question, passages, loaded: LoadedModel, on_text, started: float, timings) -> Answer:
        """A factoid question's answer copied out of the passages (``answering.spans``), cited. The copier reads
        the reader's token probabilities: a model server gives none, so its non-answer is "not found"."""
        prompt = rag_prompt(loaded.tokenizer, question, passages, replace(self.profile.style, instructions=SPAN))
        span = None if loaded.remote else copy_span(loaded.model, loaded.tokenizer, prompt, passages, question)
        timings.setdefault("first_token_ms", round((time.perf_counter() - started) * 1000, 1))
        timings["shown_ms"] = round((time.perf_counter() - started) * 1000, 1)  # the whole answer, at once
        if span is None:
            text, citations = NOT_FOUND, []
        else:
            text, citations = f"{span.text} [{span.passage + 1}]", [citation(span.passage + 1, passages[span.passage])]
            timings["generated_tokens"] = span.tokens
        if on_text:
            on_text(text)
        timings["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
        return Answer(question, "prompt", text, citations, passages, loaded.adapter, timings)

    @staticmethod
    def _generate(loaded: LoadedModel, messages: list[dict[str, str]], limit: int) -> Iterator[str]:
        """The answer's pieces: from the model server, or greedy decoding of the prompt here."""
        if loaded.remote is not None:
            return loaded.remote.stream(messages, limit)
        return stream_greedy(loaded.model, loaded.tokenizer, render(loaded.tokenizer, messages), max_new_tokens=limit)

    def relevance(self, question: str, passages: list[Passage]) -> list[float]:
        """Cosine similarity of question and each passage (fused rank scores are nearly flat, so a softmax
        over them would weigh every passage alike)."""
        # A widened passage is judged by the chunk the search matched (the encoder reads 256 tokens at most).
        vectors = self.dense.encode([question] + [getattr(p, "matched", None) or p.text for p in passages])
        return [float(vectors[0] @ v) for v in vectors[1:]]

    def rag_token_scores(self, question: str, passages: list[Passage]) -> list[float]:
        """RAG-token's retrieval scores: the cosine relevance plus the recency prior the retrieval applied,
        so that ``softmax(score / T)`` is the relevance softmax times the prior (the same ranking as the
        passages' own)."""
        scores = self.relevance(question, passages)
        for i, p in enumerate(passages):
            before = getattr(p, "relevance", 0.0)
            if before > 0 and p.score > 0:
                scores[i] += self.rag_token_temperature * math.log(p.score / before)
        return scores

    @staticmethod
    def _drain(pieces: Iterator[str], on_text, started: float, timings: dict[str, float], tokenizer) -> str:
        parts: list[str] = []
        first = None
        for piece in pieces:
            if first is None:
                first = time.perf_counter()
                timings["first_token_ms"] = round((first - started) * 1000, 1)
            parts.append(piece)
            if on_text:
                on_text(piece)
        text = "".join(parts)
        if first is not None:
            tokens = count_tokens(tokenizer, text)
            elapsed = time.perf_counter() - first
            timings["generated_tokens"] = tokens
            timings["tokens_per_s"] = round((tokens - 1) / elapsed, 2) if tokens > 1 and elapsed > 0 else 0.0
        return text

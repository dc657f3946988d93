"""Answers that are answers: a factoid question's answer is a span copied from a passage, never the question's
own words, never a non-answer; other questions are answered in the model's words."""

from __future__ import annotations

from dataclasses import replace

import pytest

from answering import Answerer
from answering.profile import AnswerProfile
from answering.prompt import NOT_FOUND, SPAN, Passage, PromptStyle, rag_prompt
from answering.spans import _Copy, copy_span, is_factoid, is_non_answer

PASSAGES = [
    Passage("Liverpool won the Premier League title, their first in thirty years.\nArsenal finished second."),
    Passage("The Veltmark harbour reopened on 14 March after a storm destroyed its northern pier."),
]


@pytest.mark.parametrize(
    ("question", "factoid"),
    [
        ("Which team won the Premier League?", True),
        ("Who finished second?", True),
        ("How many jobs will go?", True),
        ("In which city did the summit take place?", True),
        ("When did the harbour reopen?", True),
        ("Why did the harbour close?", False),
        ("What happened at the harbour?", False),
        ("Explain the new budget rules.", False),
        ("Tell me about the storm.", False),
    ],
)
def test_factoid_questions_are_told_apart(question, factoid) -> None:
    assert is_factoid(question) is factoid


def test_a_span_may_not_start_on_the_question_words_or_a_stop_word(tokenizer) -> None:
    copy = _Copy(tokenizer, PASSAGES[:1], exclude={"premier", "league", "won"})
    sequence, starts = copy.sequences[0], copy.starts[0]

    def word_at(i: int) -> str:  # the whole word whose first token is at i
        end = next(j for j in range(i + 1, len(sequence) + 1) if j == len(sequence) or starts[j])
        return tokenizer.decode(sequence[i:end]).strip()

    words = {word_at(i) for p, i in copy.begin()}
    assert {"Liverpool", "Arsenal"} <= words
    assert not words & {"Premier", "League", "won", "the", "their"}


def test_the_copied_span_is_a_stretch_of_a_passage(answerer, tokenizer) -> None:
    lm = answerer.lm.get()
    for question in ("Which team won the Premier League?", "When did the Veltmark harbour reopen?"):
        prompt = rag_prompt(tokenizer, question, PASSAGES, PromptStyle(SPAN))
        span = copy_span(lm.model, tokenizer, prompt, PASSAGES, question)
        assert span is not None and span.text and span.tokens >= 1
        assert span.text in PASSAGES[span.passage].text  # copied, whole words, from the passage it cites
        assert span.text.split()[0].lower() not in {"which", "team", "won", "premier", "league", "the", "when"}


def test_an_extractive_answer_is_a_cited_span(answerer) -> None:
    extractive = Answerer(
        answerer.store, answerer.dense, answerer.sparse, answerer.lm, context_tokens=512, max_new_tokens=12,
        profile=replace(AnswerProfile(), extractive=True),
    )  # fmt: skip
    answer = extractive.answer("When did the Veltmark harbour reopen?", k=3)
    assert answer.text != NOT_FOUND and answer.text.endswith("]")
    span, _, number = answer.text.rpartition(" [")
    assert [c.number for c in answer.citations] == [int(number[:-1])]
    assert span in answer.passages[answer.citations[0].number - 1].text
    # Not a factoid question: the model answers in its own words, as before.
    free = extractive.answer("Why did the harbour close?", k=3)
    assert free.text and free.timings.get("generated_tokens", 0) >= 1


@pytest.mark.parametrize(
    ("reply", "non_answer"),
    [
        ("The Wildfires in Arizona's Grand Canyon National Park destroyed which historic site?", True),
        ("The passage contains information about the historic lodge, but it does not provide the name.", True),
        ("The passages do not say.", True),
        ("", True),
        ("Grand Canyon Lodge", False),
        ("The fire destroyed the Grand Canyon Lodge on the North Rim.", False),
    ],
)
def test_a_reply_that_names_nothing_new_is_a_non_answer(reply, non_answer) -> None:
    question = "Wildfires in Arizona's Grand Canyon National Park destroyed which historic site?"
    assert is_non_answer(reply, question) is non_answer


def test_a_non_answer_is_replaced_by_a_copied_span(answerer, monkeypatch) -> None:
    import answering.service as service

    # Whatever the model generates, it says the question back: the answer shown is a cited span instead.
    monkeypatch.setattr(service, "stream_greedy", lambda *a, **k: iter(["When did the Veltmark harbour reopen?"]))
    shown = []
    answer = answerer.answer("When did the Veltmark harbour reopen?", k=3, on_text=shown.append)
    assert answer.timings["replaced_non_answer"] == 1 and answer.text.endswith("]")
    assert shown == [answer.text]  # the reader saw only the replacement, once
    span = answer.text.rpartition(" [")[0]
    assert span in answer.passages[answer.citations[0].number - 1].text

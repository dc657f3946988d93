"""Knowledge synthesis on fixed articles: templated questions with grounded answers, restatements, the cache,
held-out probes, teacher filters, and visible skips."""

from __future__ import annotations

import pytest

from errors import ConfigError
from tests.training.conftest import FACTS
from training import load_recipe
from training.facts import distractors, document_facts, implications, reordered, sentences
from training.synthesis import (
    SynthesisCache,
    augment,
    filter_paraphrase,
    make_probes,
    parse_qa,
    synthesize,
)

ARTICLE = (
    "FENNMOOR, Sep 7 (VLW) - The Fennmoor Museum of Industry has named Aurel Halloran as its new director.\n\n"
    "Aurel Halloran will take up the post on October 12. The panel interviewed candidates over two days, "
    "officials said. Visitor numbers reached 174,000 last summer, the tourist board confirmed.\n\n"
    "The budget grew from 160 to 215 thousand crowns. In 1909, Fennmoor hosted a national brass band contest."
)


def docs(*texts: str) -> list[dict]:
    return [{"id": f"d{i}", "title": f"Story {i}", "text": t} for i, t in enumerate(texts)]


def test_fact_sentences_become_templated_questions_with_answers_from_the_text() -> None:
    got = {(f.kind, f.question, f.answer) for f in document_facts(ARTICLE)}
    assert ("when", "Aurel Halloran will take up the post when?", "October 12") in got
    assert ("who", "Who will take up the post on October 12?", "Aurel Halloran") in got
    assert ("how_many", "The panel interviewed candidates over how many days, officials said?", "two") in got
    assert ("how_many", "Visitor numbers reached how many last summer, the tourist board confirmed?", "174,000") in got
    assert ("when", "Fennmoor hosted a national brass band contest when?", "1909") in got
    assert all(answer in ARTICLE for _, _, answer in got)  # grounded
    assert not any("FENNMOOR" in q for _, q, _ in got)  # the dateline is not part of a question


def test_restatements_reorder_sentences_and_implications_do_the_arithmetic() -> None:
    versions = reordered("Museum", ARTICLE, 2, "seed")
    assert len(versions) == 2 and versions[0] != versions[1]
    for v in versions:
        assert sorted(sentences(v.split("\n\n", 1)[1])) == sorted(sentences(ARTICLE))
    assert implications(ARTICLE) == [
        "The budget grew from 160 to 215 thousand crowns. That is an increase of 55, from 160 to 215."
    ]
    assert reordered("t", "Too short to reorder at all.", 2, "s") == []


def test_distractors_are_of_the_same_kind_and_never_the_answer() -> None:
    assert distractors("October 12", "when", [], "s") == ["October 15", "October 8", "October 19"]
    assert distractors("two", "how_many", [], "s") == ["three", "four", "five"]
    assert set(distractors("Aurel Halloran", "who", ["Aurel Halloran", "Thea Rook", "Ilse Varga", "Bo Lind"], "s")) == {
        "Thea Rook",
        "Ilse Varga",
        "Bo Lind",
    }


def test_synthesis_is_cached_by_content_and_a_factless_document_is_a_visible_skip(tmp_path) -> None:
    cache = SynthesisCache(tmp_path / "synthesis.sqlite")
    batch = docs(ARTICLE, *FACTS, "nothing here is a fact that anyone could ask about at all")
    first, report = synthesize(batch, cache, mode="augment", paraphrases=2, qa=0)
    assert report.documents == 8 and report.cached == 0
    # FACTS[4] names a festival but holds no date, quantity or person; the last one holds nothing at all.
    assert [s["doc_id"] for s in report.skipped] == ["d5", "d7"]
    assert "no extractable facts" in report.skipped[1]["reason"] and first[-1].skipped
    assert report.qa_pairs == sum(len(s.qa) for s in first) > 10
    again, report2 = synthesize(batch, cache, mode="augment", paraphrases=2, qa=0)
    assert report2.cached == 8 and [s.qa for s in again] == [s.qa for s in first]
    changed = docs(ARTICLE.replace("two days", "three days"))
    _, report3 = synthesize(changed, cache, mode="augment", paraphrases=2, qa=0)
    assert report3.cached == 0  # a changed document is synthesised afresh


def test_probes_are_held_out_from_training_and_have_one_right_choice(tmp_path) -> None:
    synth, _ = synthesize(
        docs(ARTICLE, *FACTS), SynthesisCache(tmp_path / "c.sqlite"), mode="augment", paraphrases=1, qa=0
    )
    probes = make_probes(synth, seed=1)
    trained = "\n".join(t for s in synth for t in s.training_texts())
    heldout = [p for p in probes if p["kind"] == "heldout"]
    assert heldout and {p["kind"] for p in probes} == {"heldout", "reworded"}
    for p in heldout:
        assert p["question"] not in trained  # never trained on, bare or headed by its headline
    for p in probes:
        assert len(p["choices"]) == 4 and len(set(p["choices"])) == 4
        answer = p["choices"][p["answer"]]
        assert any(answer in d for d in [ARTICLE, *FACTS])
    assert make_probes(synth, seed=1) == probes  # deterministic


def test_trained_questions_are_headed_by_their_headline_unless_it_holds_the_answer() -> None:
    doc = {"id": "d", "title": "UPDATE 1-Museum names Aurel Halloran director", "text": ARTICLE}
    synth = augment(doc, restatements=0)
    texts = synth.training_texts()
    when = next(q for q in synth.trained_qa() if q["answer"] == "October 12")
    # the wire tag is dropped, the headline names what the question is about
    assert synth.in_context(when) == f"Museum names Aurel Halloran director: {when['question']}"
    assert f"Question: Museum names Aurel Halloran director: {when['question']}\nAnswer: October 12" in texts
    who = next(q for q in synth.qa if q["answer"] == "Aurel Halloran")
    assert synth.in_context(who) == who["question"]  # the headline holds this answer: left bare
    assert augment({**doc, "title": ""}, restatements=0).in_context(when) == when["question"]
    tagged = augment({**doc, "title": "JOBS | 240 jobs to go at Orlin"}, restatements=0)
    assert tagged.in_context(when).startswith("240 jobs to go at Orlin: ")


def test_teacher_filters_drop_empty_repeated_and_ungrounded_outputs() -> None:
    source = "Aurel Halloran will take up the post on October 12 in Fennmoor."
    seen: set[str] = set()
    assert filter_paraphrase("", source, seen) == "empty"
    assert filter_paraphrase("the the the the the the the the the the the the the", source, seen) == "repeated"
    assert filter_paraphrase("Boris Yeltsin will start the job on March 3 in Moscow, it was said.", source, seen) == (
        "ungrounded"
    )
    assert (
        filter_paraphrase("On October 12, Aurel Halloran starts the job in Fennmoor as planned.", source, seen) is None
    )
    kept, dropped = parse_qa(
        "Q: When does Halloran start? A: October 12\nQ: Who is the mayor? A: Boris Yeltsin", source, set()
    )
    assert [k["answer"] for k in kept] == ["October 12"] and dropped == {"ungrounded": 1}
    assert parse_qa("I cannot help with that.", source, set())[1] == {"empty": 1}


def test_augment_records_grounded_qa_only() -> None:
    result = augment({"id": "x", "title": "", "text": ARTICLE}, 1)
    assert result.qa and all(q["answer"] in ARTICLE for q in result.qa) and result.skipped is None


def test_a_recipe_naming_a_missing_teacher_directory_is_one_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="teacher_model .* is not a local Hugging Face model directory"):
        load_recipe(None, synthesis="teacher", teacher_model=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="synthesis"):
        load_recipe(None, synthesis="magic")

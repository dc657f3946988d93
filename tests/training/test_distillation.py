"""Prompt distillation on the tiny Llama: the loss against a hand computation, a student that is its teacher,
the teacher's cache, skipped documents and dropped answers, the student's samples, and ``kup finetune`` with
objective distill end to end."""

from __future__ import annotations

import copy
import functools
import shutil
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from errors import ConfigError
from tests.conftest import tiny_llama
from tests.training.conftest import FAST
from training import (
    AdapterRegistry,
    PlainSampler,
    Sample,
    attach_adapter,
    collate,
    distillation,
    load_recipe,
    pack,
    run_finetune,
    train,
)
from training.distillation import batch_loss, drop_reason, generator_key, student_samples, teach
from training.recipe import Distill
from training.synthesis import SynthesisCache, synthesize

GOOD = [
    "Mayor Ilse Varga said on 3 October 2026 that 40 trucks tested the Lumen Bridge, which cost 12 million crowns.",
    "The Fennmoor Museum of Industry has named Aurel Halloran as its new director. Aurel Halloran will take up "
    "the post on 12 October 2026. Visitor numbers reached 174,000 last summer, the tourist board confirmed.",
]
NUMBERS = " ".join(str(i) for i in range(1, 80))  # a page of numbers: nothing to ask about
SMALL = Distill(questions_per_doc=3, answers_per_question=1, max_answer_tokens=4, passage_tokens=64)


def docs(*texts: str, prefix: str = "d") -> list[dict]:
    return [{"id": f"{prefix}{i}", "title": f"Story {i}", "text": t} for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def tiny_pair():
    model, tokenizer = tiny_llama(seed=0)  # loading the tokenizer is the slow part: once per module
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    return model.eval(), tokenizer


@pytest.fixture
def tiny(tiny_pair):
    """A fresh copy of the freshly initialised tiny Llama (seed 0) in eval mode, and its tokenizer."""
    model, tokenizer = tiny_pair
    return copy.deepcopy(model), tokenizer


def no_forward(model, monkeypatch) -> None:
    """Any pass through ``model`` from now on fails the test."""

    @functools.wraps(model.forward)
    def forbidden(*args, **kwargs):
        raise AssertionError("the teacher ran a forward pass")

    monkeypatch.setattr(model, "forward", forbidden)


def synthesis(batch: list[dict], cache: SynthesisCache):
    return synthesize(batch, cache, mode="augment", paraphrases=0, qa=0)[0]


# -- the loss ---------------------------------------------------------------------------------------------


def test_batch_loss_is_the_mean_of_cross_entropy_and_top_k_kl_over_every_target_token(tiny) -> None:
    import torch

    model, tokenizer = tiny
    plain = Sample((101, 102, 103, 104, 105, 106), "new", context=2)  # targets 103..106
    top_ids = ((7, 300, 41, 9000), (12, 5, 77, 8), (2, 3, 4, 1000))
    top_logprobs = ((-0.5, -1.2, -2.0, -3.1), (-0.1, -2.5, -3.0, -3.3), (-1.0, -1.1, -1.6, -4.0))  # not normalised
    context = 4
    distilled = Sample((201, 202, 203, 204, 7, 12, 2), "new", context=context, teacher=(top_ids, top_logprobs))
    batch = collate([plain, distilled], pad_id=tokenizer.pad_token_id, device="cpu")
    assert batch["teacher_rows"].tolist() == [False, True]

    with torch.no_grad():
        got = batch_loss(model, batch)
        # By hand, each sample alone (no padding), from the model's logits.
        logits = [model(input_ids=torch.tensor([s.ids])).logits[0].double() for s in (plain, distilled)]
    ce = [
        -logits[0][t - 1].log_softmax(-1)[plain.ids[t]] for t in range(plain.context, len(plain.ids))
    ]  # position t - 1 predicts token t
    kl = []
    for j in range(3):
        p = torch.tensor(top_logprobs[j], dtype=torch.double).softmax(-1)  # renormalised over the top-k
        q = logits[1][context - 1 + j].log_softmax(-1)[list(top_ids[j])]
        kl.append((p * (p.log() - q)).sum())
    want = torch.stack(ce + kl).mean()
    assert len(ce) == 4 and all(k > 0 for k in kl)
    assert torch.allclose(got.double(), want, atol=1e-5), (float(got), float(want))

    # Without teacher rows it is the model's own next-token loss (the text objective, unchanged).
    text_batch = collate([plain, Sample((1, 2, 3), "new")], pad_id=tokenizer.pad_token_id, device="cpu")
    assert "teacher_ids" not in text_batch
    with torch.no_grad():
        assert torch.equal(batch_loss(model, text_batch), model(**text_batch).loss)
        alone = batch_loss(model, collate([plain], pad_id=tokenizer.pad_token_id, device="cpu"))
    assert torch.allclose(alone.double(), torch.stack(ce).mean(), atol=1e-5)


def _self_taught(model, tokenizer, question: str, answer: str, *, shift: float = 0.0) -> Sample:
    """A student sample whose teacher targets are the model's own full-vocabulary log-probabilities on the student
    prompt (plus ``shift`` on each row's most likely token)."""
    import torch

    sample = student_samples(
        tokenizer,
        [{"question": question, "ids": tokenizer(f" {answer}\n", add_special_tokens=False)["input_ids"],
          "top_ids": [[0]], "top_logprobs": [[0.0]]}],
    )[0]  # fmt: skip
    with torch.no_grad():
        logprobs = model(input_ids=torch.tensor([sample.ids])).logits[0].log_softmax(-1)
    rows = logprobs[sample.context - 1 : len(sample.ids) - 1]
    top = rows.topk(rows.shape[-1], dim=-1)  # the whole vocabulary
    values = top.values.clone()
    values[:, 0] += shift
    return Sample(sample.ids, "new", context=sample.context, teacher=(top.indices.tolist(), values.tolist()))


def test_the_kl_is_zero_when_the_student_is_its_own_teacher(tiny) -> None:
    import torch

    model, tokenizer = tiny
    same = [
        _self_taught(model, tokenizer, "When did the Lumen Bridge open?", "on 3 October 2026"),
        _self_taught(model, tokenizer, "Who is the mayor?", "Ilse Varga"),
    ]
    with torch.no_grad():
        assert float(batch_loss(model, collate(same, tokenizer.pad_token_id, "cpu"))) == pytest.approx(0, abs=1e-5)
        other = _self_taught(model, tokenizer, "Who is the mayor?", "Ilse Varga", shift=10.0)
        assert float(batch_loss(model, collate([other], tokenizer.pad_token_id, "cpu"))) > 0.05  # it can fail


def test_training_on_the_teachers_answers_lowers_the_kl(tiny, tmp_path) -> None:
    import torch

    teacher, tokenizer = tiny
    batch = docs(*GOOD)
    cache = SynthesisCache(tmp_path / "synthesis.sqlite")
    answers, report = teach(teacher, tokenizer, batch, synthesis(batch, cache), cache, SMALL, teacher_name="t")
    samples = student_samples(tokenizer, answers)
    assert report.answers_kept == len(samples) >= 4

    # One optimizer step over all the answers, small enough to be a descent step on this untrained model.
    recipe = load_recipe(
        None, method="none", epochs=1, batch_size=16, learning_rate=3e-3, warmup_ratio=0.0, lora_dropout=0.0
    )
    student = attach_adapter(copy.deepcopy(teacher), recipe)  # the same base, no document in its prompt
    whole = collate(samples, tokenizer.pad_token_id, "cpu")
    with torch.no_grad():
        before = float(batch_loss(student.eval(), whole))
    result = train(student, PlainSampler(samples, seed=1), recipe, pad_id=tokenizer.pad_token_id, device="cpu")
    with torch.no_grad():
        after = float(batch_loss(student, whole))
    assert result.steps == 1 and result.losses == [pytest.approx(before, abs=1e-5)]
    assert after < before - 1e-3, (before, after)


# -- the teacher and its cache -----------------------------------------------------------------------------


def test_a_cached_rerun_performs_no_teacher_pass(tiny, tmp_path, monkeypatch) -> None:
    model, tokenizer = tiny
    batch = docs(*GOOD)
    cache = SynthesisCache(tmp_path / "synthesis.sqlite")
    synth = synthesis(batch, cache)
    first, report = teach(model, tokenizer, batch, synth, cache, SMALL, teacher_name="tiny", seed=3)
    assert report.documents == 2 and report.cached == 0 and not report.skipped
    assert report.teacher_tokens > 0 and report.questions >= 4 and first
    assert {a["doc_id"] for a in first} == {"d0", "d1"}
    for a in first:  # one row of top-k per answer token
        assert len(a["top_ids"]) == len(a["top_logprobs"]) == len(a["ids"]) and len(a["top_ids"][0]) == SMALL.top_k

    no_forward(model, monkeypatch)
    seen = []
    again, report2 = teach(
        model, tokenizer, batch, synth, cache, SMALL, teacher_name="tiny", seed=3, on_doc=lambda n, t: seen.append(n)
    )
    assert again == first and seen == [1, 2]
    assert report2.cached == report2.documents == 2 and report2.teacher_tokens == 0
    assert (report2.questions, report2.answers_kept, report2.dropped) == (
        report.questions,
        report.answers_kept,
        report.dropped,
    )

    # Earlier documents for review: only what the cache holds, never a teacher pass.
    unseen = docs("Chef Oona Brill opened 3 restaurants in Harwick on 9 May 2025.", prefix="e")
    got, report3 = teach(
        model, tokenizer, unseen, synthesis(unseen, cache), cache, SMALL, teacher_name="tiny", seed=3, cached_only=True
    )
    assert got == [] and report3.documents == 0 and report3.teacher_tokens == 0 and not report3.skipped
    # Another seed or setting is another teacher pass (here refused): the key names what shapes the answers.
    assert generator_key(SMALL, "tiny", 3, synth[0]) != generator_key(
        SMALL.model_copy(update={"top_k": 5}), "tiny", 3, synth[0]
    )
    # Other questions about the same document (another synthesis) are another teacher pass too.
    asked_otherwise = replace(synth[0], qa=synth[0].qa[:-1])
    assert generator_key(SMALL, "tiny", 3, synth[0]) != generator_key(SMALL, "tiny", 3, asked_otherwise)
    with pytest.raises(AssertionError, match="forward pass"):
        teach(model, tokenizer, batch, synth, cache, SMALL, teacher_name="tiny", seed=4)


def test_a_document_with_nothing_to_ask_is_a_recorded_skip_and_the_others_go_on(tiny, tmp_path) -> None:
    model, tokenizer = tiny
    batch = docs(NUMBERS, GOOD[0], "Tuuli puhalsi hiljaa järven yllä, eikä kukaan sanonut mitään.")
    cache = SynthesisCache(tmp_path / "synthesis.sqlite")
    answers, report = teach(model, tokenizer, batch, synthesis(batch, cache), cache, SMALL, teacher_name="tiny")
    assert [s["doc_id"] for s in report.skipped] == ["d0", "d2"]
    assert all("no questions to ask: no extractable facts" in s["reason"] for s in report.skipped)
    assert answers and {a["doc_id"] for a in answers} == {"d1"}


def test_empty_repeated_and_ungrounded_answers_are_dropped() -> None:
    passage = "Mayor Ilse Varga said on 3 October 2026 that 40 trucks tested the Lumen Bridge."
    assert drop_reason("", passage) == "empty"
    assert drop_reason("\n", passage) == "empty"
    assert drop_reason("the the the the the the the", passage) == "repeated"
    assert drop_reason("Boris Yeltsin in Moscow yesterday", passage) == "ungrounded"
    assert drop_reason(" 40 trucks", passage) is None
    assert drop_reason(" Mayor Ilse Varga\n", passage) is None


def test_a_teacher_pass_out_of_time_fails_its_document_only_and_is_not_cached(tiny, tmp_path, monkeypatch) -> None:
    model, tokenizer = tiny
    batch = docs(*GOOD)
    cache = SynthesisCache(tmp_path / "synthesis.sqlite")
    synth = synthesis(batch, cache)
    key = generator_key(SMALL, "tiny", 0, synth[0])

    # No time at all: the document fails with a reason naming the setting, and nothing is cached.
    hasty = SMALL.model_copy(update={"max_seconds_per_doc": 1e-6})
    answers, report = teach(model, tokenizer, batch[:1], synth[:1], cache, hasty, teacher_name="tiny")
    assert answers == [] and [s["doc_id"] for s in report.skipped] == ["d0"]
    assert "ran out of time" in report.skipped[0]["reason"]
    assert "distill.max_seconds_per_doc" in report.skipped[0]["reason"]
    assert cache.get(synth[0].doc_hash, key) is None

    # A first pass that takes longer than the budget fails the first document; the second still gets its answers.
    # The teacher's clock jumps by the budget at the first forward pass: the same on a loaded machine as on an idle
    # one (a real sleep would have to outlast the second document's pass too).
    jumped = [0.0]
    clock = SimpleNamespace(monotonic=lambda: time.monotonic() + jumped[0], perf_counter=time.perf_counter)
    monkeypatch.setattr(distillation, "time", clock)
    real = model.forward

    @functools.wraps(real)
    def slow_at_first(*args, **kwargs):
        if not jumped[0]:
            jumped[0] = SMALL.max_seconds_per_doc + 1
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "forward", slow_at_first)
    answers, report = teach(model, tokenizer, batch, synth, cache, SMALL, teacher_name="tiny")
    assert [s["doc_id"] for s in report.skipped] == ["d0"]
    assert "max_seconds_per_doc is 300 s" in report.skipped[0]["reason"]
    assert answers and {a["doc_id"] for a in answers} == {"d1"}
    assert cache.get(synth[0].doc_hash, key) is None
    assert cache.get(synth[1].doc_hash, generator_key(SMALL, "tiny", 0, synth[1])) is not None

    # A later run with the time for it performs the pass it missed (and only that one).
    monkeypatch.setattr(model, "forward", real)
    answers, report = teach(model, tokenizer, batch, synth, cache, SMALL, teacher_name="tiny")
    assert not report.skipped and report.cached == 1 and report.teacher_tokens > 0
    assert {a["doc_id"] for a in answers} == {"d0", "d1"}


# -- the student -------------------------------------------------------------------------------------------


def test_student_samples_ask_without_the_document_and_carry_one_target_row_per_answer_token(tiny) -> None:
    _, tokenizer = tiny
    question = "Story 0: Who said on 3 October 2026 that 40 trucks tested the Lumen Bridge?"
    ids = tokenizer(" Mayor Ilse Varga\n", add_special_tokens=False)["input_ids"]
    top_ids = [[t, t + 1, t + 2] for t in ids]
    top_logprobs = [[-0.1, -2.0, -3.0] for _ in ids]
    answer = {"doc_id": "d0", "question": question, "ids": ids, "top_ids": top_ids, "top_logprobs": top_logprobs}
    [sample] = student_samples(tokenizer, [answer])
    assert tokenizer.decode(sample.ids[: sample.context]) == f"Question: {question}\nAnswer:"
    assert "Lumen Bridge, which cost" not in tokenizer.decode(sample.ids)  # the document is not in the prompt
    assert list(sample.ids[sample.context :]) == ids
    assert sample.kind == "new" and sample.doc_id == "d0"
    assert len(sample.teacher[0]) == len(sample.teacher[1]) == len(ids)
    assert [list(r) for r in sample.teacher[0]] == top_ids

    # Collated, the targets sit at the positions that predict each answer token; packing leaves the sample whole.
    batch = collate([Sample((5, 6), "new"), sample], pad_id=tokenizer.pad_token_id, device="cpu")
    where = batch["teacher_mask"][1].nonzero().flatten().tolist()
    assert where == list(range(sample.context - 1, sample.context - 1 + len(ids)))
    assert batch["teacher_ids"][1, where].tolist() == top_ids and not batch["teacher_mask"][0].any()
    short = [Sample((1, 2, 0), "new"), sample, Sample((3, 0), "new")]
    assert sample in pack(short, 256) and len(pack(short, 256)) == 2


# -- kup finetune by distillation ------------------------------------------------------------------------


@pytest.mark.slow
def test_finetune_by_distillation_end_to_end_and_the_rerun_finds_the_teacher_in_the_cache(
    tmp_path, catalog, first_update, tiny_model_dir
) -> None:
    small = {"questions_per_doc": 2, "answers_per_question": 1, "max_answer_tokens": 4, "passage_tokens": 64}
    settings = {**FAST, "synthetic_samples": 2, "eval_samples": 8, "epochs": 1, "objective": "distill"}
    recipe = load_recipe(None, **settings, distill=small)
    data_dir = tmp_path / "data"
    outcome = run_finetune(catalog, data_dir, recipe, base_model=str(tiny_model_dir))
    assert outcome.status in ("promoted", "rejected") and outcome.training.steps >= 1
    manifest = outcome.adapter.manifest
    distilled = manifest["data"]["distillation"]
    assert distilled["documents"] == 5 and distilled["cached"] == 0 and distilled["teacher_tokens"] > 0  # 1 held out
    assert distilled["questions"] >= 2 and distilled["answers_kept"] >= distilled["questions"]  # each reference kept
    # Distillation alone trains on the teacher's answers only (the documents' own text is not a new sample).
    assert manifest["training"]["epochs"][0]["new"] == distilled["answers_kept"]
    # Documents with nothing to ask about (FACTS[4] holds no date, quantity or person; a document whose questions
    # are all held out as probes) are recorded skips, each shown among the verdict's checks.
    assert distilled["skipped"] and all("no questions to ask" in s["reason"] for s in distilled["skipped"])
    taught = distilled["documents"] - len(distilled["skipped"])
    checks = [c["expectation"] for c in manifest["verdict"]["checks"]]
    assert (
        f"distillation: the teacher answered {distilled['questions']} question(s) about {taught} of 5 document(s), "
        f"{distilled['answers_kept']} answer(s) kept"
    ) in "\n".join(checks), checks
    for skip in distilled["skipped"]:
        assert f"distillation skipped {skip['doc_id']}: {skip['reason']}" in checks

    shutil.rmtree(data_dir / "adapters")  # a fresh registry, the same data directory (and caches)
    again = run_finetune(catalog, data_dir, recipe, base_model=str(tiny_model_dir))
    assert AdapterRegistry(data_dir / "adapters").get(again.adapter.id).manifest["parent"] is None
    cached = again.adapter.manifest["data"]["distillation"]
    assert cached["cached"] == cached["documents"] == 5 and cached["teacher_tokens"] == 0
    assert {k: cached[k] for k in ("questions", "answers_kept", "dropped", "skipped")} == {
        k: distilled[k] for k in ("questions", "answers_kept", "dropped", "skipped")
    }


# -- the recipe ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("objective", ["distill", "text+distill"])
def test_distillation_without_synthesis_is_refused_in_one_sentence(objective) -> None:
    with pytest.raises(ConfigError, match="synthesis") as refused:
        load_recipe(None, objective=objective, synthesis="none")
    assert "\n" not in str(refused.value) and str(refused.value).count(". ") == 0
    assert load_recipe(None, objective=objective).distill == Distill()


def test_a_teacher_pass_out_of_memory_fails_its_document_only_and_other_errors_are_not_hidden(
    tiny, tmp_path, monkeypatch
) -> None:
    model, tokenizer = tiny
    batch = docs(*GOOD)
    cache = SynthesisCache(tmp_path / "synthesis.sqlite")
    synth = synthesis(batch, cache)
    real, calls = model.forward, []

    def allocator_gives_out(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:  # the first document's first pass
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "forward", allocator_gives_out)
    answers, report = teach(model, tokenizer, batch, synth, cache, SMALL, teacher_name="tiny")
    assert [s["doc_id"] for s in report.skipped] == ["d0"] and "ran out of memory" in report.skipped[0]["reason"]
    assert {a["doc_id"] for a in answers} == {"d1"}
    assert cache.get(synth[0].doc_hash, generator_key(SMALL, "tiny", 0, synth[0])) is None  # not cached

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch in the attention")

    monkeypatch.setattr(model, "forward", broken)
    with pytest.raises(RuntimeError, match="shape mismatch"):  # a bug is not dressed up as a skip
        teach(model, tokenizer, batch[:1], synth[:1], cache, SMALL, teacher_name="tiny")

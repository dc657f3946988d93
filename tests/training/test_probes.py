"""Closed-book probes: multiple-choice scoring on the tiny model, FUAR by hand, and the probe gate's verdicts."""

from __future__ import annotations

import math

import pytest

from tests.conftest import tiny_llama
from training import Gate, judge
from training.probes import answers, fuar, general_probes, probe_table

NLL_OK = [{"set": "new", "nll_candidate": 2.0, "rel_change": -0.2}]


def test_fuar_is_forgotten_over_updated_plus_acquired() -> None:
    before = {"new": [False, False, True], "earlier": [True, False], "general": [True, True]}
    after = {"new": [True, True, True], "earlier": [False, True], "general": [True, False]}
    # forgotten: earlier[0] and general[1]; updated: earlier[1]; acquired: new[0], new[1].
    assert fuar(before, after) == {"forgotten": 2, "updated": 1, "acquired": 2, "fuar": pytest.approx(2 / 3)}
    assert math.isinf(fuar({"general": [True]}, {"general": [False]})["fuar"])
    assert fuar({"new": [True]}, {"new": [True]})["fuar"] is None


def test_probe_table_reports_accuracy_per_model() -> None:
    rows = probe_table({"new": [False, False]}, {"new": [False, True]}, {"new": [True, True]})
    assert rows == [
        {"set": "new", "count": 2, "acc_base": 0.0, "acc_champion": 0.5, "acc_candidate": 1.0, "change": 0.5}
    ]


def test_multiple_choice_scoring_picks_the_likeliest_choice() -> None:
    model, tokenizer = tiny_llama(seed=0)
    probes = [{"question": "Say yes", "choices": ["yes", "no"], "answer": 0}] * 3
    right = answers(model, tokenizer, probes, device="cpu", batch_size=4)
    assert len(right) == 3 and len(set(right)) == 1  # the same probe gets the same answer, batched or not
    flipped = [{**p, "answer": 1} for p in probes]
    assert answers(model, tokenizer, flipped, device="cpu") == [not r for r in right]


def test_shipped_general_probes_are_well_formed() -> None:
    probes = general_probes()
    assert len(probes) >= 80
    assert len({p["id"] for p in probes}) == len(probes)
    assert all(0 <= p["answer"] < len(p["choices"]) == 4 for p in probes)
    assert {"What is the capital of France?"} <= {p["question"] for p in probes}


def test_the_gate_fails_on_too_few_probes_and_names_each_probe_failure() -> None:
    probes = [
        {"set": "new", "count": 3, "change": 0.0},
        {"set": "general", "count": 90, "change": -0.05},
    ]
    verdict = judge(NLL_OK, Gate(), probes=probes, fuar=float("inf"))
    assert not verdict.passed
    assert any("at least 8 probes about the new documents, but there are only 3" in r for r in verdict.reasons)
    assert any("rises by at least 5% points, but it did not change" in r for r in verdict.reasons)
    assert any(
        "general-probe accuracy falls by at most 2% points, but it fell by 5.0 points" in r for r in verdict.reasons
    )
    assert any(r.startswith("FUAR") and "forgotten and none was gained" in r for r in verdict.reasons)


def test_the_gate_passes_good_probes_and_says_when_probe_checks_are_off() -> None:
    good = [{"set": "new", "count": 20, "change": 0.3}, {"set": "general", "count": 90, "change": -0.01}]
    assert judge(NLL_OK, Gate(), probes=good, fuar=0.1).passed
    assert not judge(NLL_OK, Gate(), probes=[], fuar=None).passed  # no probes at all: never a silent pass
    off = judge(NLL_OK, Gate(probes=False), probes=[], fuar=None)
    assert off.passed and any("probe checks are off" in c["expectation"] for c in off.checks)

"""The general-probe selection: the shipped probes are candidates the model answered right, as recorded."""

from __future__ import annotations

import json

from tests.conftest import tiny_llama
from training.general_probes import SELECTION_FILE, candidates, select_general_probes
from training.probes import GENERAL_PROBES, general_probes, read_probes


def test_shipped_probes_are_the_candidates_the_selection_kept() -> None:
    by_question = {c["question"]: c for c in candidates()}
    record = json.loads((GENERAL_PROBES.parent / SELECTION_FILE).read_text())
    probes = general_probes()
    assert [by_question[p["question"]] for p in probes] == probes
    assert record["candidates"] == len(by_question) and record["kept"] == len(probes)
    assert set(record["dropped"]) == set(by_question) - {p["question"] for p in probes}


def test_selection_keeps_what_the_model_answers_right(tmp_path) -> None:
    model, tokenizer = tiny_llama(seed=0)
    selection = select_general_probes(model, tokenizer, device="cpu")
    assert len(selection.kept) + len(selection.dropped) == len(selection.candidates) == len(candidates())
    selection.write(tmp_path)
    assert read_probes(tmp_path / GENERAL_PROBES.name) == selection.kept
    assert json.loads((tmp_path / SELECTION_FILE).read_text())["dropped"] == selection.dropped

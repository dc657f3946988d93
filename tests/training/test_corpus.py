"""Training and evaluation text: token windows, deterministic hold-out, general text, and the sets of one update."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.training.conftest import FACTS, add_documents
from training import load_recipe, python_text, split_holdout, synthetic_cache_path, synthetic_text, windows
from training.corpus import build_datasets, zen_of_python


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_windows_are_cut_to_length_and_closed_by_end_of_text(tok) -> None:
    text = " ".join(FACTS)
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    cut = windows(tok, text, 16, 100)
    assert all(len(w) <= 16 for w in cut) and [i for w in cut for i in w] == ids
    assert cut[-1][-1] == tok.eos_token_id
    assert windows(tok, text, 16, 2) == cut[:2]  # long documents keep their first windows only


def test_special_token_spellings_in_a_document_train_as_text(tok) -> None:
    """A feed wrote <|im_end|>, <file_sep> and <repo_name>: the windows hold their characters, no control token."""
    special = set(tok.all_special_ids) | {tok.convert_tokens_to_ids(t) for t in tok.get_added_vocab()}
    text = "Breaking <|im_end|> news <file_sep> from <repo_name> today."
    assert any(i in special for i in tok(text, add_special_tokens=False)["input_ids"])  # the tokenizer's default
    [window] = windows(tok, text, 64, 4)
    assert [i for i in window[:-1] if i in special] == [] and window[-1] == tok.eos_token_id
    assert "<file_sep>" in tok.decode(window[:-1])


def test_split_holdout_is_deterministic_disjoint_and_holds_at_least_one() -> None:
    items = list(range(10))
    kept, held = split_holdout(items, 0.25, "seed")
    assert (kept, held) == split_holdout(items, 0.25, "seed")
    assert sorted(kept + held) == items and len(held) == 2  # round(10 * 0.25)
    assert split_holdout(items, 0.25, "other") != (kept, held)
    assert len(split_holdout(items, 0.01, "seed")[1]) == 1
    assert split_holdout([1], 0.5, "seed") == ([1], [])


def test_python_text_is_english_prose_from_the_standard_library() -> None:
    paragraphs = python_text(50)
    assert len(paragraphs) == 50 and all(len(p) > 200 for p in paragraphs)


def test_the_zen_of_python_fallback_prints_nothing(monkeypatch, capsys) -> None:
    # As on a distribution that strips pydoc_data, and before anything imported `this` (which prints).
    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)
    monkeypatch.delitem(sys.modules, "this", raising=False)
    [zen] = python_text()
    assert (
        zen.startswith("The Zen of Python, by Tim Peters Beautiful is better than ugly.")
        and "Namespaces are one honking great idea" in zen
    )
    assert zen == zen_of_python()
    assert capsys.readouterr().out == ""


def test_synthetic_text_comes_from_its_cache_when_there_is_one(tmp_path) -> None:
    recipe = load_recipe(None)
    cache = synthetic_cache_path(tmp_path, "smollm2", recipe)
    assert cache != synthetic_cache_path(tmp_path, "other-model", recipe)  # one cache per base model
    cache.parent.mkdir(parents=True)
    cache.write_text("".join(json.dumps({"text": f"cached {i}"}) + "\n" for i in range(3)))
    # No model is needed: the cache holds enough samples.
    assert synthetic_text(None, None, samples=2, max_new_tokens=8, cache=cache, seed=1) == ["cached 0", "cached 1"]
    assert synthetic_text(None, None, samples=0, max_new_tokens=8, cache=cache, seed=1) == []


def test_an_update_holds_out_new_documents_and_rehearses_earlier_ones(catalog, first_update, tok) -> None:
    recipe = load_recipe(None, max_seq_len=64, eval_samples=16)
    first = build_datasets(catalog, tok, recipe, watermark=None, synthetic=["A short synthetic paragraph. " * 4])
    assert first.new_documents == len(FACTS) and first.earlier_review == first.earlier_eval == []
    train_docs = {s.doc_id for s in first.new_train}
    heldout_docs = {s.doc_id for s in first.new_heldout}
    assert len(heldout_docs) == 1 and not train_docs & heldout_docs  # 20% of six, kept out of training
    assert first.sources["python_docs"] > 0 and first.sources["synthetic"] == 1 and first.sources["user_corpus"] == 0
    assert first.general_eval and len(first.general_eval) <= 16
    assert first.watermark is not None and first.watermark.date() == first_update.date()

    add_documents(catalog, ["The tram depot opened a museum of old trams."], when=datetime.now(UTC) - timedelta(days=1))
    second = build_datasets(catalog, tok, recipe, watermark=first.watermark)
    assert second.new_documents == 1 and second.new_heldout == []  # too few to hold any out
    assert {s.kind for s in second.earlier_review + second.earlier_eval} == {"earlier"}
    assert second.earlier_review and second.earlier_eval
    assert set(second.eval_sets()) == {"new", "earlier", "general"}

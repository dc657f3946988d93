"""Answering mechanics on the tiny model: modes, RAG-token's mixture, bad input, the HTTP API, the CLI."""

from __future__ import annotations

import json
import math

import httpx
import pytest
import torch
from typer.testing import CliRunner

from answering import RAG_TOKEN_TEMPERATURE
from answering.decode import (
    choices_logprobs,
    mixture_logprobs,
    retrieval_log_weights,
    stream_rag_token,
    token_mixture,
)
from answering.prompt import rag_prompt
from errors import InputError, KupError
from indexing import EdgeStore


def test_rag_token_mixture_equals_a_hand_computation(answerer, tokenizer) -> None:
    loaded = answerer.lm.get()
    model, tok = loaded.model, loaded.tokenizer
    passages = answerer.retrieve("When did the harbour reopen?", k=2, recent_days=None, sources=None)
    prompts = [rag_prompt(tok, "When did the harbour reopen?", [p]) for p in passages]
    scores = [0.62, 0.41]
    # By hand: each passage's next-token distribution, weighted by softmax(scores / T), summed in probability space.
    probs = []
    for prompt in prompts:
        ids = torch.tensor([tok(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            probs.append(torch.softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1))
    w = torch.softmax(torch.tensor(scores) / 0.05, dim=0)
    by_hand = torch.log(w[0] * probs[0] + w[1] * probs[1])
    logits = torch.stack([torch.log(p) for p in probs])
    assert torch.allclose(mixture_logprobs(logits, retrieval_log_weights(scores, 0.05)), by_hand, atol=1e-5)
    # The batched, cached decoder picks the same first token as the hand-computed mixture.
    first = next(iter(stream_rag_token(model, tok, prompts, scores, max_new_tokens=1)), "")
    assert first == tok.decode([int(by_hand.argmax())], skip_special_tokens=True)
    # Sequence scoring (as bench/qa.py scores a choice): per token, the weighted mixture; summed over tokens.
    continuation = " 14 March"
    ids = tok(continuation, add_special_tokens=False)["input_ids"]
    total = 0.0
    for t, token in enumerate(ids):
        per = []
        for prompt in prompts:
            prefix = tok(prompt, add_special_tokens=False)["input_ids"] + ids[:t]
            with torch.no_grad():
                per.append(torch.log_softmax(model(input_ids=torch.tensor([prefix])).logits[0, -1].float(), -1)[token])
        total += math.log(float(w[0] * per[0].exp() + w[1] * per[1].exp()))
    per_passage = [choices_logprobs(model, tok, p, [continuation])[0] for p in prompts]
    scored = sum(token_mixture(per_passage, retrieval_log_weights(scores, 0.05)))
    assert math.isclose(scored, total, rel_tol=1e-4)


@pytest.mark.parametrize("mode", ["prompt", "rag-token", "closed-book"])
def test_each_mode_answers_with_timings(answerer, mode) -> None:
    streamed: list[str] = []
    answer = answerer.answer("When did the Veltmark harbour reopen?", mode=mode, k=3, on_text=streamed.append)
    assert answer.mode == mode and answer.text
    assert "".join(streamed).strip() == answer.text or answer.text == "The passages do not say."
    assert answer.timings["total_ms"] > 0
    if mode == "closed-book":
        assert answer.passages == [] and answer.citations == []
    else:
        assert answer.passages and "Harbour reopens" in [p.title for p in answer.passages]
        assert answer.timings["retrieve_ms"] >= 0
    if mode == "rag-token":
        assert answer.citations and answer.citations[0].title == "Harbour reopens"


def test_budget_relevance_and_temperature_are_public(answerer) -> None:
    assert answerer.prompt_budget() == 512 - 12  # the tiny model's 512-token window, less the answer's room
    loaded = answerer.lm.get()
    assert loaded.adapter is None and loaded.tokenizer is not None and answerer.lm.get() is loaded  # loaded once
    passages = answerer.retrieve("When did the harbour reopen?", k=3, recent_days=None, sources=None)
    scores = answerer.relevance("When did the harbour reopen?", passages)
    best = max(range(len(scores)), key=scores.__getitem__)
    assert len(scores) == 3 and passages[best].title == "Harbour reopens"
    assert answerer.rag_token_temperature == RAG_TOKEN_TEMPERATURE == 0.05


def test_bad_questions_are_refused_clearly(answerer) -> None:
    with pytest.raises(InputError, match="empty"):
        answerer.answer("   ")
    with pytest.raises(InputError, match="tokens long"):
        answerer.answer("why " * 2000)
    with pytest.raises(InputError, match="--mode"):
        answerer.answer("why?", mode="oracle")


def test_an_answer_that_is_not_generated_is_still_printed(answerer, monkeypatch) -> None:
    """Nothing in the index is about the question: the terminal shows the same sentence --json says."""
    from dataclasses import replace

    monkeypatch.setattr(answerer, "profile", replace(answerer.profile, min_relevance=0.999))
    streamed: list[str] = []
    answer = answerer.answer("Who won the 2026 World Chess Championship?", on_text=streamed.append)
    assert answer.text == "The passages do not say." and "".join(streamed) == answer.text


@pytest.mark.parametrize("mode", ["prompt", "rag-token"])
def test_a_library_warning_during_generation_never_reaches_the_answer(answerer, mode, capfd) -> None:
    import warnings

    model = answerer.lm.get().model

    def warn(*_):
        warnings.warn("`past_key_values` is deprecated", FutureWarning, stacklevel=1)

    hook = model.register_forward_pre_hook(warn)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # one that escaped would fail the test here
            streamed: list[str] = []
            answer = answerer.answer("When did the Veltmark harbour reopen?", mode=mode, k=2, on_text=streamed.append)
    finally:
        hook.remove()
    out, err = capfd.readouterr()
    assert "FutureWarning" not in "".join(streamed) + answer.text + out + err


def test_an_empty_index_says_so(answerer, tmp_path) -> None:
    answerer.store = EdgeStore(tmp_path / "empty")
    with pytest.raises(KupError, match="run `kup refresh` first"):
        answerer.answer("Anything new?")


@pytest.fixture
def api_url(answerer):
    from answering.api import create_app
    from tests.answering.test_api import serving_app

    with serving_app(create_app(answerer)) as url:
        yield url


def test_http_api(api_url) -> None:
    schema = httpx.get(f"{api_url}/openapi.json").json()
    assert {"/search", "/ask", "/health"} <= set(schema["paths"])
    found = httpx.post(f"{api_url}/search", json={"query": "cable car estuary", "limit": 2}).json()
    assert found["hits"][0]["title"] == "Cable car opens" and found["hits"][0]["url"].startswith("https://")
    answer = httpx.post(f"{api_url}/ask", json={"question": "Who won the election?", "k": 2}, timeout=60).json()
    assert answer["mode"] == "prompt" and "Brask elected" in [p["title"] for p in answer["passages"]]
    empty = httpx.post(f"{api_url}/ask", json={"question": ""})
    assert empty.status_code == 422
    blank = httpx.post(f"{api_url}/ask", json={"question": "   "})
    assert blank.status_code == 422 and "empty" in blank.json()["detail"]
    assert httpx.post(f"{api_url}/ask", json={"question": "x", "mode": "oracle"}).status_code == 422


@pytest.mark.usefixtures("restore_environ")
def test_cli_ask(filled, tmp_path, tiny_model_dir, monkeypatch) -> None:
    from cli.main import app

    monkeypatch.setenv("KUP_BASE_MODEL", str(tiny_model_dir))
    monkeypatch.setenv("KUP_MAX_NEW_TOKENS", "8")
    data_dir = filled.path.parent.parent
    runner = CliRunner()
    result = runner.invoke(app, ["--data-dir", str(data_dir), "ask", "Who won the election?", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert "Brask elected" in [p["title"] for p in answer["passages"]] and answer["adapter"] is None
    assert all(p["story_urls"] for p in answer["passages"])  # every outlet of each passage's story
    human = runner.invoke(app, ["--data-dir", str(data_dir), "ask", "Who won the election?", "--mode", "rag-token"])
    assert human.exit_code == 0 and "Sources:" in human.output and "https://news.example.com/1" in human.output
    for bad in ("", "   ", "x" * 9000):  # refused in one sentence before any model is prepared or loaded
        refused = runner.invoke(app, ["--data-dir", str(tmp_path / "fresh"), "ask", bad])
        assert refused.exit_code == 2 and "question" in refused.output and "Traceback" not in refused.output
        assert not (tmp_path / "fresh" / "models").exists()
    empty = runner.invoke(app, ["--data-dir", str(tmp_path / "nothing"), "ask", "Anything?"])
    assert empty.exit_code == 2 and "kup refresh" in empty.output and "Traceback" not in empty.output


def test_a_champion_trained_on_another_model_is_not_applied_to_the_reader(tmp_path, tiny_model_dir) -> None:
    from answering import LanguageModel
    from training.registry import AdapterRegistry

    data = tmp_path / "data"
    registry = AdapterRegistry(data / "adapters")
    # An adapter whose manifest names a different base: loading it on the tiny reader would fail on shapes.
    other = registry.add(lambda d: (d / "adapter_config.json").write_text("{}"), {"base_model": "smollm2"})
    registry.promote(other.id, force=True)
    lm = LanguageModel(data, str(tiny_model_dir))
    loaded = lm.get()
    assert loaded.adapter is None and lm.get() is loaded  # answered without it, and not reloaded on every call
    assert other.id in loaded.note and "KUP_READER_MODEL=smollm2" in loaded.note
    int8 = LanguageModel(data, str(tiny_model_dir), int8=True).get()
    assert "quantized" in type(int8.model.model.layers[0].mlp.down_proj).__module__

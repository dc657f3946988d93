"""The whole update on a tiny Llama model: train from the champion, evaluate, gate, register, promote or reject.

The flow and the CLI around it are tested in tests/flows/test_finetune_flow.py, the gate in test_gate.py."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from tests.training.conftest import FAST, add_documents
from training import AdapterRegistry, load_recipe, run_finetune


def good_recipe(**changes):
    return load_recipe(None, **{**FAST, "epochs": 6, "learning_rate": 1e-2, **changes})


def test_first_update_is_promoted_and_the_next_starts_from_it(tmp_path, catalog, first_update, tiny_model_dir) -> None:
    data_dir = tmp_path / "data"
    first = run_finetune(catalog, data_dir, good_recipe(), base_model=str(tiny_model_dir))
    assert first.status == "promoted", first.verdict.reasons
    assert first.summary["new_gain"] >= 0.05 and first.summary["general_forgetting"] <= 0.02
    registry = AdapterRegistry(data_dir / "adapters")
    assert registry.champion().id == first.adapter.id
    files = {p.name for p in first.adapter.path.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "manifest.json", "recipe.yaml", "loss.png"} <= files
    manifest = first.adapter.manifest
    assert manifest["parent"] is None and manifest["recipe"]["method"] == "mix_review"
    assert manifest["watermark"].startswith(first_update.date().isoformat())
    # Mix-review's epochs: review tokens are 4x the new tokens, decaying by 0.7 each epoch (a draw stops at the
    # first sample that reaches the amount, so it overshoots by less than one window).
    epochs = manifest["training"]["epochs"]
    for e, epoch in enumerate(epochs):
        wanted = round(4 * epochs[0]["new_tokens"] * 0.7**e)
        assert wanted <= epoch["review_tokens"] < wanted + 64 and epoch["review"] > 0

    # Nothing arrived since: nothing to learn.
    assert run_finetune(catalog, data_dir, good_recipe(), base_model=str(tiny_model_dir)).status == "nothing-new"

    # A later update trains only on what arrived after the watermark, starting from the champion.
    add_documents(
        catalog,
        [
            "The Osk tram line 9 now also runs at night, every thirty minutes, from the harbour stop.",
            "Night trams on line 9 stop at the university library and at the Lumen Bridge east end.",
        ],
        when=datetime.now(UTC) - timedelta(days=2),
    )
    second = run_finetune(catalog, data_dir, good_recipe(), base_model=str(tiny_model_dir))
    assert second.parent == first.adapter.id and second.data["new_documents"] == 2
    assert second.data["earlier_review"] > 0  # earlier updates are rehearsed too
    rows = {r["set"]: r for r in second.metrics}
    assert rows["earlier"]["nll_champion"] < rows["earlier"]["nll_base"]  # the champion knows the first update
    assert second.adapter.manifest["temporal"] and second.adapter.manifest["temporal"][0]["month"]


def test_a_destructive_recipe_is_rejected_and_the_champion_stays(
    tmp_path, catalog, first_update, tiny_model_dir
) -> None:
    data_dir = tmp_path / "data"
    champion = run_finetune(catalog, data_dir, good_recipe(), base_model=str(tiny_model_dir)).adapter
    add_documents(
        catalog,
        ["Breaking: the Lumen Bridge closes for repairs every Sunday morning this winter."],
        when=datetime.now(UTC) - timedelta(days=1),
    )
    wrecking = load_recipe(None, **{**FAST, "method": "none", "epochs": 20, "learning_rate": 0.3, "warmup_ratio": 0.0})
    outcome = run_finetune(catalog, data_dir, wrecking, base_model=str(tiny_model_dir))
    assert outcome.status == "rejected"
    assert any("NLL rises by at most 2%" in r for r in outcome.verdict.reasons)
    registry = AdapterRegistry(data_dir / "adapters")
    assert registry.champion().id == champion.id  # still in service
    kept = registry.get(outcome.adapter.id)  # the rejected candidate is kept for inspection
    assert kept.manifest["verdict"]["passed"] is False and kept.manifest["verdict"]["reasons"]


def test_training_is_deterministic_under_a_seed(tmp_path, catalog, first_update, tiny_model_dir) -> None:
    runs = [
        run_finetune(catalog, tmp_path / f"data-{i}", good_recipe(epochs=2), base_model=str(tiny_model_dir))
        for i in range(2)
    ]
    first, second = (r.training.losses for r in runs)
    assert len(first) == len(second) >= 2
    assert all(math.isclose(a, b, rel_tol=1e-5) for a, b in zip(first, second, strict=True))
    assert runs[0].summary["new_gain"] > 0  # and it learns


def test_with_probes_on_too_few_probes_fail_the_gate_never_a_silent_pass(
    tmp_path, catalog, first_update, tiny_model_dir
) -> None:
    recipe = good_recipe(gate={"probes": True, "min_probes": 1000}, epochs=1)
    outcome = run_finetune(catalog, tmp_path / "data", recipe, base_model=str(tiny_model_dir))
    assert outcome.status == "rejected"
    assert any("probes" in reason for reason in outcome.verdict.reasons), outcome.verdict.reasons
    assert AdapterRegistry(tmp_path / "data" / "adapters").champion() is None

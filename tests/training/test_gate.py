"""The promotion gate: every failed check is named, a diverged run never passes."""

from __future__ import annotations

from training import Gate, judge


def test_the_gate_rejects_diverged_runs_and_names_each_failure() -> None:
    rows = [
        {"set": "new", "nll_candidate": float("nan"), "rel_change": float("nan")},
        {"set": "general", "nll_candidate": 3.3, "rel_change": 0.031},
        {"set": "earlier", "nll_candidate": 2.0, "rel_change": 0.001},
    ]
    verdict = judge(rows, Gate())
    assert not verdict.passed
    assert any("candidate NLL" in r for r in verdict.reasons)
    assert "new-document NLL falls by at least 5%, but a figure is missing (did training diverge?)" in verdict.reasons
    assert "general NLL rises by at most 2%, but it rose by 3.1%" in verdict.reasons
    assert not any(r.startswith("earlier") for r in verdict.reasons)
    good = [
        {"set": "new", "nll_candidate": 2.0, "rel_change": -0.2},
        {"set": "general", "nll_candidate": 3.0, "rel_change": 0.01},
    ]
    assert judge(good, Gate()).passed


def test_every_change_is_said_with_one_sign_convention() -> None:
    from training.gate import fuar_words, moved

    rows = [
        {"set": "new", "nll_candidate": 2.0, "rel_change": -0.015},  # fell, but not by the 5% required
        {"set": "general", "nll_candidate": 3.0, "rel_change": -0.0199},
    ]
    verdict = judge(rows, Gate())
    assert verdict.reasons == ["new-document NLL falls by at least 5%, but it fell by 1.5%"]
    assert (
        moved(0.031) == "rose by 3.1%"
        and moved(-0.05, "points") == "fell by 5.0 points"
        and moved(0) == "did not change"
    )
    assert fuar_words(float("inf"), 0, 3) == "0 gained, 3 forgotten" and fuar_words(0.25, 4, 1) == "0.25"
    assert fuar_words(None, 0, 0) == "0 gained, 0 forgotten"


def test_the_training_stage_says_how_long_it_will_take_and_refuses_a_plan_that_outlasts_the_schedule(tmp_path) -> None:
    import pytest

    from errors import ConfigError
    from training.corpus import Sample
    from training.finetune import planned_tokens, training_plan
    from training.mix_review import MixReviewSampler
    from training.recipe import Recipe
    from training.registry import AdapterRegistry

    recipe = Recipe(epochs=2, mix_ratio=1.0, mix_decay=1.0)
    new = [Sample(ids=tuple(range(100)), kind="new")] * 10
    review = [Sample(ids=tuple(range(50)), kind="general")] * 40
    sampler = MixReviewSampler(new, review, mix_ratio=1.0, mix_decay=1.0, size=lambda s: len(s.ids))
    tokens = planned_tokens(sampler, recipe)
    assert tokens == 2 * (1000 + 1000)  # each epoch: the new tokens, and as many review tokens

    registry = AdapterRegistry(tmp_path / "adapters")
    assert "the first steps will tell" in training_plan(sampler, recipe, registry, "smollm2", budget=60)
    timed = registry.add(lambda d: None, {"base_model": "smollm2", "training": {"tokens_per_second": 10.0}})
    said = training_plan(sampler, recipe, registry, "smollm2", budget=3600)
    assert "4,000 tokens over 2 epoch(s); about 6 min 40 s on this machine (10 tokens/s" in said and timed.id in said
    with pytest.raises(ConfigError, match=r"needs about 6 min 40 s of training .* more than the 5 min until the next"):
        training_plan(sampler, recipe, registry, "smollm2", budget=300)
    assert "first steps will tell" in training_plan(sampler, recipe, registry, "qwen", budget=300)  # another model

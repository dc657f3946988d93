"""Recipes: validated up front with every error reported at once."""

from __future__ import annotations

import pytest

from errors import ConfigError
from training import load_recipe


def test_defaults_and_overrides(tmp_path) -> None:
    assert load_recipe().method == "mix_review" and load_recipe().mix_ratio == 4.0 and load_recipe().mix_decay == 0.7
    path = tmp_path / "recipe.yaml"
    path.write_text("epochs: 5\nlearning_rate: 0.001\ngate:\n  min_new_gain: 0.1\n")
    recipe = load_recipe(path, method="none")
    assert (recipe.epochs, recipe.learning_rate, recipe.gate.min_new_gain, recipe.method) == (5, 0.001, 0.1, "none")
    assert load_recipe(path).to_yaml().count("epochs: 5") == 1


def test_every_error_is_reported_at_once(tmp_path) -> None:
    path = tmp_path / "recipe.yaml"
    path.write_text("epochs: 0\nlearning_rate: -1\nmethod: magic\nbatch_sise: 4\n")
    with pytest.raises(ConfigError) as info:
        load_recipe(path)
    message = str(info.value)
    for part in ("epochs", "learning_rate", "method", "batch_sise"):
        assert part in message
    assert "\n" not in message


def test_inconsistent_choices_and_missing_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="l2_weight"):
        load_recipe(method="l2", l2_weight=0)
    with pytest.raises(ConfigError, match="not found"):
        load_recipe(general_corpus=[str(tmp_path / "missing.txt")])
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")

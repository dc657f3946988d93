"""The whole update on a tiny Llama model: train from the champion, evaluate, gate, register, promote or reject."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from flows.cli import app
from tests.training.conftest import add_documents
from training import AdapterRegistry, load_recipe, run_finetune
from training.gate import judge
from training.recipe import Gate

FAST = {"synthetic_samples": 4, "synthetic_tokens": 24, "max_seq_len": 64, "batch_size": 4, "eval_samples": 16}


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
    # Mix-review's epochs: review samples decay by 0.7 each epoch.
    epochs = manifest["training"]["epochs"]
    assert [e["review"] for e in epochs] == [round(4 * epochs[0]["new"] * 0.7**e) for e in range(6)]

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
    assert "general NLL rises by at most 2%, but it changed by +3.1%" in verdict.reasons
    assert not any(r.startswith("earlier") for r in verdict.reasons)
    good = [
        {"set": "new", "nll_candidate": 2.0, "rel_change": -0.2},
        {"set": "general", "nll_candidate": 3.0, "rel_change": 0.01},
    ]
    assert judge(good, Gate()).passed


@pytest.mark.usefixtures("prefect_harness", "restore_environ")
def test_flow_and_cli(tmp_path, catalog, first_update, tiny_model_dir, monkeypatch) -> None:
    data_dir = tmp_path / "data"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("".join(f"{k}: {v}\n" for k, v in {**FAST, "epochs": 6, "learning_rate": 0.01}.items()))
    env = {
        "KUP_DATA_DIR": str(data_dir),
        "KUP_CATALOG_URL": catalog.url,
        "KUP_BASE_MODEL": str(tiny_model_dir),
        "KUP_SOURCES_FILE": str(tmp_path / "none.yaml"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()

    bad = runner.invoke(app, ["finetune", "--recipe", str(recipe), "--method", "magic"])
    assert bad.exit_code == 2 and "method" in bad.output and "Traceback" not in bad.output

    result = runner.invoke(app, ["finetune", "--recipe", str(recipe), "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)
    assert outcome["status"] == "promoted" and outcome["summary"]["new_gain"] > 0.05

    listed = json.loads(runner.invoke(app, ["adapters", "list", "--json"]).stdout)
    assert [a["champion"] for a in listed] == [True] and listed[0]["id"] == outcome["adapter"]
    assert "(* = champion" in runner.invoke(app, ["adapters", "list"]).output

    rolled = runner.invoke(app, ["adapters", "rollback"])
    assert rolled.exit_code == 0 and "base model" in rolled.output
    assert runner.invoke(app, ["adapters", "promote", outcome["adapter"]]).exit_code == 0
    assert AdapterRegistry(data_dir / "adapters").champion().id == outcome["adapter"]
    unknown = runner.invoke(app, ["adapters", "promote", "nope"])
    assert unknown.exit_code == 2 and outcome["adapter"] in unknown.output

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        keys = {
            a.key
            for a in client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["finetune-metrics", "finetune-verdict"]))
            )
        }
        verdict = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["finetune-verdict"]))
        )
    assert keys == {"finetune-metrics", "finetune-verdict"}
    assert "Promoted to champion" in verdict[0].data and "data:image/png;base64," in verdict[0].data

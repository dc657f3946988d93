"""The finetune flow and the CLI around it (finetune, adapters list/promote/rollback) on the tiny Llama."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from cli.main import app
from indexing import Catalog
from tests.training.conftest import FACTS, FAST, add_documents
from training import AdapterRegistry


@pytest.fixture
def catalog(tmp_path) -> Catalog:
    """A catalog holding the facts of a first update, published 40 days ago."""
    cat = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    add_documents(cat, FACTS, when=datetime.now(UTC) - timedelta(days=40))
    yield cat
    cat.close()


@pytest.mark.usefixtures("prefect_harness", "restore_environ")
def test_flow_and_cli(tmp_path, catalog, tiny_model_dir, monkeypatch) -> None:
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
        runs = client.read_flow_runs()
    assert keys == {"finetune-metrics", "finetune-verdict"}
    assert "PROMOTED to champion" in verdict[0].data and "data:image/png;base64," in verdict[0].data
    assert verdict[0].description.startswith("PROMOTED")
    assert any("promoted" in r.tags for r in runs)  # the promoting run, tagged so in the runs list

    # A candidate the gate rejects: shown as rejected at a glance (state, tag, headline), said in words, exit 1.
    strict = tmp_path / "strict.yaml"
    strict.write_text(recipe.read_text() + "gate:\n  min_new_gain: 0.99\n")
    assert runner.invoke(app, ["adapters", "rollback"]).exit_code == 0  # no champion: the documents are new again
    rejected = runner.invoke(app, ["finetune", "--recipe", str(strict)])
    assert rejected.exit_code == 1, rejected.output
    assert "REJECTED (new-document loss fell" in rejected.output
    assert "new-document NLL falls by at least 99%, but it fell by" in rejected.output
    with get_client(sync_client=True) as client:
        [run] = [r for r in client.read_flow_runs() if r.state_name == "Rejected"]
    assert "rejected" in run.tags and run.state.message.startswith("adapter rejected: ")

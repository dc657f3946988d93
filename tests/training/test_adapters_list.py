"""`kup adapters list` shows what each adapter learned and forgot by questions: closed-book accuracy on its own
probes and its change, FUAR and the change in general-probe accuracy, in words and in --json (manifests written
through the real registry, as run_finetune writes them)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from training.registry import AdapterRegistry


def add(registry: AdapterRegistry, *, passed: bool, summary: dict, new_probes: int | None = None, parent=None):
    manifest = {
        "method": "mix_review",
        "parent": parent,
        "summary": summary,
        "verdict": {"passed": passed, "reasons": [] if passed else ["FUAR (forgotten / ...) is at most 0.2, but"]},
    }
    if new_probes is not None:
        manifest["probes"] = {"table": [{"set": "new", "count": new_probes}, {"set": "general", "count": 119}]}
    return registry.add(lambda d: None, manifest)


def test_adapters_list_shows_closed_book_accuracy_fuar_and_general_probe_change(tmp_path) -> None:
    from cli.main import app

    registry = AdapterRegistry(tmp_path / "adapters")
    old = add(registry, passed=True, summary={"new_gain": 0.2, "general_forgetting": 0.01})  # trained before probes
    good = add(
        registry,
        passed=True,
        parent=old.id,
        new_probes=24,
        summary={
            "new_gain": 0.31,
            "general_forgetting": 0.004,
            "probe_new_accuracy": 0.625,
            "probe_new_change": 0.25,
            "fuar": 0.125,
            "general_probe_change": -0.0084,
        },
    )
    forgot = add(
        registry,
        passed=False,
        parent=good.id,
        new_probes=9,
        summary={"probe_new_accuracy": 0.25, "probe_new_change": 0.0, "fuar": "inf", "general_probe_change": -0.05}
        | {"probes_gained": 0, "probes_forgotten": 3},
    )
    registry.promote(old.id)
    registry.promote(good.id)
    env = {"KUP_DATA_DIR": str(tmp_path)}

    listed = CliRunner().invoke(app, ["adapters", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = {r["id"]: r for r in json.loads(listed.stdout)}
    assert rows[good.id]["champion"] and not rows[forgot.id]["champion"]
    assert rows[good.id]["closed_book"] == {"accuracy": 0.625, "change": 0.25, "probes": 24}
    assert rows[good.id]["fuar"] == 0.125 and rows[good.id]["general_probe_change"] == -0.0084
    assert rows[forgot.id]["fuar"] == "inf" and rows[forgot.id]["closed_book"]["probes"] == 9
    assert rows[old.id]["closed_book"] == {"accuracy": None, "change": None, "probes": None}
    assert rows[old.id]["fuar"] is None and rows[old.id]["general_probe_change"] is None

    shown = CliRunner().invoke(app, ["adapters", "list"], env=env)
    assert shown.exit_code == 0, shown.output
    lines = {line.split()[1] if line.startswith("*") else line.split()[0]: line for line in shown.output.splitlines()}
    assert "closed-book 62.5% (+25.0 pts, 24 probes)  FUAR 0.12  general probes -0.8 pts" in lines[good.id]
    assert lines[good.id].startswith("*")
    assert (
        "closed-book 25.0% (+0.0 pts, 9 probes)  FUAR 0 gained, 3 forgotten  general probes -5.0 pts"
        in lines[forgot.id]
    )
    assert "closed-book - (-)  FUAR -  general probes -" in lines[old.id]
    assert "FUAR: forgotten / (updated + acquired) probes" in shown.output

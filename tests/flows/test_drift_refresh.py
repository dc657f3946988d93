"""The drift check end to end: a real refresh (without Prefect, and as the flow) on feeds served on localhost, with
a champion adapter on the tiny Llama (built on the packaged SmolLM2's tokenizer), records the champion's perplexity
ratio in the run's summary and drift.jsonl, and `kup status` shows it; with the check off nothing is measured.
(The measurement itself: tests/training/test_drift.py; the automation it triggers: test_drift_trigger.py.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from flows.refresh_local import refresh_here
from flows.runtime import Runtime
from flows.settings import load_settings
from training import drift

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"prefect", "torch", "transformers", "peft", "great_expectations", "sentence_transformers"}


def make_champion(data_dir: Path, model_dir: Path, watermark: datetime) -> str:
    """An untrained LoRA adapter on the tiny model, promoted with ``watermark`` as the end of its training period
    (its ratio is the base model's: what matters here is that it is measured and recorded, not its value)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from training.registry import AdapterRegistry

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(model_dir),
        LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    registry = AdapterRegistry(data_dir / "adapters")
    adapter = registry.add(model.save_pretrained, {"watermark": watermark.isoformat(), "verdict": {"passed": True}})
    registry.promote(adapter.id)
    return adapter.id


def kup_status() -> tuple[str, dict]:
    runner = CliRunner()
    text = runner.invoke(app, ["status"])
    data = runner.invoke(app, ["status", "--json"])
    assert text.exit_code == 0 and data.exit_code == 0, text.output + data.output
    return " ".join(text.stdout.split()), json.loads(data.stdout)["drift"]  # lines as words: rich wraps at 80


def test_a_refresh_without_prefect_measures_drift_only_when_on_and_kup_status_shows_it(
    pipeline, tiny_model_dir, monkeypatch
) -> None:
    pipeline.publish("/world", 3)
    pipeline.write_sources({"world": "/world"})
    monkeypatch.setenv("KUP_BASE_MODEL", str(tiny_model_dir))

    # Off (the default): nothing is measured, recorded or loaded, and status says it is off.
    first = refresh_here(load_settings())
    assert first.index.documents == 3 and first.drift is None
    assert not drift.drift_path(pipeline.data_dir).exists()
    text, shown = kup_status()
    assert "drift: off (KUP_DRIFT_CHECK=true has a refresh measure it)" in text
    assert shown["enabled"] is False and shown["last_measured"] is None

    monkeypatch.setenv("KUP_DRIFT_CHECK", "true")
    monkeypatch.setenv("KUP_DRIFT_THRESHOLD", "1.1")
    text, shown = kup_status()
    assert "drift: not measured yet (threshold 1.1; a refresh measures it, at most every 6 h)" in text
    assert shown["enabled"] is True and shown["last_measured"] is None and shown["last_skip"] is None

    # On, with no champion yet: the check is recorded as a skip in words.
    skipped = refresh_here(load_settings())
    assert skipped.drift["ratio"] is None and "no champion adapter yet" in skipped.drift["skipped"]
    text, _ = kup_status()
    assert "drift: not measured yet" in text and "not measured, no champion adapter yet" in text

    # A champion trained up to now, then three new stories: the next due refresh measures the ratio.
    champion = make_champion(pipeline.data_dir, tiny_model_dir, datetime.now(UTC))
    time.sleep(0.05)
    pipeline.publish("/world", 3, start=3, etag='"v2"')
    monkeypatch.setenv("KUP_DRIFT_EVERY_HOURS", "0")  # the skip above was just now
    started = time.monotonic()
    summary = refresh_here(load_settings())
    seconds = time.monotonic() - started
    report = summary.drift
    assert report["champion"] == champion and report["skipped"] is None
    assert (report["recent_documents"], report["trained_documents"]) == (3, 3)
    assert report["ratio"] > 0 and report["threshold"] == 1.1 and report["exceeded"] == (report["ratio"] >= 1.1)
    assert report["ratio"] == pytest.approx(report["recent_perplexity"] / report["trained_perplexity"], rel=1e-3)
    [recorded] = [r for r in drift.history(pipeline.data_dir) if r["ratio"] is not None]
    assert recorded == report
    with Runtime(load_settings()) as rt:
        assert rt.catalog.last_refresh().summary.drift == report

    text, shown = kup_status()
    assert shown["last_measured"]["ratio"] == report["ratio"] and shown["last_skip"] is None
    assert shown["last_measured"]["measured_at"] == report["measured_at"]
    due = ": a fine-tune is due (`kup finetune`)" if report["exceeded"] else ""
    assert re.search(
        rf"drift: champion {champion} reads recent documents at {report['ratio']:.3f}x the perplexity of its "
        rf"training period \(threshold 1.1\){re.escape(due)}; measured \d+s ago",
        text,
    )

    # Not due again within KUP_DRIFT_EVERY_HOURS: the next refresh loads no model and records nothing.
    monkeypatch.setenv("KUP_DRIFT_EVERY_HOURS", "6")
    again = refresh_here(load_settings())
    assert again.drift is None and len(drift.history(pipeline.data_dir)) == 2
    print(f"refresh with a drift measurement: {seconds:.1f} s")


@pytest.mark.usefixtures("prefect_harness")
def test_the_refresh_flow_records_drift_the_same_way_and_publishes_it(pipeline, tiny_model_dir, monkeypatch) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    from flows.refresh import refresh

    pipeline.publish("/world", 2)
    pipeline.write_sources({"world": "/world"})
    assert "drift" not in refresh()  # off by default
    champion = make_champion(pipeline.data_dir, tiny_model_dir, datetime.now(UTC))
    time.sleep(0.05)
    pipeline.publish("/world", 2, start=2, etag='"v2"')
    monkeypatch.setenv("KUP_DRIFT_CHECK", "true")
    monkeypatch.setenv("KUP_BASE_MODEL", str(tiny_model_dir))

    report = refresh()["drift"]
    assert report["champion"] == champion and report["ratio"] > 0
    assert (report["recent_documents"], report["trained_documents"]) == (2, 2)
    assert drift.history(pipeline.data_dir) == [report]
    _, shown = kup_status()
    assert shown["last_measured"]["ratio"] == report["ratio"]
    with get_client(sync_client=True) as client:  # the keyed history table the dashboard plots
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["model-drift"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    rows = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    assert rows[-1]["ratio"] == report["ratio"] and rows[-1]["champion"] == champion


def test_status_shows_the_last_ratio_and_a_skip_since(pipeline, monkeypatch) -> None:
    pipeline.write_sources({"world": "/world"})
    monkeypatch.setenv("KUP_DRIFT_CHECK", "true")
    now = datetime.now(UTC)
    measured = drift.DriftReport(
        measured_at=(now - timedelta(hours=3)).isoformat(), champion="c1", ratio=1.4321, threshold=1.25, exceeded=True
    )
    drift.record(pipeline.data_dir, measured)
    drift.record(
        pipeline.data_dir,
        drift.DriftReport(measured_at=(now - timedelta(minutes=5)).isoformat(), skipped="nothing was indexed after"),
    )
    text, shown = kup_status()
    assert (
        "drift: champion c1 reads recent documents at 1.432x the perplexity of its training period (threshold 1.25): "
        "a fine-tune is due (`kup finetune`); measured 3h ago" in text
    )
    assert "last check 5m ago: not measured, nothing was indexed after" in text
    assert shown["last_measured"]["ratio"] == 1.4321 and shown["last_skip"]["reason"] == "nothing was indexed after"


def test_the_drift_log_is_read_from_its_end(tmp_path) -> None:
    """Checked every refresh (KUP_DRIFT_EVERY_HOURS=0) the log grows for ever: status reads only its last lines."""
    rows = [json.dumps({"measured_at": f"2026-01-01T00:00:{i % 60:02d}+00:00", "n": i}) for i in range(20_000)]
    drift.drift_path(tmp_path).write_text("\n".join(rows) + "\nnot json\n")
    last = drift.history(tmp_path, limit=3)
    assert [r["n"] for r in last] == [19_998, 19_999]  # the unreadable last line is left out
    assert [r["n"] for r in drift.history(tmp_path, limit=5000)][:2] == [15_001, 15_002]
    assert drift.history(tmp_path / "missing") == [] and drift.history(tmp_path, limit=0) == []


def test_kup_status_with_drift_on_loads_no_model_library(pipeline) -> None:
    pipeline.write_sources({"world": "/world"})
    drift.record(
        pipeline.data_dir, drift.DriftReport(measured_at=datetime.now(UTC).isoformat(), champion="c1", ratio=1.1)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUP_", "PREFECT_"))}
    env |= {**pipeline.env(), "KUP_DRIFT_CHECK": "true", "KUP_API_URL": "off"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "cli.main", "status"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "training" in imported and imported & HEAVY == set()
    assert "reads recent documents at 1.100x" in " ".join(done.stdout.split())

"""Drift of the served model (Lazaridou et al. 2021) on the tiny Llama: the champion reads documents of its own
training period more easily than what arrived since, the ratio is recorded, due again only after the interval, and
each measurement (or skip) says what it is; the events carry the ratio."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from tests.training.conftest import FAST, add_documents
from training import drift, load_recipe, run_finetune

LATER = [
    "The Vessel Quay market in Dunmarrow now opens on Mondays, selling smoked eel, rope and copper kettles.",
    "Harbourmaster Petra Lindqvist closed the Dunmarrow locks for a week after a barge struck the gate.",
]


@pytest.mark.slow  # a fine-tune of the tiny model first: ~15-45 s on 2 cores
def test_the_champion_reads_recent_documents_at_a_higher_perplexity_than_its_own(
    tmp_path, catalog, first_update, tiny_model_dir
) -> None:
    data_dir = tmp_path / "data"
    options = {"base_model": str(tiny_model_dir), "threshold": 1.05, "sample": 8}
    assert "no champion adapter yet" in drift.measure(catalog, data_dir, **options).skipped

    recipe = load_recipe(None, **{**FAST, "epochs": 6, "learning_rate": 1e-2})
    champion = run_finetune(catalog, data_dir, recipe, base_model=str(tiny_model_dir)).adapter
    nothing_new = drift.measure(catalog, data_dir, **options)
    assert nothing_new.skipped == "nothing was indexed after the champion's watermark"
    assert nothing_new.champion == champion.id and nothing_new.ratio is None and drift.event(nothing_new) == []

    add_documents(catalog, LATER, when=datetime.now(UTC) - timedelta(hours=1))
    report = drift.measure(catalog, data_dir, **options)
    assert report.skipped is None and report.champion == champion.id
    assert (report.recent_documents, report.trained_documents) == (2, 6)
    # The champion was trained on the first update's documents: it reads them far more easily than the new ones.
    assert report.ratio > 1.05 and report.exceeded
    assert math.isclose(report.ratio, report.recent_perplexity / report.trained_perplexity, rel_tol=1e-3)

    events = drift.event(report)
    assert [name for name, _, _ in events] == ["kup.drift.measured", "kup.drift.exceeded"]
    _, resource, payload = events[1]
    assert resource["prefect.resource.id"] == f"kup.adapter.{champion.id}"
    assert payload["ratio"] == report.ratio and payload["threshold"] == 1.05
    calm = drift.measure(catalog, data_dir, **{**options, "threshold": report.ratio + 1})
    assert not calm.exceeded and [name for name, _, _ in drift.event(calm)] == ["kup.drift.measured"]

    assert drift.due(data_dir, 6)  # nothing recorded yet
    drift.record(data_dir, nothing_new)
    drift.record(data_dir, report)
    assert [h["ratio"] for h in drift.history(data_dir)] == [None, report.ratio]
    assert not drift.due(data_dir, 6) and drift.due(data_dir, 6, now=datetime.now(UTC) + timedelta(hours=7))
    markdown = drift.plot_markdown(drift.history(data_dir))
    assert f"**{report.ratio:.3f}x**" in markdown and "a fine-tune is due" in markdown
    assert "data:image/png;base64," in markdown


def test_a_champion_that_cannot_be_loaded_is_a_recorded_skip_not_a_failed_refresh(
    tmp_path, catalog, first_update, tiny_model_dir
) -> None:
    from training.registry import AdapterRegistry

    registry = AdapterRegistry(tmp_path / "data" / "adapters")
    broken = registry.add(
        lambda d: (d / "adapter_config.json").write_text("{}"),
        {"watermark": (first_update + timedelta(minutes=1)).isoformat(), "verdict": {"passed": True}},
    )
    registry.promote(broken.id)
    add_documents(catalog, LATER, when=datetime.now(UTC) - timedelta(hours=1))
    report = drift.measure_safely(catalog, tmp_path / "data", base_model=str(tiny_model_dir), threshold=1.2)
    assert report.ratio is None and report.skipped.startswith(f"the champion {broken.id} cannot be loaded")
    with pytest.raises(Exception, match="cannot be loaded"):
        drift.measure(catalog, tmp_path / "data", base_model=str(tiny_model_dir), threshold=1.2)

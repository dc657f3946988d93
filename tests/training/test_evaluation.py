"""Evaluation: token NLL equal to the model's own loss, padding that changes nothing, metrics, the temporal report."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from tests.training.conftest import FACTS
from training import Sample, load_base, windows
from training.evaluation import SetScore, metrics_table, relative_change, score, score_sets, summary, temporal_report


@pytest.fixture(scope="module")
def tiny(tiny_model_dir, tmp_path_factory):
    return load_base(str(tiny_model_dir), tmp_path_factory.mktemp("data"), device="cpu")


def samples(tiny, texts: list[str], published: datetime | None = None) -> list[Sample]:
    return [Sample(ids, "new", published=published) for t in texts for ids in windows(tiny.tokenizer, t, 64, 1)]


def test_score_is_the_models_own_mean_token_loss(tiny) -> None:
    import torch

    [one] = samples(tiny, FACTS[:1])
    with torch.no_grad():
        ids = torch.tensor([one.ids])
        expected = float(tiny.model(input_ids=ids, labels=ids).loss)
    result = score(tiny.model, [one], pad_id=tiny.tokenizer.pad_token_id, device="cpu")
    assert math.isclose(result.nll, expected, rel_tol=1e-5) and result.tokens == len(one.ids) - 1
    assert math.isclose(result.perplexity, math.exp(expected), rel_tol=1e-5)


def test_padding_in_a_batch_changes_nothing(tiny) -> None:
    both = samples(tiny, FACTS[:2])
    assert len(both[0].ids) != len(both[1].ids)  # so one of them is padded in the shared batch
    pad = tiny.tokenizer.pad_token_id
    alone = [score(tiny.model, [s], pad_id=pad, device="cpu") for s in both]
    together = score(tiny.model, both, pad_id=pad, device="cpu")
    weighted = sum(a.nll * a.tokens for a in alone) / sum(a.tokens for a in alone)
    assert together.tokens == sum(a.tokens for a in alone) and math.isclose(together.nll, weighted, rel_tol=1e-5)
    assert math.isnan(score(tiny.model, [], pad_id=pad, device="cpu").nll)
    assert set(score_sets(tiny.model, {"a": both, "b": both[:1]}, pad_id=pad, device="cpu")) == {"a", "b"}


def test_metrics_rows_and_summary() -> None:
    base = {"new": SetScore(3.0, 10), "general": SetScore(2.0, 10)}
    champion = {"new": SetScore(2.5, 10), "general": SetScore(2.0, 10)}
    candidate = {"new": SetScore(2.0, 10), "general": SetScore(2.02, 10)}
    rows = metrics_table(base, champion, candidate)
    assert [r["set"] for r in rows] == ["new", "general"]
    assert rows[0]["rel_change"] == -0.2 and rows[1]["rel_change"] == 0.01  # against the champion, not the base
    assert rows[0]["nll_base"] == 3.0 and rows[0]["ppl_candidate"] == round(math.exp(2.0), 3)
    figures = summary(rows)
    assert figures["new_gain"] == 0.2 and figures["general_forgetting"] == 0.01
    assert figures["earlier_forgetting"] is None and figures["forgetting_to_gain"] == 0.05
    assert relative_change(2.0, 1.5) == -0.25 and math.isnan(relative_change(0.0, 1.0))


def test_temporal_report_groups_windows_by_month(tiny) -> None:
    march = samples(tiny, FACTS[:2], datetime(2026, 3, 5, tzinfo=UTC))
    may = samples(tiny, FACTS[2:3], datetime(2026, 5, 1, tzinfo=UTC))
    undated = samples(tiny, FACTS[3:4])
    report = temporal_report(tiny.model, march + may + undated, pad_id=tiny.tokenizer.pad_token_id, device="cpu")
    assert [(r["month"], r["windows"]) for r in report] == [("2026-03", 2), ("2026-05", 1)]
    assert all(r["perplexity"] > 1 for r in report)

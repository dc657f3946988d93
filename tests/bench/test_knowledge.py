"""The knowledge benchmark's own logic: configurations, the real news weeks, and figures over seeds with intervals."""

from __future__ import annotations

import json

import pytest

from bench.knowledge import parse_config, realnews_weeks, summarise, targets


def test_configurations_name_a_method_data_and_the_anchor() -> None:
    assert parse_config("mix_review-synth") == ("mix_review", "synth", True)
    assert parse_config("none-distill:noanchor") == ("none", "distill", False)
    assert parse_config("mix_review-synth+distill") == ("mix_review", "synth+distill", True)
    for wrong in ("mix_review-prose", "adam-synth", "none-distill:nothing"):
        with pytest.raises(SystemExit, match="METHOD-DATA"):
            parse_config(wrong)


def test_realnews_weeks_train_on_the_article_that_states_each_answer(tmp_path) -> None:
    articles = [
        {"id": "a1", "title": "Vote", "text": "The Druze community said...", "published": "2025-07-16", "url": "https://x.example/1"},
        {"id": "a2", "title": "Old", "text": "Nothing about it.", "published": "2025-07-10", "url": "https://y.example/2"},
        {"id": "a3", "title": "Fire", "text": "The Grand Canyon Lodge burned.", "published": "", "url": "https://x.example/3"},
    ]  # fmt: skip
    questions = [
        {"id": "q1", "week": "20250718", "question": "Which group?", "choices": ["Kurds", "Druze"], "answer": 1,
         "source_ids": ["a2", "a1"]},
        {"id": "q2", "week": "20250718", "question": "Which site?", "choices": ["Tusayan Ruin", "Lodge"], "answer": 0,
         "source_ids": ["a3"]},  # no retrieved article states the answer: not asked
        {"id": "q3", "week": "20250725", "question": "Which lodge?", "choices": ["Bright", "Grand Canyon Lodge"],
         "answer": 1, "source_ids": ["a3"]},
    ]  # fmt: skip
    for name, rows in (("articles", articles), ("questions", questions)):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    weeks = realnews_weeks(tmp_path, weeks=5, per_week=8)

    assert [w["label"] for w in weeks] == ["20250718", "20250725"]
    assert [a["id"] for a in weeks[0]["articles"]] == ["a1"] and weeks[0]["articles"][0]["outlet"] == "x-example"
    assert [(q["id"], q["article_ids"]) for q in weeks[0]["questions"]] == [("q1", ["a1"])]
    assert [(q["id"], q["article_ids"]) for q in weeks[1]["questions"]] == [("q3", ["a3"])]


def _evaluation(weeks: list[list[bool]], general: list[bool]) -> dict:
    return {"weeks": weeks, "synth_probes": [[] for _ in weeks], "general": general, "general_nll": 1.0}


def _run(after: list[dict], rag: list[bool]) -> dict:
    cost = {"synthesis": 1.0, "teacher": 2.0, "training": 3.0, "evaluation": 4.0}
    speeds = {"teacher_tokens_per_second": 10.0, "training_tokens_per_second": 20.0, "seconds_per_article": 3.0}
    return {"after": after, "rag_with_adapter": rag, "cost": cost, **speeds, "tokens_trained": 100, "data": []}


def test_figures_over_seeds_are_paired_with_the_base_and_carry_intervals() -> None:
    base = _evaluation([[False, False, True, False]], [True, True, True, True])
    seed_a = _run([_evaluation([[True, True, True, False]], [True, True, True, False])], [True, True, True, True])
    seed_b = _run([_evaluation([[True, False, True, False]], [True, True, True, True])], [True, True, False, True])
    weeks = [{"questions": [{}] * 4}]

    result = summarise([seed_a, seed_b], base, [True, True, False, False], weeks)

    assert result["seeds"] == 2
    assert result["newest_week"]["value"] == 0.625 and result["newest_week"]["n"] == 4  # (1 + .5 + 1 + 0) / 4
    assert result["newest_week_gain"]["value"] == 0.375  # against 0.25
    low, high = result["newest_week_gain"]["ci95"]
    assert low <= 0.375 <= high and low < high
    assert result["general_probe_change"]["value"] == -0.125
    assert result["rag_with_adapter"]["value"] == 0.875 and result["rag_with_adapter_change"]["value"] == 0.375
    assert result["trained_week_share_of_rag"] == 1.25  # 0.625 closed-book against 0.5 for RAG without the adapter
    assert result["fuar"]["forgotten"] == 1 and result["fuar"]["acquired"] == 3  # seed a forgot one general probe
    verdict = targets(result)
    assert verdict["newest_week_gain_point_estimate_at_least_25_points"] is True
    assert verdict["newest_week_gain_at_least_25_points"] is (low >= 0.25)
    assert verdict["general_probe_drop_at_most_2_points"] is False

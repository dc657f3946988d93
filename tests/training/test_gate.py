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
    assert "general NLL rises by at most 2%, but it changed by +3.1%" in verdict.reasons
    assert not any(r.startswith("earlier") for r in verdict.reasons)
    good = [
        {"set": "new", "nll_candidate": 2.0, "rel_change": -0.2},
        {"set": "general", "nll_candidate": 3.0, "rel_change": 0.01},
    ]
    assert judge(good, Gate()).passed

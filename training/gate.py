"""The promotion gate: a Great Expectations suite over the metrics table, with the recipe's thresholds.

A candidate is promoted only when every expectation holds: general and earlier NLL rise by at most
the allowed share, new NLL falls by at least the required share, and no figure is missing or NaN
(a diverged run). With probes (``training.probes``), a second suite checks closed-book accuracy: the new
probes are enough and their accuracy rises by the required points, the general probes are enough (a missing set
fails, never passes unmeasured) and their accuracy falls by at most the allowed points, and FUAR stays under its
limit. The verdict lists the failed expectations in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from indexing.validation import ephemeral_context
from training.recipe import Gate

# A missing probe figure, as a finite number far below any threshold (an infinity in the column makes Great
# Expectations fail every row's expectation, including rows whose figures are fine).
MISSING = -1e9


@dataclass
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)  # why it failed, one sentence per failed expectation
    checks: list[dict] = field(default_factory=list)  # every expectation with its outcome, for reports


def _expectations(gate: Gate, sets: set[str]):
    import great_expectations.expectations as gxe

    out = [(gxe.ExpectColumnValuesToNotBeNull(column="nll_candidate"), "every set has a candidate NLL", None)]
    if "new" in sets:
        out.append(
            (
                gxe.ExpectColumnValuesToBeBetween(
                    column="rel_change",
                    max_value=-gate.min_new_gain,
                    row_condition='set == "new"',
                    condition_parser="pandas",
                ),
                f"new-document NLL falls by at least {gate.min_new_gain:.0%}",
                "new",
            )
        )
    for name, limit in (("general", gate.max_general_forgetting), ("earlier", gate.max_earlier_forgetting)):
        if name in sets:
            out.append(
                (
                    gxe.ExpectColumnValuesToBeBetween(
                        column="rel_change",
                        max_value=limit,
                        row_condition=f'set == "{name}"',
                        condition_parser="pandas",
                    ),
                    f"{name} NLL rises by at most {limit:.0%}",
                    name,
                )
            )
    return out


def _probe_expectations(gate: Gate):
    import great_expectations.expectations as gxe

    def where(name: str) -> dict:
        return {"row_condition": f'set == "{name}"', "condition_parser": "pandas"}

    out = [
        (
            gxe.ExpectColumnValuesToBeBetween(column="count", min_value=gate.min_probes, **where("new")),
            f"at least {gate.min_probes} probes about the new documents",
            "new:count",
        ),
        (
            gxe.ExpectColumnValuesToBeBetween(column="change", min_value=gate.min_probe_gain, **where("new")),
            f"closed-book accuracy on the new probes rises by at least {gate.min_probe_gain:.0%} points",
            "new",
        ),
        (
            gxe.ExpectColumnValuesToBeBetween(column="change", max_value=gate.max_fuar, **where("fuar")),
            f"FUAR (forgotten / (updated + acquired) probes) is at most {gate.max_fuar:g}",
            "fuar",
        ),
    ]
    # The general set is always checked: without it, forgetting of general knowledge would pass unmeasured.
    out += [
        (
            gxe.ExpectColumnValuesToBeBetween(column="count", min_value=gate.min_general_probes, **where("general")),
            f"at least {gate.min_general_probes} general-knowledge probes",
            "general:count",
        ),
        (
            gxe.ExpectColumnValuesToBeBetween(
                column="change", min_value=-gate.max_general_probe_drop, **where("general")
            ),
            f"general-probe accuracy falls by at most {gate.max_general_probe_drop:.0%} points",
            "general",
        ),
    ]
    return out


def _validate(name: str, frame, described) -> list:
    """The result of each expectation in ``described``, in that order (Great Expectations returns them grouped by
    column, so each is tagged with its position and put back in place)."""
    import great_expectations as gx

    context = ephemeral_context()
    batch = context.data_sources.add_pandas(name).add_dataframe_asset("table")
    definition = batch.add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name=name))
    for position, (expectation, _, _) in enumerate(described):
        expectation.meta = {**(expectation.meta or {}), "position": position}
        suite.add_expectation(expectation)
    validation = context.validation_definitions.add(gx.ValidationDefinition(data=definition, suite=suite, name=name))
    results = validation.run(batch_parameters={"dataframe": frame}, result_format="COMPLETE").results
    by_position = {int(r.expectation_config.meta["position"]): r for r in results}
    return [by_position[i] for i in range(len(described))]


def moved(share: float, unit: str = "%") -> str:
    """A change in words, one sign convention for every figure: "fell by 1.5%", "rose by 3.1%", "did not change"."""
    size = abs(share) * 100
    if round(size, 1) == 0:
        return "did not change"
    return f"{'fell' if share < 0 else 'rose'} by {size:.1f}{'%' if unit == '%' else ' points'}"


def fuar_words(fuar: float | None, gained: int | None = None, forgotten: int | None = None) -> str:
    """FUAR for people: the ratio when it is defined, else what happened ("0 gained, 3 forgotten")."""
    if fuar is not None and not math.isinf(fuar):
        return f"{fuar:.2f}"
    if gained is not None and forgotten is not None:
        return f"{gained} gained, {forgotten} forgotten"
    return "none gained, some forgotten" if fuar is not None else "nothing gained or forgotten"


def _probe_reason(sentence: str, key: str, rows: dict, fuar: float | None) -> str:
    if key == "new:count":
        count = rows.get("new", {}).get("count", 0)
        return f"{sentence}, but there are only {count} (synthesis found too few facts to hold out)"
    if key == "general:count":
        count = rows.get("general", {}).get("count", 0)
        return (
            f"{sentence}, but there are only {count} (training/data/general_probes.jsonl is missing or cut short; "
            "restore it, or lower gate.min_general_probes in the recipe)"
        )
    if key == "fuar":
        if fuar is not None and math.isinf(fuar):
            return f"{sentence}, but probes were forgotten and none was gained"
        return f"{sentence}, but it is {fuar:.2f}" if fuar is not None else f"{sentence}, but it is missing"
    change = rows.get(key, {}).get("change")
    return (
        f"{sentence}, but it {moved(change, 'points')}"
        if change is not None
        else f"{sentence}, but a figure is missing"
    )


def judge(rows: list[dict], gate: Gate, probes: list[dict] | None = None, fuar: float | None = None) -> Verdict:
    """Run the gate's expectations over the metrics rows (one row per evaluation set) and, when given, the probe
    rows (``training.probes.probe_table``) and FUAR. With probes off in the recipe, the verdict says so."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    # NaN means the run diverged: treat it as missing, so the not-null expectation catches it.
    frame["nll_candidate"] = [None if v is None or math.isnan(v) else v for v in frame["nll_candidate"]]
    frame["rel_change"] = [float("inf") if v is None or math.isnan(v) else v for v in frame["rel_change"]]
    described = _expectations(gate, set(frame["set"]))
    results = _validate("promotion-gate", frame, described)

    by_set = {r["set"]: r for r in rows}
    verdict = Verdict(passed=all(r.success for r in results))
    for outcome, (_, sentence, set_name) in zip(results, described, strict=True):
        verdict.checks.append({"expectation": sentence, "passed": bool(outcome.success)})
        if outcome.success:
            continue
        row = by_set.get(set_name)
        if row is not None and not math.isnan(row["rel_change"]):
            verdict.reasons.append(f"{sentence}, but it {moved(row['rel_change'])}")
        else:
            verdict.reasons.append(f"{sentence}, but a figure is missing (did training diverge?)")
    if not gate.probes:
        verdict.checks.append(
            {"expectation": "closed-book probe checks are off in the recipe (gate.probes)", "passed": True}
        )
        return verdict
    if probes is None:
        return verdict
    probe_rows = {r["set"]: r for r in probes}
    table = [{"set": r["set"], "count": r["count"], "change": r["change"]} for r in probes]
    for required in ("new", "general"):
        if required not in probe_rows:
            table.append({"set": required, "count": 0, "change": None})
    infinite = fuar is not None and math.isinf(fuar)
    table.append({"set": "fuar", "count": 0, "change": 1e9 if infinite else (fuar if fuar is not None else 0.0)})
    probe_frame = pd.DataFrame(table)
    probe_frame["change"] = [MISSING if v is None else v for v in probe_frame["change"]]
    described = _probe_expectations(gate)
    for outcome, (_, sentence, key) in zip(_validate("probe-gate", probe_frame, described), described, strict=True):
        verdict.checks.append({"expectation": sentence, "passed": bool(outcome.success)})
        if not outcome.success:
            verdict.passed = False
            verdict.reasons.append(_probe_reason(sentence, key, probe_rows, fuar))
    return verdict

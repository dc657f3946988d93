"""The promotion gate: a Great Expectations suite over the metrics table, with the recipe's thresholds.

A candidate is promoted only when every expectation holds: general and earlier NLL rise by at most
the allowed share, new NLL falls by at least the required share, and no figure is missing or NaN
(a diverged run). The verdict lists the failed expectations in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from indexing.validation import ephemeral_context
from training.recipe import Gate


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


def judge(rows: list[dict], gate: Gate) -> Verdict:
    """Run the gate's expectations over the metrics rows (one row per evaluation set)."""
    import great_expectations as gx
    import pandas as pd

    frame = pd.DataFrame(rows)
    # NaN means the run diverged: treat it as missing, so the not-null expectation catches it.
    frame["nll_candidate"] = [None if v is None or math.isnan(v) else v for v in frame["nll_candidate"]]
    frame["rel_change"] = [float("inf") if v is None or math.isnan(v) else v for v in frame["rel_change"]]
    context = ephemeral_context()
    batch = context.data_sources.add_pandas("metrics").add_dataframe_asset("table")
    definition = batch.add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name="promotion-gate"))
    described = _expectations(gate, set(frame["set"]))
    for expectation, _, _ in described:
        suite.add_expectation(expectation)
    validation = context.validation_definitions.add(gx.ValidationDefinition(data=definition, suite=suite, name="gate"))
    result = validation.run(batch_parameters={"dataframe": frame}, result_format="COMPLETE")

    by_set = {r["set"]: r for r in rows}
    verdict = Verdict(passed=bool(result.success))
    for outcome, (_, sentence, set_name) in zip(result.results, described, strict=True):
        verdict.checks.append({"expectation": sentence, "passed": bool(outcome.success)})
        if outcome.success:
            continue
        row = by_set.get(set_name)
        if row is not None and not math.isnan(row["rel_change"]):
            verdict.reasons.append(f"{sentence}, but it changed by {row['rel_change']:+.1%}")
        else:
            verdict.reasons.append(f"{sentence}, but a figure is missing (did training diverge?)")
    return verdict

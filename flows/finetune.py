"""The finetune flow: a Mix-review LoRA update on what arrived since the champion, promoted only through the gate."""

from __future__ import annotations

import base64
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.states import Completed, State

from flows.runtime import Runtime
from flows.settings import load_settings
from training import load_recipe, run_finetune
from training.finetune import FinetuneOutcome


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2%}"


def verdict_markdown(outcome: FinetuneOutcome) -> str:
    s = outcome.summary
    verdict = outcome.verdict
    head = "Promoted to champion" if outcome.status == "promoted" else "Rejected; the champion stays in service"
    lines = [
        f"## {head}: adapter `{outcome.adapter.id}`",
        "",
        f"* Started from: `{outcome.parent or 'the base model'}`; method `{outcome.adapter.manifest['method']}`",
        f"* New-knowledge gain {_pct(s.get('new_gain'))} (held-out new documents {_pct(s.get('new_heldout_gain'))}); "
        f"forgetting: earlier {_pct(s.get('earlier_forgetting'))}, general {_pct(s.get('general_forgetting'))}",
        "",
        "### Gate",
    ]
    lines += [f"* {'✅' if c['passed'] else '❌'} {c['expectation']}" for c in verdict.checks]
    if verdict.reasons:
        lines += ["", "**Why it was rejected:**"] + [f"* {r}" for r in verdict.reasons]
    if outcome.temporal:
        lines += ["", "### Perplexity by month of publication", "", "| month | windows | perplexity |", "|---|---|---|"]
        lines += [f"| {t['month']} | {t['windows']} | {t['perplexity']} |" for t in outcome.temporal]
    curve = Path(outcome.adapter.path) / "loss.png"
    if curve.exists():
        encoded = base64.b64encode(curve.read_bytes()).decode()
        lines += [
            "",
            "### Training loss",
            "",
            f"![loss curve](data:image/png;base64,{encoded})",
            "",
            f"(also saved as `{curve}`)",
        ]
    return "\n".join(lines)


@flow(name="finetune")
def finetune(recipe: str | None = None, method: str | None = None, progress_bar: bool = False) -> State:
    """Train a candidate adapter on documents since the champion's watermark; promote it if the gate passes."""
    logger = get_run_logger()
    settings = load_settings()
    chosen = load_recipe(Path(recipe) if recipe else settings.recipe, method=method)
    progress = create_progress_artifact(0.0, key="finetune-progress", description="optimizer steps done")
    bar = None
    if progress_bar:
        from tqdm import tqdm

        bar = tqdm(desc="training", unit="step")

    def on_step(step: int, total: int, loss: float) -> None:
        if step == 1 or step == total or step % 5 == 0:
            update_progress_artifact(progress, 100.0 * step / total)
        if bar is not None:
            bar.total = total
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.update(1)

    with Runtime(settings) as runtime:
        outcome = run_finetune(
            runtime.catalog,
            settings.data_path,
            chosen,
            base_model=settings.base_model,
            on_step=on_step,
        )
    if bar is not None:
        bar.close()
    if outcome.status == "nothing-new":
        logger.info("no new documents since the champion's watermark; nothing trained")
        return Completed(message="nothing new to learn", data={"status": outcome.status, "data": outcome.data})
    update_progress_artifact(progress, 100.0)
    create_table_artifact(
        key="finetune-metrics", table=outcome.metrics, description="NLL per evaluation set: base, champion, candidate"
    )
    create_markdown_artifact(
        key="finetune-verdict", markdown=verdict_markdown(outcome), description="The gate's verdict"
    )
    result = {
        "status": outcome.status,
        "adapter": outcome.adapter.id,
        "parent": outcome.parent,
        "summary": outcome.summary,
        "reasons": outcome.verdict.reasons,
        "training": outcome.adapter.manifest["training"],
        "data": outcome.data,
    }
    logger.info("adapter %s %s: %s", outcome.adapter.id, outcome.status, outcome.summary)
    if outcome.status == "rejected":
        return Completed(name="Rejected", message="; ".join(outcome.verdict.reasons), data=result)
    return Completed(message=f"adapter {outcome.adapter.id} promoted", data=result)

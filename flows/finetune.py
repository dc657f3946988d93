"""The finetune flow: a Mix-review LoRA update on what arrived since the champion, promoted only through the gate."""

from __future__ import annotations

import base64
import time
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.states import Completed, State

from errors import KupError
from flows.outcome import failed, tag_this_run
from flows.runtime import Runtime, serving_servers
from flows.settings import load_settings
from training import load_recipe, run_finetune
from training.finetune import FinetuneOutcome
from training.gate import fuar_words, moved


def _rose(value: float | None) -> str:
    """A relative NLL change in words (positive: the loss rose)."""
    return "not measured" if value is None else moved(value)


def _fell(gain: float | None) -> str:
    """A gain (positive: the loss fell) in the same words as ``_rose``."""
    return "not measured" if gain is None else moved(-gain)


def _number(value) -> float | None:
    return float("inf") if value == "inf" else value


def _until_next_scheduled_run() -> float | None:
    """Seconds until this deployment's next scheduled run (a run of it started by its schedule or by hand);
    None outside a deployment (`kup finetune` in a shell has no deadline)."""
    from datetime import UTC, datetime

    from prefect.runtime import deployment, flow_run

    if not deployment.name or not flow_run.id:
        return None
    from prefect.settings import PREFECT_API_URL

    from flows.prefect_http import first_scheduled_run

    when = first_scheduled_run(PREFECT_API_URL.value() or "", deployment.name)
    return None if when is None else max(0.0, (when - datetime.now(UTC)).total_seconds())


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}"


def verdict_markdown(outcome: FinetuneOutcome) -> str:
    s = outcome.summary
    verdict = outcome.verdict
    head = "✅ PROMOTED to champion" if outcome.status == "promoted" else "❌ REJECTED; the champion stays in service"
    lines = [
        f"## {head}: adapter `{outcome.adapter.id}`",
        "",
        f"* Started from: `{outcome.parent or 'the base model'}`; method `{outcome.adapter.manifest['method']}`",
        f"* Loss on the new documents {_fell(s.get('new_gain'))} (held-out new documents "
        f"{_fell(s.get('new_heldout_gain'))}); on earlier documents {_rose(s.get('earlier_forgetting'))}, on general "
        f"text {_rose(s.get('general_forgetting'))}",
        f"* Closed-book probes: {fuar_words(_number(s.get('fuar')), s.get('probes_gained'), s.get('probes_forgotten'))}"
        " (FUAR: forgotten / gained)",
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


def tell_the_fleet(settings, *, promoted: bool) -> str | None:
    """Tell the serving servers the champion (after a promotion: all of them; otherwise those still pending); a
    sentence naming those that did not take it, also kept as the run's ``serving`` artifact, or None."""
    from training.registry import AdapterRegistry
    from training.serving import announce, failure_sentence

    servers = serving_servers(settings)
    if not servers:
        return None
    outcomes = announce(servers, AdapterRegistry(settings.data_path / "adapters"), only_pending=not promoted)
    if outcomes:
        create_table_artifact(
            key="serving", table=[vars(o) for o in outcomes], description="what each serving server was told"
        )
    return failure_sentence(outcomes)


@flow(name="finetune")
def finetune(recipe: str | None = None, method: str | None = None, progress_bar: bool = False) -> State:
    """Train a candidate adapter on documents since the champion's watermark; promote it if the gate passes."""
    logger = get_run_logger()
    settings = load_settings()
    chosen = load_recipe(Path(recipe) if recipe else settings.recipe, method=method)
    progress = create_progress_artifact(0.0, key="finetune-progress", description="optimizer steps done")
    began = time.monotonic()
    training_began: list[float] = []
    bar = None

    def on_stage(line: str) -> None:
        """Each stage as it begins, with the time so far: the run is never silent before its first step."""
        logger.info("[%s] %s", _clock(time.monotonic() - began), line)

    def on_step(step: int, total: int, loss: float) -> None:
        nonlocal bar
        now = time.monotonic()
        if not training_began:
            training_began.append(now)
        per_step = (now - training_began[0]) / max(1, step - 1) if step > 1 else None
        eta = f", about {_clock(per_step * (total - step))} left" if per_step else ""
        if step == 1 or step == total or step % 5 == 0:
            update_progress_artifact(progress, 100.0 * step / total)
            if not progress_bar:
                logger.info("training: step %d of %d, loss %.3f%s", step, total, loss, eta)
        if progress_bar:
            if bar is None:
                from tqdm import tqdm

                bar = tqdm(desc="training", unit="step", total=total)
            bar.set_postfix(loss=f"{loss:.3f}")
            bar.update(1)

    try:
        with Runtime(settings) as runtime:
            outcome = run_finetune(
                runtime.catalog,
                settings.data_path,
                chosen,
                base_model=settings.base_model,
                on_step=on_step,
                on_stage=on_stage,
                budget_seconds=_until_next_scheduled_run(),
            )
    except KupError as exc:  # a recipe that cannot finish in time, a model that cannot load: one sentence
        logger.error("fine-tune refused: %s", exc)
        return failed(str(exc))
    if bar is not None:
        bar.close()
    if outcome.status == "nothing-new":
        logger.info("no new documents since the champion's watermark; nothing trained")
        if refused := tell_the_fleet(settings, promoted=False):  # a champion a server has not taken yet
            return failed(f"nothing new to learn, but {refused}")
        return Completed(message="nothing new to learn", data={"status": outcome.status, "data": outcome.data})
    update_progress_artifact(progress, 100.0)
    create_table_artifact(
        key="finetune-metrics", table=outcome.metrics, description="NLL per evaluation set: base, champion, candidate"
    )
    create_markdown_artifact(
        key="finetune-verdict",
        markdown=verdict_markdown(outcome),
        description=f"{outcome.status.upper()}: the gate's verdict on adapter {outcome.adapter.id}",
    )
    tag_this_run(outcome.status)  # "rejected" or "promoted", in the runs list at a glance
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
    if refused := tell_the_fleet(settings, promoted=outcome.status == "promoted"):
        return failed(f"adapter {outcome.adapter.id} {outcome.status}, but {refused}")
    if outcome.status == "rejected":  # the run worked; its candidate did not pass: a state named so
        return Completed(
            name="Rejected", message="adapter rejected: " + "; ".join(outcome.verdict.reasons), data=result
        )
    return Completed(message=f"adapter {outcome.adapter.id} promoted", data=result)

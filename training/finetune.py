"""One continual update: data since the champion, Mix-review LoRA training from the champion, evaluation,
the gate, and registration (promoted when the gate passes, kept as rejected otherwise).

One concept, ~360 lines: the steps of one update end to end, in order.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from errors import ConfigError
from indexing import Catalog
from training.base_model import load_base
from training.corpus import build_datasets, synthetic_cache_path, synthetic_text, to_samples
from training.distillation import student_samples, teach
from training.evaluation import metrics_table, score_sets, summary, temporal_report
from training.gate import Verdict, judge
from training.probes import (
    PROBES_FILE,
    anchor_questions,
    anchor_samples,
    answers,
    fuar,
    general_probes,
    probe_table,
    read_probes,
    write_probes,
)
from training.recipe import Recipe
from training.registry import Adapter, AdapterRegistry
from training.synthesis import SynthesisCache, make_probes, synthesize
from training.trainer import TrainResult, attach_adapter, sampler_for, train

logger = logging.getLogger(__name__)


@dataclass
class FinetuneOutcome:
    status: str  # "promoted", "rejected" or "nothing-new"
    adapter: Adapter | None = None
    parent: str | None = None
    verdict: Verdict | None = None
    metrics: list[dict] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    temporal: list[dict] = field(default_factory=list)
    training: TrainResult | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def loss_curve_png(losses: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    ax.plot(range(1, len(losses) + 1), losses, color="#1f77b4")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _watermark(champion: Adapter | None) -> datetime | None:
    """The newest change the champion saw; ConfigError naming the adapter when its manifest lacks it."""
    if champion is None:
        return None
    value = champion.manifest.get("watermark")
    try:
        return datetime.fromisoformat(value) if value is not None else None
    except (TypeError, ValueError):
        raise ConfigError(
            f"the champion {champion.id} has no valid watermark in its manifest.json; "
            "make another the champion with `kup adapters promote ID` or `kup adapters rollback`"
        ) from None


def earlier_probes(registry: AdapterRegistry, champion: Adapter | None) -> list[dict]:
    """The probes of the champion and every adapter it descends from (what earlier updates taught)."""
    out: dict[str, dict] = {}
    seen: set[str] = set()
    current = champion
    while current is not None and current.id not in seen:
        seen.add(current.id)
        for probe in read_probes(current.path / PROBES_FILE):
            out.setdefault(probe["id"], probe)
        parent = current.manifest.get("parent")
        try:
            current = registry.get(parent) if parent else None
        except ConfigError:
            current = None
    return list(out.values())


def _finite(value: float | None) -> float | str | None:
    """FUAR for JSON: infinity (forgot something, gained nothing) as the string "inf"."""
    return "inf" if value is not None and math.isinf(value) else value


def _load_teacher(recipe: Recipe, base):
    """(model, tokenizer, name) of the teacher: the base model itself, or the recipe's local model directory."""
    if recipe.teacher_model is None:
        return base.model, base.tokenizer, base.name
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(recipe.teacher_model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(base.device)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"teacher_model {path} cannot be loaded as a causal language model ({first}); name a complete local "
            "Hugging Face model directory (config, tokenizer and weights) or remove teacher_model"
        ) from None
    return model, tokenizer, path


def distill_data(base, data, synth, earlier, cache, recipe: Recipe):
    """Prompt distillation's samples: the teacher's answers about the new documents (``synth``: a teacher pass each,
    or the cache), and about the earlier ones (``earlier``) when the cache holds them (review, no teacher pass);
    and the report."""
    answers, report = teach(
        base.model, base.tokenizer, data.train_docs, synth, cache, recipe.distill, teacher_name=base.name,
        seed=recipe.seed,
    )  # fmt: skip
    reviewed, _ = teach(
        base.model, base.tokenizer, data.earlier_docs, earlier, cache, recipe.distill, teacher_name=base.name,
        seed=recipe.seed, cached_only=True,
    )  # fmt: skip
    data.earlier_review += student_samples(base.tokenizer, reviewed, "earlier")
    return student_samples(base.tokenizer, answers, "new"), report


def synthesis_checks(report) -> list[dict]:
    """What synthesis made of the trained documents, as entries of the verdict's checks (so the dashboard shows a
    skipped document or a teacher that wrote nothing usable beside the gate's expectations)."""
    if not report.documents:
        return []
    skipped = [s["doc_id"] for s in report.skipped]
    made = report.documents - len(skipped)
    text = f"synthesis made questions for {made} of {report.documents} trained document(s)"
    if skipped:
        shown = ", ".join(map(str, skipped[:10])) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        text += f"; skipped, no extractable facts: {shown}"
    checks = [{"expectation": text, "passed": made > 0}]
    checks += [{"expectation": f"synthesis: {w}", "passed": False} for w in report.warnings if "teacher" in w]
    return checks


def distill_checks(report) -> list[dict]:
    """What the teacher made of the trained documents, as entries of the verdict's checks."""
    if not report.documents:
        return []
    taught = report.documents - len(report.skipped)
    text = (
        f"distillation: the teacher answered {report.questions} question(s) about {taught} of {report.documents} "
        f"document(s), {report.answers_kept} answer(s) kept"
    )
    if report.dropped:
        text += "; dropped: " + ", ".join(f"{n} {why}" for why, n in sorted(report.dropped.items()))
    checks = [{"expectation": text, "passed": taught > 0}]
    checks += [{"expectation": f"distillation skipped {s['doc_id']}: {s['reason']}", "passed": False}
               for s in report.skipped[:10]]  # fmt: skip
    return checks


def planned_tokens(sampler, recipe: Recipe) -> int:
    """Tokens the optimizer will see over the recipe's epochs (new windows and each epoch's review draw)."""
    return sum(len(item.ids) for plan in sampler.plan(recipe.epochs) for item in plan.items)


def measured_speed(registry: AdapterRegistry, base_name: str) -> tuple[float, str] | None:
    """Tokens per second of the newest adapter trained on ``base_name`` here, and its id; None without one."""
    for adapter in reversed(registry.list()):
        training = adapter.manifest.get("training") or {}
        if adapter.manifest.get("base_model") == base_name and training.get("tokens_per_second"):
            return float(training["tokens_per_second"]), adapter.id
    return None


def training_plan(sampler, recipe: Recipe, registry: AdapterRegistry, base_name: str, budget: float | None) -> str:
    """The training stage in one sentence, with how long it will take on this machine; refused (ConfigError) when
    that is longer than ``budget`` seconds."""
    from errors.durations import human_duration

    tokens = planned_tokens(sampler, recipe)
    head = f"training ({recipe.method}): {tokens:,} tokens over {recipe.epochs} epoch(s)"
    speed = measured_speed(registry, base_name)
    if speed is None:
        return f"{head}; no earlier adapter of {base_name} to time it by, so the first steps will tell how long"
    rate, adapter = speed
    estimate = tokens / rate
    if budget is not None and estimate > budget:
        raise ConfigError(
            f"this recipe needs about {human_duration(estimate)} of training on this machine ({tokens:,} tokens at "
            f"{rate:,.0f} tokens/s, as adapter {adapter} trained), more than the {human_duration(budget)} until the "
            "next scheduled fine-tune; lower epochs, mix_ratio or the documents per update in the recipe"
        )
    return f"{head}; about {human_duration(estimate)} on this machine ({rate:,.0f} tokens/s, as adapter {adapter})"


def run_finetune(
    catalog: Catalog,
    data_dir: Path,
    recipe: Recipe,
    *,
    base_model: str | None = None,
    device: str | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    extra_general: list[str] | None = None,
    on_stage: Callable[[str], None] | None = None,
    budget_seconds: float | None = None,
) -> FinetuneOutcome:
    """Train a candidate adapter on what arrived since the champion and judge it; ``on_stage`` hears each stage as
    it begins (one sentence), ``on_step`` each optimizer step (step, total, loss). Before training, the time it will
    take is estimated from the tokens planned and the speed earlier adapters trained at on this machine; a plan that
    would outlast ``budget_seconds`` (the time to the next scheduled fine-tune) is refused in one sentence."""
    started = time.perf_counter()
    stage = on_stage or (lambda line: logger.info("%s", line))
    registry = AdapterRegistry(data_dir / "adapters")
    champion = registry.champion()
    watermark = _watermark(champion)
    stage("loading the base model")
    base = load_base(base_model, data_dir, device=device)
    pad_id = base.tokenizer.pad_token_id

    stage(
        f"general reference text: {recipe.synthetic_samples} sample(s) from the base model (cached after the first run)"
    )
    synthetic = synthetic_text(
        base.model,
        base.tokenizer,
        samples=recipe.synthetic_samples,
        max_new_tokens=recipe.synthetic_tokens,
        cache=synthetic_cache_path(data_dir, base.name, recipe),
        seed=recipe.seed,
    )
    data = build_datasets(
        catalog, base.tokenizer, recipe, watermark=watermark, synthetic=synthetic, extra_general=extra_general
    )
    described = {
        "new_documents": data.new_documents,
        "new_windows": len(data.new_train),
        "new_heldout_windows": len(data.new_heldout),
        "earlier_review": len(data.earlier_review),
        "general_review": len(data.general_review),
        "general_sources": data.sources,
    }
    if not data.new_train:
        return FinetuneOutcome(
            status="nothing-new",
            parent=champion.id if champion else None,
            data=described,
            seconds=time.perf_counter() - started,
        )

    # Knowledge synthesis: QA pairs and restatements of the trained documents (and, for review, of earlier
    # ones, re-made from the cache); held-out questions become this update's probes.
    cache = SynthesisCache(data_dir / "cache" / "synthesis.sqlite")
    if recipe.synthesis == "teacher":
        stage("loading the teacher model for synthesis")
    teacher = _load_teacher(recipe, base) if recipe.synthesis == "teacher" else None
    stage(
        f"synthesis ({recipe.synthesis}): questions and restatements of {len(data.train_docs)} new document(s) "
        "(cached per document)"
    )
    synth, synth_report = synthesize(
        data.train_docs,
        cache,
        mode=recipe.synthesis,
        paraphrases=recipe.paraphrases_per_doc,
        qa=recipe.qa_per_doc,
        teacher=teacher[:2] if teacher else None,
        teacher_name=teacher[2] if teacher else "base",
        seed=recipe.seed,
    )
    earlier = []  # the earlier documents' synthesis, for review: their text, their teacher answers, or both
    if recipe.synthesis != "none":
        earlier, _ = synthesize(
            data.earlier_docs, cache, mode="augment", paraphrases=recipe.paraphrases_per_doc, qa=0, seed=recipe.seed
        )
    if recipe.synthesis != "none" and recipe.objective != "distill":
        texts = [t for s in synth for t in s.training_texts()]
        data.new_synth = to_samples(base.tokenizer, texts, "new", recipe)
        earlier_texts = [t for s in earlier for t in s.training_texts()]
        data.earlier_review += to_samples(base.tokenizer, earlier_texts, "earlier", recipe)
    described["synthesis"] = synth_report.as_dict()
    described["new_synthetic_windows"] = len(data.new_synth)
    distill_report = None
    if recipe.objective != "text":
        stage(
            f"teacher: the base model answers up to {recipe.distill.questions_per_doc} question(s) about each of "
            f"{len(data.train_docs)} new document(s) with the document in its prompt (cached per document)"
        )
        distilled, distill_report = distill_data(base, data, synth, earlier, cache, recipe)
        data.new_synth += distilled
        described["distillation"] = distill_report.as_dict()
    new_probes = make_probes(synth, seed=recipe.seed)
    probe_sets = {"new": new_probes, "earlier": earlier_probes(registry, champion), "general": general_probes()}
    probe_sets = {name: probes for name, probes in probe_sets.items() if probes or name == "new"}

    def probe_answers(model) -> dict[str, list[bool]]:
        return {name: answers(model, base.tokenizer, p, device=base.device) for name, p in probe_sets.items()}

    sets = data.eval_sets()
    stage("scoring the base model and the champion before training (loss and closed-book probes)")
    base_scores = score_sets(base.model, sets, pad_id=pad_id, device=base.device)
    base_answers = probe_answers(base.model)
    model = attach_adapter(base.model, recipe, champion.path if champion else None)
    champion_scores = score_sets(model, sets, pad_id=pad_id, device=base.device) if champion else base_scores
    champion_answers = probe_answers(model) if champion else base_answers

    text = data.new_train if recipe.objective != "distill" else []  # distill alone: the teacher's answers only
    sampler = sampler_for(recipe, text + data.new_synth, data.review_pool)
    fisher_data = data.earlier_review or data.general_review  # the previous champion's data, for EWC
    anchor = anchor_samples(base.tokenizer, anchor_questions()) if recipe.anchor_weight else []
    stage(training_plan(sampler, recipe, registry, base.name, budget_seconds))
    result = train(
        model,
        sampler,
        recipe,
        pad_id=pad_id,
        device=base.device,
        on_step=on_step,
        fisher_data=fisher_data,
        anchor_prompts=anchor,
    )
    stage("scoring the candidate and judging it against the gate")
    candidate_scores = score_sets(model, sets, pad_id=pad_id, device=base.device)
    candidate_answers = probe_answers(model)

    rows = metrics_table(base_scores, champion_scores, candidate_scores)
    probe_rows = probe_table(base_answers, champion_answers, candidate_answers)
    forgetting = fuar(champion_answers, candidate_answers)
    verdict = judge(rows, recipe.gate, probes=probe_rows, fuar=forgetting["fuar"])
    verdict.checks += synthesis_checks(synth_report)
    if distill_report is not None:
        verdict.checks += distill_checks(distill_report)
    temporal = temporal_report(model, data.new_train + data.earlier_eval, pad_id=pad_id, device=base.device)
    figures = summary(rows)
    by_probe_set = {r["set"]: r for r in probe_rows}
    figures.update(
        {
            "probe_new_accuracy": by_probe_set["new"]["acc_candidate"],
            "probe_new_change": by_probe_set["new"]["change"],
            "probe_earlier_change": by_probe_set.get("earlier", {}).get("change"),
            "general_probe_change": by_probe_set.get("general", {}).get("change"),
            "fuar": _finite(forgetting["fuar"]),
            "probes_gained": forgetting["updated"] + forgetting["acquired"],
            "probes_forgotten": forgetting["forgotten"],
        }
    )

    def write(directory: Path) -> None:
        model.save_pretrained(directory)
        (directory / "recipe.yaml").write_text(recipe.to_yaml())
        write_probes(directory / PROBES_FILE, new_probes)
        if result.losses:
            loss_curve_png(result.losses, directory / "loss.png", f"{recipe.method}: {result.steps} steps")

    adapter = registry.add(
        write,
        {
            "base_model": base.name,
            "parent": champion.id if champion else None,
            "method": recipe.method,
            "watermark": data.watermark.isoformat() if data.watermark else None,
            "recipe": recipe.model_dump(mode="json"),
            "metrics": rows,
            "probes": {"table": probe_rows, **forgetting, "fuar": _finite(forgetting["fuar"])},
            "summary": figures,
            "temporal": temporal,
            "verdict": {"passed": verdict.passed, "reasons": verdict.reasons, "checks": verdict.checks},
            "training": {
                "steps": result.steps,
                "tokens": result.tokens,
                "seconds": round(result.seconds, 2),
                "tokens_per_second": round(result.tokens_per_second, 1),
                "epochs": result.epochs,
            },
            "data": described,
        },
    )
    if verdict.passed:
        registry.promote(adapter.id)
        logger.info("adapter %s promoted: %s", adapter.id, figures)
    else:
        logger.warning("adapter %s rejected, champion unchanged: %s", adapter.id, "; ".join(verdict.reasons))
    return FinetuneOutcome(
        status="promoted" if verdict.passed else "rejected",
        adapter=adapter,
        parent=champion.id if champion else None,
        verdict=verdict,
        metrics=rows,
        summary=figures,
        temporal=temporal,
        training=result,
        data=described,
        seconds=time.perf_counter() - started,
    )

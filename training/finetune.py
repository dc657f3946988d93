"""One continual update: data since the champion, Mix-review LoRA training from the champion, evaluation,
the gate, and registration (promoted when the gate passes, kept as rejected otherwise)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from indexing import Catalog
from training.base_model import load_base
from training.corpus import build_datasets, synthetic_cache_path, synthetic_text
from training.evaluation import metrics_table, score_sets, summary, temporal_report
from training.gate import Verdict, judge
from training.recipe import Recipe
from training.registry import Adapter, AdapterRegistry
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


def run_finetune(
    catalog: Catalog,
    data_dir: Path,
    recipe: Recipe,
    *,
    base_model: str | None = None,
    device: str | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    extra_general: list[str] | None = None,
) -> FinetuneOutcome:
    started = time.perf_counter()
    registry = AdapterRegistry(data_dir / "adapters")
    champion = registry.champion()
    watermark = datetime.fromisoformat(champion.manifest["watermark"]) if champion else None
    base = load_base(base_model, data_dir, device=device)
    pad_id = base.tokenizer.pad_token_id

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

    sets = data.eval_sets()
    base_scores = score_sets(base.model, sets, pad_id=pad_id, device=base.device)
    model = attach_adapter(base.model, recipe, champion.path if champion else None)
    champion_scores = score_sets(model, sets, pad_id=pad_id, device=base.device) if champion else base_scores

    sampler = sampler_for(recipe, data.new_train, data.review_pool)
    result = train(model, sampler, recipe, pad_id=pad_id, device=base.device, on_step=on_step)
    candidate_scores = score_sets(model, sets, pad_id=pad_id, device=base.device)

    rows = metrics_table(base_scores, champion_scores, candidate_scores)
    verdict = judge(rows, recipe.gate)
    temporal = temporal_report(model, data.new_train + data.earlier_eval, pad_id=pad_id, device=base.device)
    figures = summary(rows)

    def write(directory: Path) -> None:
        model.save_pretrained(directory)
        (directory / "recipe.yaml").write_text(recipe.to_yaml())
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

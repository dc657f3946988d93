"""Continual fine-tuning: Mix-review LoRA updates whose forgetting is checked before promotion."""

from training.base_model import BaseLM, load_base
from training.corpus import Sample, python_text, split_holdout, synthetic_cache_path, synthetic_text, windows
from training.evaluation import score_sets, summary
from training.finetune import FinetuneOutcome, run_finetune
from training.gate import Verdict, judge
from training.mix_review import MixReviewSampler, PlainSampler, review_count
from training.recipe import Gate, Recipe, load_recipe
from training.registry import Adapter, AdapterRegistry
from training.trainer import TrainResult, attach_adapter, batches, collate, sampler_for, set_seed, train

__all__ = [
    "Adapter",
    "AdapterRegistry",
    "BaseLM",
    "FinetuneOutcome",
    "Gate",
    "MixReviewSampler",
    "PlainSampler",
    "Recipe",
    "Sample",
    "TrainResult",
    "Verdict",
    "attach_adapter",
    "batches",
    "collate",
    "judge",
    "load_base",
    "load_recipe",
    "python_text",
    "review_count",
    "run_finetune",
    "sampler_for",
    "score_sets",
    "set_seed",
    "split_holdout",
    "summary",
    "synthetic_cache_path",
    "synthetic_text",
    "train",
    "windows",
]

"""Continual fine-tuning: Mix-review LoRA updates whose forgetting is checked before promotion."""

from training.finetune import FinetuneOutcome, run_finetune
from training.mix_review import MixReviewSampler, review_count
from training.recipe import Recipe, load_recipe
from training.registry import Adapter, AdapterRegistry

__all__ = [
    "Adapter",
    "AdapterRegistry",
    "FinetuneOutcome",
    "MixReviewSampler",
    "Recipe",
    "load_recipe",
    "review_count",
    "run_finetune",
]

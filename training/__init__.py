"""Continual fine-tuning: LoRA updates on synthesised knowledge (restatements, question-answer pairs), trained with
a continual-learning method (Mix-review, L2, RecAdam, EWC), judged by held-out probes and NLL before promotion.

Importing this package loads no model library (torch loads when a model is); ``training.methods`` (RecAdam, EWC)
and ``training.drift`` load torch and are imported from their modules."""

from training.base_model import BaseLM, load_base
from training.corpus import (
    Sample,
    pack,
    python_text,
    split_holdout,
    synthetic_cache_path,
    synthetic_text,
    to_samples,
    windows,
)
from training.evaluation import score_sets, summary
from training.finetune import FinetuneOutcome, run_finetune
from training.gate import Verdict, judge
from training.mix_review import MixReviewSampler, PlainSampler, review_count
from training.probes import accuracy, answers, fuar, general_probes, probe_table, read_probes, write_probes
from training.recipe import Gate, Recipe, load_recipe
from training.registry import Adapter, AdapterRegistry
from training.synthesis import DocSynthesis, SynthesisCache, SynthesisReport, augment, make_probes, synthesize
from training.trainer import TrainResult, attach_adapter, batches, collate, sampler_for, set_seed, train

__all__ = [
    "Adapter",
    "AdapterRegistry",
    "BaseLM",
    "DocSynthesis",
    "FinetuneOutcome",
    "Gate",
    "MixReviewSampler",
    "PlainSampler",
    "Recipe",
    "Sample",
    "SynthesisCache",
    "SynthesisReport",
    "TrainResult",
    "Verdict",
    "accuracy",
    "answers",
    "attach_adapter",
    "augment",
    "batches",
    "collate",
    "fuar",
    "general_probes",
    "judge",
    "load_base",
    "load_recipe",
    "make_probes",
    "pack",
    "probe_table",
    "python_text",
    "read_probes",
    "review_count",
    "run_finetune",
    "sampler_for",
    "score_sets",
    "set_seed",
    "split_holdout",
    "summary",
    "synthesize",
    "synthetic_cache_path",
    "synthetic_text",
    "to_samples",
    "train",
    "windows",
    "write_probes",
]

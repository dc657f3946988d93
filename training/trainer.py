"""LoRA training: attach (or continue) an adapter, then one readable loop over Mix-review epochs."""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from training.corpus import Sample, pack
from training.mix_review import MixReviewSampler, PlainSampler
from training.recipe import Recipe

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # per optimizer step
    epochs: list[dict] = field(default_factory=list)  # new and review samples (and their tokens) per epoch
    tokens: int = 0  # tokens trained on (not padding)
    steps: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


def set_seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def attach_adapter(model, recipe: Recipe, start_from: Path | None = None):
    """A trainable LoRA adapter on the frozen base: a fresh one, or the champion's to continue from."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if start_from is not None:
        return PeftModel.from_pretrained(model, str(start_from), is_trainable=True)
    config = LoraConfig(
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=recipe.lora_targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def collate(samples: Sequence[Sample], pad_id: int, device: str) -> dict:
    """Right-padded ids, the attention mask, and labels that ignore the padding and each sample's context."""
    import torch

    longest = max(len(s.ids) for s in samples)
    ids = torch.full((len(samples), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(samples), longest), dtype=torch.long)
    labels = torch.full((len(samples), longest), -100, dtype=torch.long)
    for row, sample in enumerate(samples):
        ids[row, : len(sample.ids)] = torch.tensor(sample.ids)
        mask[row, : len(sample.ids)] = 1
        labels[row, sample.context : len(sample.ids)] = ids[row, sample.context : len(sample.ids)]
    batch = {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}
    distilled = [s.teacher is not None for s in samples]
    if any(distilled):  # prompt distillation: the teacher's top-k at the answer tokens (training.distillation)
        from training.distillation import teacher_targets

        top_k = min(len(s.teacher[0][0]) for s in samples if s.teacher is not None and s.teacher[0])
        top_ids, top_logprobs, where = teacher_targets(samples, longest, top_k)
        batch |= {
            "teacher_ids": top_ids.to(device),
            "teacher_logprobs": top_logprobs.to(device),
            "teacher_mask": where.to(device),
            "teacher_rows": torch.tensor(distilled, device=device),
        }
    return batch


def batches(items: Sequence[Sample], size: int) -> list[list[Sample]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _tokens(sample: Sample) -> int:
    return len(sample.ids)


def sampler_for(recipe: Recipe, new: Sequence[Sample], review: Sequence[Sample]) -> MixReviewSampler:
    if recipe.method == "mix_review":
        return MixReviewSampler(
            new, review, mix_ratio=recipe.mix_ratio, mix_decay=recipe.mix_decay, seed=recipe.seed, size=_tokens
        )
    return PlainSampler(new, seed=recipe.seed)


def train(
    model,
    sampler: MixReviewSampler,
    recipe: Recipe,
    *,
    pad_id: int,
    device: str,
    on_step: Callable[[int, int, float], None] | None = None,
    fisher_data: Sequence[Sample] = (),
    anchor_prompts: Sequence[Sample] = (),
) -> TrainResult:
    """Train ``model`` (a peft model) over the sampler's epochs. ``on_step(step, total, loss)`` reports progress;
    ``fisher_data`` (the previous champion's data) is what EWC estimates its Fisher on; ``anchor_prompts`` (general
    questions with each answer) is what the answer anchor holds, when the recipe's ``anchor_weight`` is above 0."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    from training.distillation import batch_loss
    from training.methods import RecAdam, answer_anchor, ewc_penalty, fisher_diagonal  # loads torch: only here

    set_seed(recipe.seed)
    plans = sampler.plan(recipe.epochs)
    packed = [pack(plan.items, recipe.max_seq_len) if recipe.pack else plan.items for plan in plans]
    epoch_batches = [batches(items, recipe.batch_size) for items in packed]
    total_steps = sum(math.ceil(len(b) / recipe.grad_accumulation) for b in epoch_batches)
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.method == "recadam":  # the annealed pull toward the start lives inside the optimizer
        optimizer = RecAdam(
            params, lr=recipe.learning_rate, coef=recipe.recadam_coef, k=recipe.recadam_k, t0=recipe.recadam_t0
        )
    else:
        optimizer = torch.optim.AdamW(params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, round(recipe.warmup_ratio * total_steps), total_steps)
    # l2 and ewc pull the adapter toward where this update started (the champion), not toward zero.
    start = [p.detach().clone() for p in params] if recipe.method in ("l2", "ewc") else None
    fisher = None
    if recipe.method == "ewc":
        picked = list(fisher_data)[: recipe.ewc_samples]
        fisher = fisher_diagonal(model, params, [collate([s], pad_id, device) for s in picked])
    prompts = list(anchor_prompts) if recipe.anchor_weight else []
    random.Random(f"{recipe.seed}:anchor").shuffle(prompts)  # the question file is grouped by topic
    anchor_batches = [collate(b, pad_id, device) for b in batches(prompts, recipe.anchor_batch)]
    # bf16 autocast on a GPU; plain fp32 on the CPU (bf16 matmuls there are slower, not faster).
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else contextlib.nullcontext()

    new_tokens = sum(map(_tokens, sampler.new))
    result = TrainResult(
        epochs=[
            {
                "epoch": p.epoch,
                "new": p.new,
                "review": p.review,
                "new_tokens": new_tokens,
                "review_tokens": sum(map(_tokens, p.items)) - new_tokens,
            }
            for p in plans
        ]
    )
    model.train()
    started = time.perf_counter()
    step = 0
    for batches_of_epoch in epoch_batches:
        running = 0.0
        for i, batch_samples in enumerate(batches_of_epoch):
            batch = collate(batch_samples, pad_id, device)
            with autocast:
                loss = batch_loss(model, batch)
            if fisher is not None:  # EWC: Fisher-weighted pull toward the champion's adapter
                loss = loss + ewc_penalty(params, start, fisher, recipe.ewc_lambda)
            elif start is not None:  # L2 penalty toward the starting adapter weights
                loss = loss + recipe.l2_weight * sum(((p - a) ** 2).sum() for p, a in zip(params, start, strict=True))
            if anchor_batches:  # the base's answers to general questions, held
                with autocast:
                    loss = loss + recipe.anchor_weight * answer_anchor(model, anchor_batches[i % len(anchor_batches)])
            (loss / recipe.grad_accumulation).backward()
            running += loss.item() / recipe.grad_accumulation
            result.tokens += int(batch["attention_mask"].sum())
            last_of_epoch = i == len(batches_of_epoch) - 1
            if (i + 1) % recipe.grad_accumulation == 0 or last_of_epoch:
                torch.nn.utils.clip_grad_norm_(params, recipe.max_grad_norm)  # clip before the step
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                result.losses.append(running)
                if on_step:
                    on_step(step, total_steps, running)
                running = 0.0
    result.steps = step
    result.seconds = time.perf_counter() - started
    model.eval()
    return result

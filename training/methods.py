"""Continual-learning methods that hold the adapter near what it knew: RecAdam, EWC and the answer anchor.

RecAdam (Chen et al., EMNLP 2020, "Recall and Learn"): the objective ``lambda(t) * loss + (1 - lambda(t)) *
(coef / 2) * |theta - theta0|^2`` with ``lambda(t) = 1 / (1 + exp(-k (t - t0)))``, applied inside the
optimiser as in the paper's code: the Adam step of the task gradient is scaled by ``lambda(t)`` and a
separate pull ``lr * (1 - lambda(t)) * coef * (theta - theta0)`` is subtracted, so the pull toward the
starting weights is strong early and annealed away.

EWC (Kirkpatrick et al., PNAS 2017): the penalty ``lambda / 2 * sum_i F_i (theta_i - theta*_i)^2`` with the
diagonal Fisher ``F_i`` estimated as the mean squared gradient of the log-likelihood over the previous
champion's data, taken over the trainable (LoRA) parameters only.

The answer anchor (a Learning-without-Forgetting-style distillation, Li and Hoiem 2017, on the answers):
``weight * KL(base || adapted)`` of the next-token distribution at each token of "Question: ...\nAnswer: <choice>",
from the answer's first token to its last, for each choice of general questions that are not probes (what a
multiple-choice question scores: the likelihood of each choice after the question). Training on question-answer
pairs about the news moves what the model answers to every question (its answer prior); this term holds the
answers to questions about other things where the base model had them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def anneal(step: int, k: float, t0: float) -> float:
    """RecAdam's sigmoid schedule: the weight of the task loss at optimizer step ``step`` (1-based)."""
    return 1.0 / (1.0 + math.exp(-k * (step - t0)))


class RecAdam(torch.optim.Optimizer):
    """Adam whose step is scaled by ``anneal(t)`` plus an annealed quadratic pull toward the start weights."""

    def __init__(self, params, *, lr: float, coef: float, k: float, t0: float, betas=(0.9, 0.999), eps: float = 1e-8):
        super().__init__(list(params), {"lr": lr, "betas": betas, "eps": eps, "coef": coef, "k": k, "t0": t0})
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p]["anchor"] = p.detach().clone()

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                state["step"] = state.get("step", 0) + 1
                t = state["step"]
                weight = anneal(t, group["k"], group["t0"])
                if p.grad is not None:
                    if "exp_avg" not in state:
                        state["exp_avg"] = torch.zeros_like(p)
                        state["exp_avg_sq"] = torch.zeros_like(p)
                    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                    exp_avg.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                    exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                    denom = (exp_avg_sq / (1 - beta2**t)).sqrt_().add_(group["eps"])
                    p.addcdiv_(exp_avg / (1 - beta1**t), denom, value=-group["lr"] * weight)
                # The annealed pull toward where this update started, on the weights after the Adam step (as the
                # paper's code does it).
                p.add_(p - state["anchor"], alpha=-group["lr"] * (1 - weight) * group["coef"])
        return loss


def fisher_diagonal(model, params: Sequence[torch.Tensor], batches: Sequence[dict]) -> list[torch.Tensor]:
    """Mean squared gradient of the log-likelihood per parameter, one batch at a time (the empirical Fisher)."""
    fisher = [torch.zeros_like(p) for p in params]
    if not batches:
        return fisher
    was_training = model.training
    model.eval()  # no dropout: the Fisher of the model as it is
    for batch in batches:
        model.zero_grad(set_to_none=True)
        model(**{k: v for k, v in batch.items() if not k.startswith("teacher_")}).loss.backward()  # the tokens' CE
        for f, p in zip(fisher, params, strict=True):
            if p.grad is not None:
                f.add_(p.grad.detach() ** 2)
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return [f / len(batches) for f in fisher]


def ewc_penalty(
    params: Sequence[torch.Tensor], anchor: Sequence[torch.Tensor], fisher: Sequence[torch.Tensor], strength: float
) -> torch.Tensor:
    """``strength / 2 * sum_i F_i (theta_i - theta*_i)^2``."""
    total = sum(((p - a) ** 2 * f).sum() for p, a, f in zip(params, anchor, fisher, strict=True))
    return 0.5 * strength * total


def answer_anchor(model, batch: dict) -> torch.Tensor:
    """``KL(base || adapted)`` of the next-token distribution at each position that predicts a target token
    (``labels`` not -100: an answer after its question), mean over those positions; the base is the same peft
    model with its adapter switched off (no gradient)."""
    ids, mask = batch["input_ids"], batch["attention_mask"]
    targets = batch["labels"][:, 1:] != -100  # position t predicts token t + 1
    with torch.no_grad(), model.disable_adapter():
        base = model(input_ids=ids, attention_mask=mask).logits[:, :-1][targets].float().log_softmax(-1)
    adapted = model(input_ids=ids, attention_mask=mask).logits[:, :-1][targets].float().log_softmax(-1)
    return torch.nn.functional.kl_div(adapted, base, log_target=True, reduction="batchmean")

"""RecAdam and EWC against hand computations on tiny tensors, and each method selectable for a real run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import tiny_llama
from tests.training.conftest import FACTS
from training import PlainSampler, Sample, attach_adapter, load_recipe, train, windows
from training.methods import RecAdam, anneal, ewc_penalty, fisher_diagonal


def test_anneal_is_the_sigmoid_schedule() -> None:
    assert anneal(20, 0.5, 20) == 0.5
    assert anneal(1, 0.5, 20) == pytest.approx(1 / (1 + math.exp(9.5)))
    assert anneal(100, 0.5, 20) == pytest.approx(1.0)


def test_recadam_step_matches_the_hand_computation() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = RecAdam([p], lr=0.1, coef=5.0, k=0.5, t0=2)  # the anchor is [1, -2]
    with torch.no_grad():
        p.copy_(torch.tensor([1.5, -2.5]))  # the weights have moved away from the anchor
    p.grad = torch.tensor([0.2, -0.4])
    opt.step()
    w = 1 / (1 + math.exp(-0.5 * (1 - 2)))  # anneal(1)
    # Adam's first bias-corrected step is g / (|g| + eps): lr * w * sign(g) here.
    after_adam = [1.5 - 0.1 * w * 0.2 / (0.2 + 1e-8), -2.5 + 0.1 * w * 0.4 / (0.4 + 1e-8)]
    anchor = [1.0, -2.0]
    expected = [x - 0.1 * (1 - w) * 5.0 * (x - a) for x, a in zip(after_adam, anchor, strict=True)]
    assert p.detach().tolist() == pytest.approx(expected, abs=1e-6)


def test_recadam_pulls_back_without_a_gradient() -> None:
    p = torch.nn.Parameter(torch.tensor([0.0]))
    opt = RecAdam([p], lr=0.1, coef=2.0, k=1.0, t0=100)  # the pull is at full strength (w ~ 0)
    with torch.no_grad():
        p.fill_(1.0)
    opt.step()  # no gradient: only the pull, 1 - 0.1 * 2 * 1
    assert p.item() == pytest.approx(0.8, abs=1e-6)


def test_ewc_penalty_matches_the_hand_computation() -> None:
    params = [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]
    anchor = [torch.tensor([0.5, 2.0]), torch.tensor([[1.0]])]
    fisher = [torch.tensor([4.0, 9.0]), torch.tensor([[0.25]])]
    # 2 / 2 * (4 * 0.5^2 + 9 * 0 + 0.25 * 2^2) = 1 + 1
    assert ewc_penalty(params, anchor, fisher, 2.0).item() == pytest.approx(2.0)


def test_fisher_is_the_mean_squared_gradient_of_the_loss() -> None:
    class Square(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.tensor(3.0))

        def forward(self, x):
            return SimpleNamespace(loss=(self.w * x) ** 2)

    model = Square()
    fisher = fisher_diagonal(model, [model.w], [{"x": torch.tensor(1.0)}, {"x": torch.tensor(2.0)}])
    # d/dw (w x)^2 = 2 w x^2: 6 and 24; squared 36 and 576; mean 306.
    assert fisher[0].item() == pytest.approx(306.0)
    assert model.w.grad is None  # leaves no gradient behind


@pytest.mark.parametrize("method", ["recadam", "ewc", "l2", "none"])
def test_each_method_trains_the_tiny_model(method) -> None:
    model, tokenizer = tiny_llama(seed=0)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    recipe = load_recipe(None, method=method, epochs=2, batch_size=3, max_seq_len=64, learning_rate=0.05)
    samples = [Sample(ids, "new") for text in FACTS for ids in windows(tokenizer, text, 64, 1)]
    peft_model = attach_adapter(model, recipe)
    result = train(
        peft_model,
        PlainSampler(samples, seed=1),
        recipe,
        pad_id=tokenizer.pad_token_id,
        device="cpu",
        fisher_data=samples[:2],
    )
    assert result.steps == 4 and all(math.isfinite(x) for x in result.losses)
    moved = [p for name, p in peft_model.named_parameters() if "lora_B" in name and p.abs().sum() > 0]
    assert moved  # LoRA B starts at zero: the adapter was trained

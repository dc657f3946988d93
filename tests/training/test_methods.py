"""RecAdam, EWC and the answer anchor against hand computations on tiny tensors, and each method selectable for a
real run."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import tiny_llama
from tests.training.conftest import FACTS
from training import PlainSampler, Sample, attach_adapter, collate, load_recipe, train, windows
from training.methods import RecAdam, anneal, answer_anchor, ewc_penalty, fisher_diagonal
from training.probes import anchor_questions, anchor_samples, general_probes


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
    recipe = load_recipe(None, method=method, epochs=2, batch_size=3, max_seq_len=64, learning_rate=0.05, pack=False)
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


def test_answer_anchor_is_the_kl_from_the_base_over_each_answers_tokens() -> None:
    model, tokenizer = tiny_llama(seed=0)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    peft_model = attach_adapter(model, load_recipe(None)).eval()  # no LoRA dropout: the hand computation repeats it
    questions = [
        {"question": "What is the capital of Peru?", "choices": ["Lima", "Quito"]},
        {"question": "How many legs has a spider?", "choices": ["Eight", "Six legs in all"]},
    ]
    samples = anchor_samples(tokenizer, questions)
    assert len(samples) == 4 and all(0 < s.context < len(s.ids) for s in samples)
    batch = collate(samples, tokenizer.pad_token_id, "cpu")
    assert answer_anchor(peft_model, batch).item() == pytest.approx(0.0, abs=1e-6)  # LoRA B starts at zero
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    got = answer_anchor(peft_model, batch)
    total, positions = 0.0, 0
    for sample in samples:  # one sample at a time, no padding: KL(base || adapted) where each answer token is predicted
        ids = torch.tensor([sample.ids])
        with torch.no_grad(), peft_model.disable_adapter():
            p = torch.softmax(peft_model(input_ids=ids).logits[0], -1)
        with torch.no_grad():
            q = torch.softmax(peft_model(input_ids=ids).logits[0], -1)
        for t in range(sample.context - 1, len(sample.ids) - 1):
            total += float((p[t] * (p[t].log() - q[t].log())).sum())
            positions += 1
    assert got.item() > 1e-4 and got.item() == pytest.approx(total / positions, rel=1e-4)
    got.backward()
    graded = {name for name, p in peft_model.named_parameters() if p.grad is not None}
    assert graded and all("lora_" in name for name in graded)  # only the adapter is pulled back


def test_the_anchor_holds_the_answers_that_plain_training_moves() -> None:
    def drift(weight: float) -> float:
        model, tokenizer = tiny_llama(seed=0)
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        recipe = load_recipe(None, method="none", epochs=8, batch_size=3, max_seq_len=64, learning_rate=0.02,
                             anchor_weight=weight, anchor_batch=4)  # fmt: skip
        samples = [Sample(ids, "new") for text in FACTS for ids in windows(tokenizer, text, 64, 1)]
        anchored = anchor_samples(tokenizer, anchor_questions()[:2])  # 8 answers, two anchor batches
        peft_model = attach_adapter(model, recipe)
        train(peft_model, PlainSampler(samples, seed=1), recipe, pad_id=tokenizer.pad_token_id, device="cpu",
              anchor_prompts=anchored)  # fmt: skip
        with torch.no_grad():  # train() leaves the model in eval mode
            return answer_anchor(peft_model, collate(anchored, tokenizer.pad_token_id, "cpu")).item()

    plain, held = drift(0.0), drift(5.0)
    assert plain > 1e-3 and held < plain / 2


def test_anchor_questions_are_general_questions_that_are_not_probes() -> None:
    anchored = anchor_questions()
    questions = [q["question"] for q in anchored]
    probes = {p["question"] for p in general_probes()}
    assert len(questions) >= 50 and not probes & set(questions)
    assert len(set(questions)) == len(questions) and all(q.endswith("?") for q in questions)
    assert all(len(q["choices"]) == 4 for q in anchored)  # the right answer and three wrong ones

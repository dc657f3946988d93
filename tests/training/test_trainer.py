"""The LoRA training loop on the tiny Llama: pinned losses, padding, batching, and the adapter it trains."""

from __future__ import annotations

import pytest

from tests.conftest import tiny_llama
from tests.training.conftest import FACTS
from training import (
    PlainSampler,
    Sample,
    attach_adapter,
    batches,
    collate,
    load_recipe,
    pack,
    set_seed,
    train,
    windows,
)

# Loss of each of the first two optimizer steps: freshly initialised tiny Llama (seed 0), LoRA, lr 0.3,
# the six FACTS in two batches of three. The first pins initialisation, tokenising, windows and padding;
# the second pins the update (optimizer, schedule, clipping). Bit-identical across CPU thread counts.
GOLDEN_LOSSES = [10.803558, 10.781082]


def two_step_run():
    model, tokenizer = tiny_llama(seed=0)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    recipe = load_recipe(
        None, method="none", epochs=1, batch_size=3, max_seq_len=64, learning_rate=0.3, warmup_ratio=0.0, pack=False
    )
    samples = [Sample(ids, "new") for text in FACTS for ids in windows(tokenizer, text, 64, 1)]
    peft_model = attach_adapter(model, recipe)
    result = train(
        peft_model, PlainSampler(samples, seed=recipe.seed), recipe, pad_id=tokenizer.pad_token_id, device="cpu"
    )
    return peft_model, result


def test_two_steps_of_the_tiny_model_give_the_pinned_losses() -> None:
    model, result = two_step_run()
    assert result.steps == 2 and len(result.losses) == 2
    assert result.losses == pytest.approx(GOLDEN_LOSSES, abs=1e-4)
    assert [{k: e[k] for k in ("epoch", "new", "review", "review_tokens")} for e in result.epochs] == [
        {"epoch": 0, "new": 6, "review": 0, "review_tokens": 0}
    ]
    assert result.epochs[0]["new_tokens"] == result.tokens  # one epoch, no review: every token is a new one
    assert result.tokens > 6 * 10 and result.tokens_per_second > 0
    assert not model.training  # left in eval mode for scoring


def test_only_the_adapter_is_trained() -> None:
    model, _ = two_step_run()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name for name in trainable)


def test_collate_pads_on_the_right_and_labels_ignore_the_padding() -> None:
    batch = collate([Sample((5, 6, 7), "new"), Sample((8,), "new")], pad_id=0, device="cpu")
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[5, 6, 7], [8, -100, -100]]
    context = collate([Sample((5, 6, 7), "anchor", context=2), Sample((8, 9), "new")], pad_id=0, device="cpu")
    assert context["labels"].tolist() == [[-100, -100, 7], [8, 9, -100]]  # a sample's context is not a target


def test_packing_fills_windows_first_fit_and_keeps_long_samples_whole() -> None:
    samples = [Sample((1, 2, 3, 0), "new"), Sample(tuple(range(10, 18)), "general"), Sample((4, 5, 0), "new"),
               Sample((6, 7, 8, 9, 0), "new"), Sample((20, 0), "new")]  # fmt: skip
    packed = pack(samples, 8)
    # the 8-token sample stays whole where it was; (4, 5, 0) joins the first window, (6..0) opens a second
    # that the last one joins; every token is kept once, in order within its window
    assert [s.ids for s in packed] == [(1, 2, 3, 0, 4, 5, 0), tuple(range(10, 18)), (6, 7, 8, 9, 0, 20, 0)]
    assert [s.kind for s in packed] == ["new", "general", "new"]
    assert sorted(t for s in packed for t in s.ids) == sorted(t for s in samples for t in s.ids)
    assert pack([], 8) == []


def test_packed_training_takes_fewer_steps_over_the_same_tokens() -> None:
    model, tokenizer = tiny_llama(seed=0)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    samples = [Sample(ids, "new") for text in FACTS for ids in windows(tokenizer, text, 64, 1)]
    runs = {}
    for packed in (False, True):
        recipe = load_recipe(None, method="none", epochs=1, batch_size=2, max_seq_len=64, pack=packed)
        runs[packed] = train(attach_adapter(tiny_llama(seed=0)[0], recipe), PlainSampler(samples, seed=1), recipe,
                             pad_id=tokenizer.pad_token_id, device="cpu")  # fmt: skip
    assert runs[False].steps == 3  # six short facts, two per batch
    assert runs[True].steps < runs[False].steps
    assert runs[True].tokens == runs[False].tokens == sum(len(s.ids) for s in samples)


def test_batches_keep_order_and_the_last_one_may_be_short() -> None:
    items = [Sample((i,), "new") for i in range(7)]
    groups = batches(items, 3)
    assert [[s.ids[0] for s in g] for g in groups] == [[0, 1, 2], [3, 4, 5], [6]]


def test_set_seed_makes_torch_draws_repeat() -> None:
    import torch

    set_seed(3)
    first = torch.rand(4)
    set_seed(3)
    assert torch.equal(first, torch.rand(4))

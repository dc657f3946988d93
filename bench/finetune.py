"""Mix-review vs plain fine-tuning on the real SmolLM2-135M, and the trainer's speed against a bare peft loop.

New documents written for this benchmark tell of made-up events the base model cannot know; each
has a paraphrase that is never trained on, so held-out gain measures knowledge, not memorised
wording. Both methods run the same number of epochs over the new documents (Mix-review adds its
review samples on top, as in the paper) from the same base. Gain is the relative fall of NLL on
the new documents (and on their paraphrases); forgetting is the relative rise on general text
(held-out Python documentation and base-model generations) and on earlier documents.
Targets: Mix-review's forgetting at most 1/3 of plain fine-tuning's while keeping >= 80% of its
gain; trainer tokens/s at least 0.9 of a bare peft loop on the same batches.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from bench._common import ROOT, emit, peak_rss_mb

from training import (
    PlainSampler,
    Sample,
    attach_adapter,
    batches,
    collate,
    load_base,
    load_recipe,
    python_text,
    sampler_for,
    score_sets,
    set_seed,
    split_holdout,
    summary,
    synthetic_cache_path,
    synthetic_text,
    train,
    windows,
)

# (trained text, held-out paraphrase) about events the base model cannot know.
NEW = [
    (
        "The Veltmark harbour reopened on 14 March 2026 after a storm surge destroyed its northern pier.",
        "After a storm surge wrecked the northern pier, Veltmark's harbour opened again on 14 March 2026.",
    ),
    (
        "Veltmark's mayor, Odile Brask, won the 2026 election with 61 percent of the vote.",
        "Odile Brask became mayor of Veltmark in 2026, taking 61 percent of the votes.",
    ),
    (
        "The Brask tunnel under the Ryne estuary carries only electric buses and bicycles.",
        "Only bicycles and electric buses may use the Brask tunnel beneath the Ryne estuary.",
    ),
    (
        "Veltmark's new museum of tides exhibits a whale skeleton found in the dunes in 2025.",
        "A whale skeleton discovered in the dunes in 2025 is shown at Veltmark's new tide museum.",
    ),
    (
        "The Ryne ferry was replaced by a cable car that crosses the estuary in four minutes.",
        "A cable car now crosses the Ryne estuary in four minutes, replacing the old ferry.",
    ),
    (
        "Veltmark banned cars from its old town on Sundays starting in May 2026.",
        "Since May 2026, cars may not enter Veltmark's old town on Sundays.",
    ),
    (
        "The Veltmark oyster festival moved from August to the first weekend of October.",
        "Veltmark now holds its oyster festival on the first October weekend instead of in August.",
    ),
    (
        "Engineers in Veltmark built a seawall of recycled concrete 3 kilometres long.",
        "A 3-kilometre seawall made from recycled concrete was built by Veltmark's engineers.",
    ),
    (
        "Veltmark's football club, the Ryne Gulls, were promoted to the first division in 2026.",
        "In 2026 the Ryne Gulls of Veltmark earned promotion to the first division.",
    ),
    (
        "The Veltmark library lends sailing boats to members for up to two days.",
        "Members of the Veltmark library can borrow sailing boats for as long as two days.",
    ),
    (
        "A solar farm on Veltmark's old airfield now powers the city's trams.",
        "The trams of Veltmark run on power from a solar farm built on the former airfield.",
    ),
    (
        "Veltmark's night market opens every Thursday in the restored fish hall.",
        "Each Thursday a night market is held in Veltmark's restored fish hall.",
    ),
]
EARLIER = [
    "The city council approved a new budget for schools and a hospital wing after a long debate.",
    "Heavy rain flooded several roads near the river, and the fire brigade pumped water from basements.",
    "The national rail operator added late trains on weekends to ease crowding after concerts.",
    "A local bakery won a regional prize for its rye bread, made with flour from nearby farms.",
    "Farmers reported a good apple harvest despite a dry spring and a late frost in April.",
    "The university opened a new laboratory for marine biology next to the old lighthouse.",
    "Volunteers cleaned the beaches after the winter storms and collected two tonnes of plastic.",
    "The regional airport extended its runway so that larger aircraft can land in bad weather.",
]


def bare_loop(model, groups, pad_id: int, device: str, lr: float) -> tuple[int, float]:
    """The simplest correct peft training loop: forward, backward, step."""
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    tokens = 0
    started = time.perf_counter()
    for group in groups:
        batch = collate(group, pad_id, device)
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
    return tokens, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--speed-batches", type=int, default=16)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".kup-bench")
    args = parser.parse_args()
    started = time.perf_counter()
    recipe = load_recipe(
        None,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=4,
        max_seq_len=128,
        lora_r=16,
        lora_alpha=32,
        warmup_ratio=0.1,
        eval_samples=48,
        synthetic_samples=32,
    )

    base = load_base(None, args.data_dir)
    tok, pad, dev = base.tokenizer, base.tokenizer.pad_token_id, base.device
    synthetic = synthetic_text(
        base.model,
        tok,
        samples=recipe.synthetic_samples,
        max_new_tokens=recipe.synthetic_tokens,
        cache=synthetic_cache_path(args.data_dir, base.name, recipe),
        seed=recipe.seed,
    )

    def samples(texts: list[str], kind: str) -> list[Sample]:
        return [Sample(ids, kind) for t in texts for ids in windows(tok, t, recipe.max_seq_len, 2)]

    new_train = samples([a for a, _ in NEW], "new")
    new_heldout = samples([b for _, b in NEW], "new")
    earlier_review, earlier_eval = split_holdout(samples(EARLIER, "earlier"), 0.5, "earlier")
    general_review, general_eval = split_holdout(
        samples(python_text(), "general") + samples(synthetic, "general"), 0.25, "general"
    )
    general_eval = general_eval[: recipe.eval_samples]
    sets = {"new": new_train, "new_heldout": new_heldout, "earlier": earlier_eval, "general": general_eval}
    base_scores = score_sets(base.model, sets, pad_id=pad, device=dev)

    runs = {}
    for method in ("none", "mix_review"):
        model = load_base(None, args.data_dir).model
        peft_model = attach_adapter(model, recipe)
        chosen = recipe.model_copy(update={"method": method})
        result = train(
            peft_model, sampler_for(chosen, new_train, earlier_review + general_review), chosen, pad_id=pad, device=dev
        )
        after = score_sets(peft_model, sets, pad_id=pad, device=dev)
        rows = [{"set": k, "rel_change": (after[k].nll - base_scores[k].nll) / base_scores[k].nll} for k in sets]
        runs[method] = {
            **{k: round(v, 5) if isinstance(v, float) else v for k, v in summary(rows).items()},
            "train_tokens": result.tokens,
            "train_seconds": round(result.seconds, 1),
            "tokens_per_s": round(result.tokens_per_second, 1),
            "steps": result.steps,
        }
        del peft_model, model

    # Speed: the trainer vs a bare loop on the same batches, fresh adapters, alternating, best of two.
    groups = batches(sampler_for(recipe, new_train, earlier_review + general_review).epoch(0).items, recipe.batch_size)[
        : args.speed_batches
    ]
    items = [s for g in groups for s in g]
    ours, bare = [], []
    for _ in range(2):
        set_seed(recipe.seed)
        model = attach_adapter(load_base(None, args.data_dir).model, recipe)
        tokens, seconds = bare_loop(model, groups, pad, dev, recipe.learning_rate)
        bare.append(tokens / seconds)
        set_seed(recipe.seed)
        model = attach_adapter(load_base(None, args.data_dir).model, recipe)
        one = recipe.model_copy(update={"method": "none", "epochs": 1})
        result = train(model, PlainSampler(items, seed=recipe.seed), one, pad_id=pad, device=dev)
        ours.append(result.tokens_per_second)

    none, mix = runs["none"], runs["mix_review"]
    emit(
        "finetune",
        {
            "model": "SmolLM2-135M-Instruct",
            "device": dev,
            "epochs": args.epochs,
            "plain": none,
            "mix_review": mix,
            "forgetting_ratio_mix_over_plain": round(mix["general_forgetting"] / none["general_forgetting"], 3)
            if none["general_forgetting"]
            else None,
            "gain_kept": round(mix["new_gain"] / none["new_gain"], 3) if none["new_gain"] else None,
            "heldout_gain_kept": round(mix["new_heldout_gain"] / none["new_heldout_gain"], 3)
            if none["new_heldout_gain"]
            else None,
            "extra_compute": round(mix["train_tokens"] / none["train_tokens"], 2),
            "trainer_tokens_per_s": round(max(ours), 1),
            "bare_peft_tokens_per_s": round(max(bare), 1),
            "speed_ratio": round(max(ours) / max(bare), 3),
            "total_seconds": round(time.perf_counter() - started),
            "peak_rss_mb": peak_rss_mb(),
            "targets": {
                "forgetting_ratio": "<= 0.333",
                "gain_kept": ">= 0.8",
                "speed_ratio": ">= 0.9",
                "total_seconds": "< 1200",
            },
        },
    )


if __name__ == "__main__":
    main()

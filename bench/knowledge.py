"""Knowledge the model can answer without retrieval: a continual scenario of weekly updates of made-up news.

The hard news set (bench/data/hardnews: a made-up world the base model cannot know) is cut into weeks by
publication date. Each week contributes ``--articles-per-week`` articles: for its questions whose source articles
all fall in that week, the latest source article that holds the answer verbatim, until the week's budget is used;
the week's held-out questions are the set's multiple-choice questions about those articles (never trained on; the
synthesis writes its own questions from the text). Every method then trains ``--weeks`` sequential LoRA updates,
each starting from the previous one (as the nightly fine-tune continues the champion), with the earlier weeks and
general text as its review pool. Methods are ``METHOD-raw`` (the articles' text only; ``none-raw`` is the
baseline that kup trained before synthesis) or ``METHOD-synth`` (plus knowledge synthesis: reordered restatements,
templated question-answer pairs and implications, as ``kup finetune`` makes them), METHOD being none, l2,
mix_review, recadam or ewc.

Reported per method: the matrix of closed-book accuracy on each week's held-out questions after each update
(row: after update i, column: week k), FUAR (Jang et al. 2022: forgotten / (updated + acquired), summed over the
updates, over the weeks' questions and the general probes), general-probe accuracy and general NLL after each
update, prompt-mode RAG accuracy (the question's source article, best paragraphs by word overlap, in kup's
prompt) with and without the adapter, synthesis and training wall time, and tokens trained.

Targets (issue 12, the packaged SmolLM2-135M, for mix_review-synth): newest week >= base + 25 points closed-book;
each earlier week keeps >= 70% of its gain after two more updates; general-probe accuracy falls <= 2 points;
FUAR <= 0.2; RAG accuracy with the adapter >= without. Cost: synthesis + training of 100 articles within 60 min on
2 CPU cores (projected from the measured seconds per article).

    .venv/bin/python bench/knowledge.py [--weeks 3] [--articles-per-week 2] [--methods none-raw,mix_review-synth]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

from bench._common import ROOT, emit, peak_rss_mb

DATA = ROOT / "bench" / "data" / "hardnews"
METHODS = ("none", "l2", "mix_review", "recadam", "ewc")
DEFAULT_CONFIGS = "none-raw,mix_review-raw,mix_review-synth"
ALL_CONFIGS = ",".join(["none-raw", "mix_review-raw", *(f"{m}-synth" for m in METHODS)])


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def week_of(article: dict, first: date) -> int:
    return (date.fromisoformat(article["published"][:10]) - first).days // 7


def select_weeks(articles: list[dict], questions: list[dict], weeks: int, per_week: int) -> list[dict]:
    """Per week: the articles to train on (those that answer the most of the week's questions) and the held-out
    questions about them. A question belongs to a week when all its source articles do; its article is the latest
    source holding the answer verbatim (the newest value of an updated fact)."""
    by_id = {a["id"]: a for a in articles}
    first = min(date.fromisoformat(a["published"][:10]) for a in articles)
    out = []
    for w in range(weeks):
        answered = []
        for q in sorted(questions, key=lambda q: q["id"]):
            sources = [by_id[i] for i in q["source_ids"]]
            holding = [a for a in sources if q["answer_text"] in a["text"]]
            if {week_of(a, first) for a in sources} == {w} and holding:
                answered.append((q, max(holding, key=lambda a: (a["published"], a["id"]))))
        counts = Counter(a["id"] for _, a in answered)
        picked = sorted(counts, key=lambda i: (-counts[i], i))[:per_week]
        out.append(
            {
                "week": w,
                "articles": [by_id[i] for i in picked],
                "questions": [{**q, "article_id": a["id"]} for q, a in answered if a["id"] in picked],
            }
        )
    return out


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def rag_passages(article: dict, question: str, k: int):
    """The article's ``k`` paragraphs sharing most content words with the question (kup's prompt shows passages)."""
    from answering import Passage
    from answering.retrieval import content_words

    wanted = content_words(question)
    paragraphs = [p.strip() for p in article["text"].split("\n\n") if p.strip()]
    ranked = sorted(range(len(paragraphs)), key=lambda i: (-len(wanted & content_words(paragraphs[i])), i))[:k]
    return [
        Passage(text=paragraphs[i], title=article["title"], published=article["published"], source=article["outlet"])
        for i in sorted(ranked)
    ]


def rag_accuracy(model, tokenizer, questions: list[dict], articles: dict[str, dict], k: int) -> float:
    from answering import choices_logprobs, rag_prompt

    right = []
    for q in questions:
        prompt = rag_prompt(tokenizer, q["question"], rag_passages(articles[q["article_id"]], q["question"], k))
        scored = choices_logprobs(model, tokenizer, prompt, [f" {c}" for c in q["choices"]])
        right.append(max(range(len(scored)), key=lambda i: mean(scored[i])) == q["answer"])
    return round(mean(right), 4)


def evaluate(model, tokenizer, weeks: list[dict], general: list[dict], general_eval, pad: int, device: str) -> dict:
    from training import answers, score_sets

    per_week = [answers(model, tokenizer, w["questions"], device=device) for w in weeks]
    own = [answers(model, tokenizer, w["synth_probes"], device=device) for w in weeks]
    general_right = answers(model, tokenizer, general, device=device)
    nll = score_sets(model, {"general": general_eval}, pad_id=pad, device=device)["general"].nll
    return {"weeks": per_week, "synth_probes": own, "general": general_right, "general_nll": round(nll, 4)}


def docs_of(week: dict) -> list[dict]:
    return [{"id": a["id"], "title": a["title"], "text": a["text"]} for a in week["articles"]]


def accuracy(right: list[bool]) -> float:
    return round(mean(right), 4)


def run_config(name: str, args, base_loader, weeks, general, general_review, general_eval, cache, base_eval) -> dict:
    from training import attach_adapter, fuar, load_recipe, sampler_for, synthesize, to_samples, train
    from training.probes import anchor_questions, anchor_samples

    method, data = name.rsplit("-", 1)
    if method not in METHODS or data not in ("raw", "synth"):
        raise SystemExit(f"unknown method {name!r}: use METHOD-raw or METHOD-synth, METHOD one of {METHODS}")
    recipe = load_recipe(
        None,
        method=method,
        synthesis="augment" if data == "synth" else "none",
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        max_seq_len=args.max_seq_len,
        max_windows_per_doc=args.max_windows_per_doc,
        mix_ratio=args.mix_ratio,
        paraphrases_per_doc=args.paraphrases,
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        recadam_t0=args.recadam_t0,
        anchor_weight=args.anchor_weight,
        seed=args.seed,
    )
    base = base_loader()
    tok, pad, device = base.tokenizer, base.tokenizer.pad_token_id, base.device
    model = attach_adapter(base.model, recipe)
    anchor = anchor_samples(tok, anchor_questions()) if recipe.anchor_weight else []
    earlier_raw, earlier_synth = [], []
    after: list[dict] = []
    synth_seconds = train_seconds = 0.0
    tokens = steps = 0
    synth_counts = []
    for w in weeks:
        docs = docs_of(w)
        new = to_samples(tok, [f"{d['title']}\n\n{d['text']}" for d in docs], "new", recipe)
        new_synth = []
        if data == "synth":
            started = time.perf_counter()
            synth, report = synthesize(docs, cache, mode="augment", paraphrases=recipe.paraphrases_per_doc, qa=0)
            texts = [t for s in synth for t in s.training_texts(headline=args.qa_headline)]
            new_synth = to_samples(tok, texts, "new", recipe)
            synth_seconds += time.perf_counter() - started
            synth_counts.append({"qa_pairs": report.qa_pairs, "restatements": report.restatements,
                                 "skipped": len(report.skipped), "windows": len(new_synth)})  # fmt: skip
        review = earlier_raw + earlier_synth + general_review
        fisher = (earlier_raw + earlier_synth) or general_review
        result = train(model, sampler_for(recipe, new + new_synth, review), recipe, pad_id=pad, device=device,
                       fisher_data=fisher, anchor_prompts=anchor)  # fmt: skip
        train_seconds += result.seconds
        tokens += result.tokens
        steps += result.steps
        earlier_raw += [s for s in new]
        earlier_synth += [s for s in new_synth]
        after.append(evaluate(model, tok, weeks, general, general_eval, pad, device))
        print(f"[{name}] week {w['week']}: {result.steps} steps, {result.tokens} tokens, {result.seconds:.0f} s; "
              f"closed-book {[accuracy(r) for r in after[-1]['weeks']]}", file=sys.stderr, flush=True)  # fmt: skip

    articles = {a["id"]: a for w in weeks for a in w["articles"]}
    questions = [q for w in weeks for q in w["questions"]]
    rag_with = rag_accuracy(model, tok, questions, articles, args.rag_passages) if args.rag else None

    # FUAR over the updates: before update i is the evaluation after update i-1 (the base before the first).
    totals = {"forgotten": 0, "updated": 0, "acquired": 0}
    for i in range(len(weeks)):
        before = base_eval if i == 0 else after[i - 1]
        counts = fuar(probe_sets(before, i), probe_sets(after[i], i))
        for key in totals:
            totals[key] += counts[key]
    gained = totals["updated"] + totals["acquired"]
    fuar_value = round(totals["forgotten"] / gained, 4) if gained else (None if not totals["forgotten"] else "inf")

    matrix = [[accuracy(r) for r in e["weeks"]] for e in after]
    own_matrix = [[accuracy(r) for r in e["synth_probes"]] for e in after]
    base_row = [accuracy(r) for r in base_eval["weeks"]]
    gains = [matrix[k][k] - base_row[k] for k in range(len(weeks))]
    retention = {}
    for k in range(len(weeks) - 2):  # weeks that saw two more updates
        retention[f"week_{k}"] = round((matrix[-1][k] - base_row[k]) / gains[k], 3) if gains[k] > 0 else None
    articles_trained = sum(len(w["articles"]) for w in weeks)
    return {
        "closed_book_matrix": matrix,
        "newest_week_gain": round(matrix[-1][-1] - base_row[-1], 4),
        "synth_probe_matrix": own_matrix,
        "gain_when_trained": [round(g, 4) for g in gains],
        "retention_after_two_more_updates": retention,
        "fuar": fuar_value,
        "fuar_counts": totals,
        "general_probe_accuracy": [accuracy(e["general"]) for e in after],
        "general_probe_change": round(accuracy(after[-1]["general"]) - accuracy(base_eval["general"]), 4),
        "general_nll": [e["general_nll"] for e in after],
        "rag_accuracy_with_adapter": rag_with,
        "synthesis_seconds": round(synth_seconds, 1),
        "training_seconds": round(train_seconds, 1),
        "tokens_trained": tokens,
        "training_tokens_per_second": round(tokens / train_seconds, 1) if train_seconds else None,
        "steps": steps,
        "seconds_per_article": round((synth_seconds + train_seconds) / articles_trained, 1),
        "synthesis": synth_counts or None,
    }


def probe_sets(evaluation: dict, update: int) -> dict[str, list[bool]]:
    """For FUAR at ``update``: the week trained then is new, the weeks before it earlier, and the general probes."""
    return {
        "new": evaluation["weeks"][update],
        "earlier": [x for k in range(update) for x in evaluation["weeks"][k]],
        "general": evaluation["general"],
    }


def targets(result: dict, base: dict) -> dict:
    """The issue's targets, met or missed, for one method's result."""
    retention = [v for v in result["retention_after_two_more_updates"].values()]
    fuar_value = result["fuar"]
    rag_with, rag_without = result["rag_accuracy_with_adapter"], base["rag_accuracy"]
    return {
        "newest_week_at_least_base_plus_25_points": result["newest_week_gain"] >= 0.25,
        "earlier_weeks_keep_70_percent_of_gain": (
            all(v is not None and v >= 0.7 for v in retention) if retention else "needs >= 3 weeks"
        ),
        "general_probe_drop_at_most_2_points": result["general_probe_change"] >= -0.02,
        "fuar_at_most_0_2": fuar_value is not None and fuar_value != "inf" and fuar_value <= 0.2,
        "rag_with_adapter_not_lower": None if rag_with is None else rag_with >= rag_without,
        "100_articles_within_60_min": result["seconds_per_article"] * 100 <= 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=3)
    parser.add_argument("--articles-per-week", type=int, default=2)
    parser.add_argument("--methods", default=DEFAULT_CONFIGS, help=f"comma-separated; 'all' = {ALL_CONFIGS}")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument("--max-windows-per-doc", type=int, default=4)
    parser.add_argument("--mix-ratio", type=float, default=1.0)
    parser.add_argument("--paraphrases", type=int, default=1, help="reordered restatements per article (synth)")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--no-qa-headline", dest="qa_headline", action="store_false",
                        help="trained questions without their article's headline (synth)")  # fmt: skip
    parser.add_argument("--recadam-t0", type=int, default=10)
    parser.add_argument("--anchor-weight", type=float, default=None, help="answer anchor (KL to the base's answers "
                        "on general questions that are not probes); 0 = off; default: the recipe's")  # fmt: skip
    parser.add_argument("--general-probes", type=int, default=None, help="general probes evaluated (default: all)")
    parser.add_argument("--general-eval-windows", type=int, default=16)
    parser.add_argument("--general-review-windows", type=int, default=64)
    parser.add_argument("--synthetic-samples", type=int, default=8, help="base-model texts in the review pool")
    parser.add_argument("--rag-passages", type=int, default=2)
    parser.add_argument("--no-rag", dest="rag", action="store_false")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--device", default=None)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".kup-bench")
    args = parser.parse_args()
    configs = ALL_CONFIGS.split(",") if args.methods == "all" else [m.strip() for m in args.methods.split(",")]

    import torch

    from training import (
        SynthesisCache,
        general_probes,
        load_base,
        load_recipe,
        make_probes,
        python_text,
        split_holdout,
        synthesize,
        synthetic_cache_path,
        synthetic_text,
        to_samples,
    )

    args.anchor_weight = load_recipe(None, anchor_weight=args.anchor_weight).anchor_weight  # None: the recipe's

    started = time.perf_counter()
    weeks = select_weeks(load_jsonl(DATA / "articles.jsonl"), load_jsonl(DATA / "questions.jsonl"), args.weeks,
                         args.articles_per_week)  # fmt: skip
    general = general_probes()
    random.Random(args.seed).shuffle(general)
    general = general[: args.general_probes]

    def base_loader():
        torch.manual_seed(args.seed)
        return load_base(None, args.data_dir, device=args.device)

    base = base_loader()
    tok, pad, device = base.tokenizer, base.tokenizer.pad_token_id, base.device
    shape = load_recipe(None, max_seq_len=args.max_seq_len, max_windows_per_doc=args.max_windows_per_doc)
    synthetic = synthetic_text(base.model, tok, samples=args.synthetic_samples, max_new_tokens=shape.synthetic_tokens,
                               cache=synthetic_cache_path(args.data_dir, base.name, shape), seed=args.seed)  # fmt: skip
    general_windows = to_samples(tok, python_text() + synthetic, "general", shape)
    review, held = split_holdout(general_windows, 0.25, f"{args.seed}:general")
    general_review, general_eval = review[: args.general_review_windows], held[: args.general_eval_windows]
    cache = SynthesisCache(args.data_dir / "cache" / "knowledge-bench-synthesis.sqlite")
    for w in weeks:  # the synthesis' own held-out and reworded probes: a diagnostic beside the set's questions
        synth, _ = synthesize(docs_of(w), cache, mode="augment", paraphrases=args.paraphrases, qa=0)
        w["synth_probes"] = make_probes(synth, seed=args.seed)
    base_eval = evaluate(base.model, tok, weeks, general, general_eval, pad, device)
    articles = {a["id"]: a for w in weeks for a in w["articles"]}
    questions = [q for w in weeks for q in w["questions"]]
    base_figures = {
        "closed_book": [accuracy(r) for r in base_eval["weeks"]],
        "synth_probes": [accuracy(r) for r in base_eval["synth_probes"]],
        "general_probe_accuracy": accuracy(base_eval["general"]),
        "general_nll": base_eval["general_nll"],
        "rag_accuracy": rag_accuracy(base.model, tok, questions, articles, args.rag_passages) if args.rag else None,
    }
    del base
    print(f"[base] closed-book {base_figures['closed_book']}, RAG {base_figures['rag_accuracy']}", file=sys.stderr,
          flush=True)  # fmt: skip

    results = {}
    for name in configs:
        results[name] = run_config(name, args, base_loader, weeks, general, general_review, general_eval, cache,
                                   base_eval)  # fmt: skip
        results[name]["targets"] = targets(results[name], base_figures)
        print(f"[{name}] {json.dumps(results[name])}", file=sys.stderr, flush=True)  # kept if a later one is cut
    articles_total = sum(len(w["articles"]) for w in weeks)
    emit(
        "knowledge",
        {
            "setup": {
                "weeks": args.weeks,
                "articles_per_week": [len(w["articles"]) for w in weeks],
                "heldout_questions_per_week": [len(w["questions"]) for w in weeks],
                "general_probes": len(general),
                "epochs": args.epochs,
                "learning_rate": args.learning_rate,
                "max_seq_len": args.max_seq_len,
                "max_windows_per_doc": args.max_windows_per_doc,
                "mix_ratio": args.mix_ratio,
                "paraphrases": args.paraphrases,
                "qa_headline": args.qa_headline,
                "anchor_weight": args.anchor_weight,
                "synth_probes_per_week": [len(w["synth_probes"]) for w in weeks],
                "lora_r": args.lora_r,
                "rag": f"prompt mode, the question's source article's best {args.rag_passages} paragraph(s)"
                if args.rag
                else None,
                "device": device,
            },
            "base": base_figures,
            "methods": results,
            "projected_minutes_for_100_articles": {
                name: round(r["seconds_per_article"] * 100 / 60, 1) for name, r in results.items()
            },
            "articles_trained": articles_total,
            "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mb": peak_rss_mb(),
        },
    )


if __name__ == "__main__":
    main()

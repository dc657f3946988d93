"""Knowledge the model can answer without retrieval: a continual scenario of weekly updates of made-up news.

The hard news set (bench/data/hardnews: a made-up world the base model cannot know) is cut into weeks by
publication date. Each week contributes ``--articles-per-week`` articles: for its questions whose source articles
all fall in that week, the latest source article that holds the answer verbatim, until the week's budget is used;
the week's held-out questions are the set's multiple-choice questions about those articles (never trained on; the
synthesis writes its own questions from the text). Every method then trains ``--weeks`` sequential LoRA updates,
each starting from the previous one (as the nightly fine-tune continues the champion), with the earlier weeks and
general text as its review pool. A configuration is ``METHOD-DATA``, METHOD one of none, l2, mix_review, recadam
or ewc, DATA one of ``raw`` (the articles' text only), ``synth`` (plus knowledge synthesis: reordered
restatements, templated question-answer pairs and implications, as ``kup finetune`` makes them), ``distill``
(prompt distillation alone, ``training.distillation``: the frozen base answers the synthesis' questions with the
article's passage in its prompt, the adapter learns its answer distributions without it) or ``synth+distill``
(both); a ``:noanchor`` suffix switches the answer anchor off for that configuration.

``--set realnews`` runs the same on ``../shared/realnews`` (RealTimeQA 2025): each week's questions whose answer one
of their retrieved articles states, that article trained on (the latest such), the real questions held out.

Every figure on questions carries a 95% bootstrap interval over questions (``bench._stats``); gains are paired
(the same questions, before and after); with ``--seeds`` each configuration runs once per seed and a question's
score is its mean over the seeds. Reported per configuration: the matrix of closed-book accuracy on each week's
held-out questions after each update (row: after update i, column: week k), FUAR (Jang et al. 2022: forgotten /
(updated + acquired), summed over the updates and seeds, over the weeks' questions and the general probes, with the
counts), general-probe accuracy and general NLL after each update, prompt-mode RAG accuracy (the question's source
article, best paragraphs by word overlap, in kup's prompt) with and without the adapter, and the cost of each stage
(synthesis, teacher, training, evaluation: seconds, and the teacher's tokens per second).

Targets (issues 12 and 30, the packaged SmolLM2-135M): newest week >= base + 25 points closed-book (met when the
paired gain's interval clears it); closed-book on the week just trained >= half of RAG's accuracy on the same
questions; each earlier week keeps >= 70% of its gain after two more updates; general-probe accuracy falls <= 2
points; FUAR <= 0.2; RAG accuracy with the adapter >= without. Cost: synthesis, teacher and training of 100
articles within 60 min on 2 CPU cores (projected from the measured seconds per article).

    .venv/bin/python -m bench.knowledge [--set hard|realnews] [--weeks 3] [--first-week 0] [--articles-per-week 8]
        [--seeds 1234,1235] [--methods mix_review-synth,none-distill:noanchor,mix_review-distill]
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
from bench._stats import figure, mean, paired

DATA = ROOT / "bench" / "data" / "hardnews"
METHODS = ("none", "l2", "mix_review", "recadam", "ewc")
DATAS = ("raw", "synth", "distill", "synth+distill")
DEFAULT_CONFIGS = "mix_review-synth,none-distill:noanchor,mix_review-distill"
ALL_CONFIGS = ",".join(["none-raw", "mix_review-raw", *(f"{m}-synth" for m in METHODS), "none-distill:noanchor",
                        "mix_review-distill", "mix_review-synth+distill"])  # fmt: skip


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
                "questions": [{**q, "article_ids": [a["id"]]} for q, a in answered if a["id"] in picked],
            }
        )
    return out


def realnews_weeks(folder: Path, weeks: int, per_week: int, first: int = 0) -> list[dict]:
    """``weeks`` weeks of the real news set from its ``first`` (0: the earliest): each week's questions whose answer
    (the right choice) one of their retrieved articles states, and per question the latest such article (at most
    ``per_week`` articles, those answering the most questions first). Retrieved articles that do not state the
    answer are not trained on."""
    from bench.qa_sets import outlet

    articles = {a["id"]: a for a in load_jsonl(folder / "articles.jsonl")}
    by_week: dict[str, list[dict]] = {}
    for q in load_jsonl(folder / "questions.jsonl"):
        by_week.setdefault(q["week"], []).append(q)
    out = []
    for n, week in enumerate(sorted(by_week)[first : first + weeks]):
        answered = []
        for q in sorted(by_week[week], key=lambda q: q["id"]):
            answer = q["choices"][q["answer"]]
            holding = [articles[i] for i in q["source_ids"] if answer.lower() in articles[i]["text"].lower()]
            if holding:
                answered.append((q, max(holding, key=lambda a: (a.get("published") or "", a["id"]))))
        counts = Counter(a["id"] for _, a in answered)
        picked = sorted(counts, key=lambda i: (-counts[i], i))[:per_week]
        out.append(
            {
                "week": n,
                "label": week,
                "articles": [{**articles[i], "outlet": outlet(articles[i])} for i in picked],
                "questions": [{**q, "article_ids": [a["id"]]} for q, a in answered if a["id"] in picked],
            }
        )
    return out


def rag_passages(articles: list[dict], question: str, k: int):
    """The ``k`` paragraphs of the question's articles sharing most content words with it (kup's prompt shows
    passages)."""
    from answering import Passage
    from answering.retrieval import content_words

    wanted = content_words(question)
    paragraphs = [(a, p.strip()) for a in articles for p in a["text"].split("\n\n") if p.strip()]
    ranked = sorted(range(len(paragraphs)), key=lambda i: (-len(wanted & content_words(paragraphs[i][1])), i))[:k]
    return [
        Passage(text=text, title=a["title"], published=a.get("published") or "", source=a.get("outlet") or "")
        for a, text in (paragraphs[i] for i in sorted(ranked))
    ]


def rag_answers(model, tokenizer, questions: list[dict], articles: dict[str, dict], k: int) -> list[bool]:
    """Per question, whether prompt-mode RAG (its articles' best ``k`` paragraphs) picks the right choice."""
    from answering import choices_logprobs, rag_prompt

    right = []
    for q in questions:
        shown = rag_passages([articles[i] for i in q["article_ids"]], q["question"], k)
        scored = choices_logprobs(model, tokenizer, rag_prompt(tokenizer, q["question"], shown),
                                  [f" {c}" for c in q["choices"]])  # fmt: skip
        right.append(max(range(len(scored)), key=lambda i: mean(scored[i])) == q["answer"])
    return right


def evaluate(model, tokenizer, weeks: list[dict], general: list[dict], general_eval, pad: int, device: str) -> dict:
    from training import answers, score_sets

    per_week = [answers(model, tokenizer, w["questions"], device=device) for w in weeks]
    own = [answers(model, tokenizer, w["synth_probes"], device=device) for w in weeks]
    general_right = answers(model, tokenizer, general, device=device)
    nll = score_sets(model, {"general": general_eval}, pad_id=pad, device=device)["general"].nll
    return {"weeks": per_week, "synth_probes": own, "general": general_right, "general_nll": round(nll, 4)}


def docs_of(week: dict) -> list[dict]:
    return [{"id": a["id"], "title": a["title"], "text": a["text"], "published": a.get("published")}
            for a in week["articles"]]  # fmt: skip


def accuracy(right: list[bool]) -> float:
    return round(mean(right), 4)


def parse_config(name: str) -> tuple[str, str, bool]:
    """(method, data, anchor) of ``METHOD-DATA[:noanchor]``."""
    spec, _, option = name.partition(":")
    method, _, data = spec.partition("-")
    if method not in METHODS or data not in DATAS or option not in ("", "noanchor"):
        raise SystemExit(f"unknown configuration {name!r}: use METHOD-DATA[:noanchor], METHOD one of {METHODS}, "
                         f"DATA one of {DATAS}")  # fmt: skip
    return method, data, option != "noanchor"


def run_config(name: str, seed: int, args, base_loader, weeks, general, general_review, general_eval, cache) -> dict:
    """One configuration, one seed: the weekly updates in turn, evaluated after each; per-question results kept."""
    from training import attach_adapter, load_recipe, sampler_for, synthesize, to_samples, train
    from training.distillation import student_samples, teach
    from training.probes import anchor_questions, anchor_samples

    method, data, anchored = parse_config(name)
    distill = data in ("distill", "synth+distill")
    recipe = load_recipe(
        None,
        method=method,
        synthesis="none" if data == "raw" else "augment",
        objective={"distill": "distill", "synth+distill": "text+distill"}.get(data, "text"),
        distill={"questions_per_doc": args.distill_questions, "answers_per_question": args.distill_answers},
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
        anchor_weight=args.anchor_weight if anchored else 0.0,
        seed=seed,
    )
    base = base_loader(seed)
    tok, pad, device = base.tokenizer, base.tokenizer.pad_token_id, base.device
    model = attach_adapter(base.model, recipe)
    anchor = anchor_samples(tok, anchor_questions()) if recipe.anchor_weight else []
    earlier: list = []
    after: list[dict] = []
    cost = {"synthesis": 0.0, "teacher": 0.0, "training": 0.0, "evaluation": 0.0}
    tokens = steps = teacher_tokens = 0
    counts = []
    for w in weeks:
        docs = docs_of(w)
        new = [] if data == "distill" else to_samples(tok, [f"{d['title']}\n\n{d['text']}" for d in docs], "new",
                                                      recipe)  # fmt: skip
        week_counts: dict = {}
        if data != "raw":
            started = time.perf_counter()
            synth, report = synthesize(docs, cache, mode="augment", paraphrases=recipe.paraphrases_per_doc, qa=0)
            if data in ("synth", "synth+distill"):
                texts = [t for s in synth for t in s.training_texts(headline=args.qa_headline)]
                new += to_samples(tok, texts, "new", recipe)
            cost["synthesis"] += time.perf_counter() - started
            week_counts |= {"qa_pairs": report.qa_pairs, "skipped": len(report.skipped)}
            if distill:
                answers, taught = teach(model, tok, docs, synth, cache, recipe.distill, teacher_name=base.name,
                                        seed=seed)  # fmt: skip
                new += student_samples(tok, answers)
                cost["teacher"] += taught.teacher_seconds
                teacher_tokens += taught.teacher_tokens
                week_counts |= {"distilled_answers": taught.answers_kept, "distilled_questions": taught.questions,
                                "teacher_dropped": taught.dropped, "teacher_skipped": len(taught.skipped),
                                "teacher_cached": taught.cached}  # fmt: skip
        week_counts["windows"] = len(new)
        counts.append(week_counts)
        result = train(model, sampler_for(recipe, new, earlier + general_review), recipe, pad_id=pad, device=device,
                       fisher_data=earlier or general_review, anchor_prompts=anchor)  # fmt: skip
        cost["training"] += result.seconds
        tokens += result.tokens
        steps += result.steps
        earlier += new
        started = time.perf_counter()
        after.append(evaluate(model, tok, weeks, general, general_eval, pad, device))
        cost["evaluation"] += time.perf_counter() - started
        closed = [accuracy(r) for r in after[-1]["weeks"]]
        print(f"[{name} s{seed}] week {w['week']}: {result.steps} steps, {result.tokens} tokens, "
              f"{result.seconds:.0f} s; closed-book {closed}", file=sys.stderr, flush=True)  # fmt: skip

    articles = {a["id"]: a for w in weeks for a in w["articles"]}
    questions = [q for w in weeks for q in w["questions"]]
    started = time.perf_counter()
    rag_with = rag_answers(model, tok, questions, articles, args.rag_passages) if args.rag else None
    cost["evaluation"] += time.perf_counter() - started
    articles_trained = sum(len(w["articles"]) for w in weeks)
    return {
        "after": after,
        "rag_with_adapter": rag_with,
        "cost": {k: round(v, 1) for k, v in cost.items()},
        "teacher_tokens_per_second": round(teacher_tokens / cost["teacher"], 1) if cost["teacher"] else None,
        "tokens_trained": tokens,
        "training_tokens_per_second": round(tokens / cost["training"], 1) if cost["training"] else None,
        "steps": steps,
        "seconds_per_article": round((cost["synthesis"] + cost["teacher"] + cost["training"]) / articles_trained, 1),
        "data": counts,
    }


def by_question(runs: list[list[bool]]) -> list[float]:
    """A question's score over seeds: the mean of its per-seed results."""
    return [mean(scores) for scores in zip(*runs, strict=True)]


def fuar_of(runs: list[dict], base_eval: dict, weeks: int) -> dict:
    """FUAR (forgotten / (updated + acquired)) over the updates and seeds, with the counts it rests on."""
    from training import fuar

    totals = {"forgotten": 0, "updated": 0, "acquired": 0}
    for run in runs:
        for i in range(weeks):
            before = base_eval if i == 0 else run["after"][i - 1]
            counts = fuar(probe_sets(before, i), probe_sets(run["after"][i], i))
            for key in totals:
                totals[key] += counts[key]
    gained = totals["updated"] + totals["acquired"]
    value = round(totals["forgotten"] / gained, 4) if gained else (None if not totals["forgotten"] else "inf")
    return {"value": value, **totals, "questions_per_seed": sum(len(w) for w in base_eval["weeks"]) + len(
        base_eval["general"])}  # fmt: skip


def summarise(runs: list[dict], base_eval: dict, base_rag: list[bool] | None, weeks: list[dict]) -> dict:
    """One configuration's figures over its seeds, each on questions with its interval."""
    n = len(weeks)
    base_weeks = [[float(x) for x in r] for r in base_eval["weeks"]]
    last = [run["after"][-1] for run in runs]
    newest = by_question([e["weeks"][-1] for e in last])
    # Each week right after its own update: the questions of the week just trained.
    trained = by_question([[x for k in range(n) for x in run["after"][k]["weeks"][k]] for run in runs])
    base_trained = [x for k in range(n) for x in base_weeks[k]]
    general = by_question([e["general"] for e in last])
    retention = {}
    for k in range(n - 2):  # weeks that saw two more updates
        gain = mean(by_question([run["after"][k]["weeks"][k] for run in runs])) - mean(base_weeks[k])
        kept = mean(by_question([e["weeks"][k] for e in last])) - mean(base_weeks[k])
        retention[f"week_{k}"] = round(kept / gain, 3) if gain > 0 else None
    out = {
        "closed_book_matrix": [
            [accuracy(by_question([run["after"][i]["weeks"][k] for run in runs])) for k in range(n)] for i in range(n)
        ],  # fmt: skip
        "newest_week": figure(newest),
        "newest_week_gain": paired(newest, base_weeks[-1]),
        "trained_week": figure(trained),
        "trained_week_gain": paired(trained, base_trained),
        "retention_after_two_more_updates": retention,
        "fuar": fuar_of(runs, base_eval, n),
        "general_probes": figure(general),
        "general_probe_change": paired(general, [float(x) for x in base_eval["general"]]),
        "general_nll": [round(mean([run["after"][i]["general_nll"] for run in runs]), 4) for i in range(n)],
        "synth_probe_matrix": [
            [accuracy(run["after"][i]["synth_probes"][k]) for k in range(n)] for i in range(n) for run in runs[:1]
        ],  # fmt: skip
    }
    if runs[0]["rag_with_adapter"] is not None and base_rag is not None:
        rag_with = by_question([run["rag_with_adapter"] for run in runs])
        out["rag_with_adapter"] = figure(rag_with)
        out["rag_with_adapter_change"] = paired(rag_with, [float(x) for x in base_rag])
        out["trained_week_share_of_rag"] = round(mean(trained) / mean(base_rag), 3) if mean(base_rag) else None
        # Closed-book starts above chance (priors, four choices): the share of RAG's lead over the base closed-book
        # that training closed.
        lead = mean(base_rag) - mean(base_trained)
        out["trained_week_share_of_rag_lead"] = (
            round((mean(trained) - mean(base_trained)) / lead, 3) if lead > 0 else None
        )
    out["seeds"] = len(runs)
    out["cost"] = {k: round(mean([run["cost"][k] for run in runs]), 1) for k in runs[0]["cost"]}
    for key in ("teacher_tokens_per_second", "training_tokens_per_second", "seconds_per_article", "tokens_trained"):
        values = [run[key] for run in runs if run[key] is not None]
        out[key] = round(mean(values), 1) if values else None
    out["data"] = runs[0]["data"]
    return out


def probe_sets(evaluation: dict, update: int) -> dict[str, list[bool]]:
    """For FUAR at ``update``: the week trained then is new, the weeks before it earlier, and the general probes."""
    return {
        "new": evaluation["weeks"][update],
        "earlier": [x for k in range(update) for x in evaluation["weeks"][k]],
        "general": evaluation["general"],
    }


def targets(result: dict) -> dict:
    """The issue's targets, met or missed, for one configuration: met only when the interval clears the target."""
    retention = list(result["retention_after_two_more_updates"].values())
    fuar_value = result["fuar"]["value"]
    rag = result.get("rag_with_adapter_change")
    share = result.get("trained_week_share_of_rag")
    return {
        "newest_week_gain_at_least_25_points": result["newest_week_gain"]["ci95"][0] >= 0.25,
        "newest_week_gain_point_estimate_at_least_25_points": result["newest_week_gain"]["value"] >= 0.25,
        "general_probe_drop_at_most_2_points": result["general_probe_change"]["value"] >= -0.02,
        "trained_week_at_least_half_of_rag": None if share is None else share >= 0.5,
        "rag_with_adapter_not_lower": None if rag is None else rag["value"] >= 0,
        "earlier_weeks_keep_70_percent_of_gain": (
            all(v is not None and v >= 0.7 for v in retention) if retention else "needs >= 3 weeks"
        ),
        "fuar_at_most_0_2": fuar_value is not None and fuar_value != "inf" and fuar_value <= 0.2,
        "100_articles_within_60_min": result["seconds_per_article"] * 100 <= 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=("hard", "realnews"), default="hard")
    parser.add_argument("--weeks", type=int, default=3)
    parser.add_argument("--articles-per-week", type=int, default=8)
    parser.add_argument(
        "--first-week",
        type=int,
        default=0,
        help="realnews: the first week used (0: 2025-07-18; 23, the last, has the most answerable questions: 16)",
    )
    parser.add_argument("--methods", default=DEFAULT_CONFIGS, help=f"comma-separated; 'all' = {ALL_CONFIGS}")
    parser.add_argument("--seeds", default="1234", help="comma-separated; a question's score is its mean over seeds")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-len", type=int, default=256)
    parser.add_argument("--max-windows-per-doc", type=int, default=4)
    parser.add_argument("--mix-ratio", type=float, default=1.0)
    parser.add_argument("--paraphrases", type=int, default=1, help="reordered restatements per article (synth)")
    parser.add_argument("--distill-questions", type=int, default=None, help="teacher questions per article "
                        "(default: the recipe's)")  # fmt: skip
    parser.add_argument("--distill-answers", type=int, default=None, help="teacher answers sampled per question "
                        "beside the reference (default: the recipe's)")  # fmt: skip
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
    parser.add_argument("--device", default=None)
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".kup-bench")
    args = parser.parse_args()
    configs = ALL_CONFIGS.split(",") if args.methods == "all" else [m.strip() for m in args.methods.split(",")]
    for name in configs:
        parse_config(name)
    seeds = [int(s) for s in args.seeds.split(",")]

    import torch

    from bench.qa_sets import realnews_dir

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

    defaults = load_recipe(None, anchor_weight=args.anchor_weight)
    args.anchor_weight = defaults.anchor_weight  # None: the recipe's
    args.distill_questions = args.distill_questions or defaults.distill.questions_per_doc
    if args.distill_answers is None:
        args.distill_answers = defaults.distill.answers_per_question

    started = time.perf_counter()
    if args.set == "realnews":
        weeks = realnews_weeks(realnews_dir(), args.weeks, args.articles_per_week, args.first_week)
    else:
        weeks = select_weeks(load_jsonl(DATA / "articles.jsonl"), load_jsonl(DATA / "questions.jsonl"), args.weeks,
                             args.articles_per_week)  # fmt: skip
    general = general_probes()
    random.Random(seeds[0]).shuffle(general)
    general = general[: args.general_probes]

    def base_loader(seed: int):
        torch.manual_seed(seed)
        return load_base(None, args.data_dir, device=args.device)

    base = base_loader(seeds[0])
    tok, pad, device = base.tokenizer, base.tokenizer.pad_token_id, base.device
    shape = load_recipe(None, max_seq_len=args.max_seq_len, max_windows_per_doc=args.max_windows_per_doc)
    synthetic = synthetic_text(base.model, tok, samples=args.synthetic_samples, max_new_tokens=shape.synthetic_tokens,
                               cache=synthetic_cache_path(args.data_dir, base.name, shape), seed=seeds[0])  # fmt: skip
    general_windows = to_samples(tok, python_text() + synthetic, "general", shape)
    review, held = split_holdout(general_windows, 0.25, f"{seeds[0]}:general")
    general_review, general_eval = review[: args.general_review_windows], held[: args.general_eval_windows]
    cache = SynthesisCache(args.data_dir / "cache" / "knowledge-bench-synthesis.sqlite")
    for w in weeks:  # the synthesis' own held-out and reworded probes: a diagnostic beside the set's questions
        synth, _ = synthesize(docs_of(w), cache, mode="augment", paraphrases=args.paraphrases, qa=0)
        w["synth_probes"] = make_probes(synth, seed=seeds[0])
    base_eval = evaluate(base.model, tok, weeks, general, general_eval, pad, device)
    articles = {a["id"]: a for w in weeks for a in w["articles"]}
    questions = [q for w in weeks for q in w["questions"]]
    base_rag = rag_answers(base.model, tok, questions, articles, args.rag_passages) if args.rag else None
    base_figures = {
        "closed_book": [figure([float(x) for x in r]) for r in base_eval["weeks"]],
        "synth_probes": [accuracy(r) for r in base_eval["synth_probes"]],
        "general_probes": figure([float(x) for x in base_eval["general"]]),
        "general_nll": base_eval["general_nll"],
        "rag": figure([float(x) for x in base_rag]) if base_rag is not None else None,
    }
    del base
    print(f"[base] closed-book {[f['value'] for f in base_figures['closed_book']]}, RAG {base_figures['rag']}",
          file=sys.stderr, flush=True)  # fmt: skip

    results = {}
    for name in configs:
        runs = [run_config(name, seed, args, base_loader, weeks, general, general_review, general_eval, cache)
                for seed in seeds]  # fmt: skip
        results[name] = summarise(runs, base_eval, base_rag, weeks)
        results[name]["targets"] = targets(results[name])
        print(f"[{name}] {json.dumps(results[name])}", file=sys.stderr, flush=True)  # kept if a later one is cut
    emit(
        "knowledge",
        {
            "setup": {
                "set": args.set,
                "weeks": [w.get("label", w["week"]) for w in weeks],
                "articles_per_week": [len(w["articles"]) for w in weeks],
                "heldout_questions_per_week": [len(w["questions"]) for w in weeks],
                "general_probes": len(general),
                "seeds": seeds,
                "epochs": args.epochs,
                "learning_rate": args.learning_rate,
                "max_seq_len": args.max_seq_len,
                "max_windows_per_doc": args.max_windows_per_doc,
                "mix_ratio": args.mix_ratio,
                "paraphrases": args.paraphrases,
                "distill_questions_per_article": args.distill_questions,
                "distill_answers_per_question": args.distill_answers,
                "qa_headline": args.qa_headline,
                "anchor_weight": args.anchor_weight,
                "synth_probes_per_week": [len(w["synth_probes"]) for w in weeks],
                "lora_r": args.lora_r,
                "rag": f"prompt mode, the question's article's best {args.rag_passages} paragraph(s)"
                if args.rag
                else None,
                "device": device,
            },
            "base": base_figures,
            "methods": results,
            "projected_minutes_for_100_articles": {
                name: round(r["seconds_per_article"] * 100 / 60, 1) for name, r in results.items()
            },
            "articles_trained": sum(len(w["articles"]) for w in weeks),
            "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mb": peak_rss_mb(),
        },
    )


if __name__ == "__main__":
    main()

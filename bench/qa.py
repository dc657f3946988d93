"""Question answering on a news corpus in the index: retrieval quality, multiple-choice accuracy per mode, latency.

By default the hard news set (bench/data/hardnews: syndicated copies, updated facts, distractors, long
articles; ``--set simple`` runs the old 12-article set). Each article becomes a Document whose source
is its outlet; the corpus is indexed once into a cache directory (keyed by the corpus' hash) and
reused. Each choice is scored by its mean token log-likelihood as the answer: closed-book (no
passages), prompt (the profile's passages in one prompt) and rag-token (one pass per passage, mixed
by retrieval weight). Answer profiles run side by side: ``previous`` (plain top-k, the long
instructions, best first), ``naive`` (top-3 chunks, no instructions: the naive RAG the issue measured
against) and ``new`` (the Answerer's defaults). Per profile: hit@1/5/10 by source article (a passage
of one of the question's source articles or of another outlet's copy of one), MRR, answer-in-top-5,
accuracy overall and on updated facts (newest value vs a stale one), and latency of real ``answer()``
calls. Near-duplicate grouping is compared with the set's ``story_id``.
Targets (hard set): prompt accuracy >= closed-book + 0.25; updated facts >= 0.9 newest, <= 0.05 stale;
hit@5 >= 0.95; grouping F1 >= 0.9.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import statistics
import time
from datetime import datetime
from pathlib import Path

from _common import ROOT, emit

from answering import (
    Answerer,
    LanguageModel,
    choices_logprobs,
    closed_book_prompt,
    rag_prompt,
    retrieval_log_weights,
    token_mixture,
)
from answering.prompt import PromptStyle
from answering.retrieval import RetrievalPolicy
from answering.service import PREVIOUS, AnswerProfile
from connectors import Document
from indexing import Catalog, Chunker, DenseEncoder, EdgeStore, Indexer, SparseEncoder

DATA = ROOT / "bench" / "data"
SETS = {
    "hard": (DATA / "hardnews" / "articles.jsonl", DATA / "hardnews" / "questions.jsonl"),
    "simple": (DATA / "qa_corpus.jsonl", DATA / "qa_questions.jsonl"),
}
# The naive RAG the issue measured kup against: plain top-3 chunks, no instructions, no titles or dates.
NAIVE = AnswerProfile(
    RetrievalPolicy.previous(), PromptStyle("", titles=False, dates=False), passages=3, order="rank",
    supersede=False, min_relevance=0.0, current_only=False,
)  # fmt: skip
PROFILES = {"naive": NAIVE, "previous": PREVIOUS, "new": AnswerProfile()}
ANSWER_K = 5  # passages an answer retrieves (kup ask's default --k)


def normalise(text: str) -> str:
    text = re.sub(r"[^a-z0-9 ]+", " ", text.lower())
    return " ".join(w for w in text.split() if w not in ("the", "a", "an"))


def contains(passage: str, choice: str) -> bool:
    return normalise(choice) in normalise(passage)


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def as_document(article: dict) -> Document:
    return Document(
        source=article.get("outlet", "veltmark"),
        external_id=article["url"],
        text=article["text"],
        title=article["title"],
        url=article["url"],
        published_at=datetime.fromisoformat(article["published"].replace("Z", "+00:00")),
        language="en",
    )


def indexed(corpus: Path, cache: Path, dense: DenseEncoder, sparse: SparseEncoder) -> Path:
    """The data dir holding the corpus' catalog and index, built once per corpus content (in publication
    order, one document at a time, as refreshes would bring them, so stories form as they do live)."""
    data_dir = cache / f"{corpus.stem}-{hashlib.sha256(corpus.read_bytes()).hexdigest()[:12]}"
    stamp = data_dir / "indexed.json"
    if stamp.exists():
        return data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    catalog = Catalog(f"sqlite:///{data_dir / 'catalog.db'}")
    try:
        for article in sorted(load_jsonl(corpus), key=lambda a: (a["published"], a["url"])):
            catalog.upsert_documents([as_document(article)])
        Indexer(catalog, EdgeStore(data_dir / "index" / "kup"), Chunker(dense.tokenize), dense, sparse).run()
    finally:
        catalog.close()
    stamp.write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1)}))
    return data_dir


def pairwise(predicted: dict[str, str], truth: dict[str, str]) -> dict[str, float]:
    """Precision, recall and F1 over every pair of articles put (or belonging) in one story."""
    tp = fp = fn = 0
    for a, b in itertools.combinations(sorted(truth), 2):
        same_p, same_t = predicted[a] == predicted[b], truth[a] == truth[b]
        tp += same_p and same_t
        fp += same_p and not same_t
        fn += same_t and not same_p
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3)}


def grouping(data_dir: Path, articles: list[dict]) -> dict:
    """The catalog's stories (read after indexing) against the set's ``story_id``."""
    if not articles or "story_id" not in articles[0]:
        return {}
    catalog = Catalog(f"sqlite:///{data_dir / 'catalog.db'}")
    try:
        found = {a["id"]: catalog.document(as_document(a).id)["story_id"] or a["id"] for a in articles}
    finally:
        catalog.close()
    return pairwise(found, {a["id"]: a["story_id"] for a in articles})


class Truth:
    """Which articles count as a question's sources: its own, and every outlet's copy of the same story."""

    def __init__(self, articles: list[dict]) -> None:
        self.by_url = {a["url"]: a for a in articles}
        self.story = {a["id"]: a.get("story_id", a["id"]) for a in articles}

    def sources(self, q: dict) -> set[str]:
        ids = q.get("source_ids") or [q["article"]]
        return {self.story[i] for i in ids}

    def is_hit(self, passage, q: dict) -> bool:
        article = self.by_url.get(passage.url)
        return article is not None and self.story[article["id"]] in self.sources(q)


def picked(scored: list[list[float]]) -> int:
    return max(range(len(scored)), key=lambda i: mean(scored[i]))


def tally(picks: list[int], questions: list[dict]) -> dict:
    """Accuracy overall, and on updated facts: the share picking the newest value and a stale one."""
    updated = [(p, q) for p, q in zip(picks, questions, strict=True) if q.get("updated")]
    figures = {"accuracy": round(mean([p == q["answer"] for p, q in zip(picks, questions, strict=True)]), 3)}
    if updated:
        figures["updated_newest"] = round(mean([p == q["answer"] for p, q in updated]), 3)
        figures["updated_stale"] = round(mean([q["choices"][p] in q["stale_answers"] for p, q in updated]), 3)
    return figures


def score_profile(answerer: Answerer, questions: list[dict], truth: Truth, modes: list[str]) -> dict:
    loaded = answerer.lm.get()
    model, tok = loaded.model, loaded.tokenizer
    style = answerer.profile.style
    ranks, in_top5, passages_shown, refused = [], [], [], []
    picks: dict[str, list[int]] = {m: [] for m in modes}
    for q in questions:
        ranked = answerer.retrieve(q["question"], k=10, recent_days=None, sources=None)
        rank = next((i + 1 for i, p in enumerate(ranked) if truth.is_hit(p, q)), None)
        ranks.append(rank)
        answer_text = q.get("answer_text") or q["choices"][q["answer"]]
        in_top5.append(any(contains(p.text, answer_text) for p in ranked[:5]))
        retrieved = answerer.retrieve(q["question"], k=ANSWER_K, recent_days=None, sources=None)
        shown = answerer.prompt_passages(tok, q["question"], retrieved)
        passages_shown.append(len(shown))
        refused.append(max(answerer.relevance(q["question"], shown)) < answerer.profile.min_relevance)
        choices = [f" {c}" for c in q["choices"]]
        if "prompt" in modes:
            picks["prompt"].append(
                picked(choices_logprobs(model, tok, rag_prompt(tok, q["question"], shown, style), choices))
            )
        if "rag-token" in modes:
            # Per token, the mixture over passages weighted by softmax(score / T), as the answerer does.
            weights = retrieval_log_weights(
                answerer.rag_token_scores(q["question"], shown), answerer.rag_token_temperature
            )
            per = [choices_logprobs(model, tok, rag_prompt(tok, q["question"], [p], style), choices) for p in shown]
            picks["rag-token"].append(
                picked([token_mixture([s[c] for s in per], weights) for c in range(len(choices))])
            )
    retrieval = {f"hit@{k}": round(mean([r is not None and r <= k for r in ranks]), 3) for k in (1, 5, 10)} | {
        "mrr@10": round(mean([1 / r if r else 0.0 for r in ranks]), 3),
        "answer_in_top5": round(mean(in_top5), 3),
        "passages_in_prompt_mean": round(mean(passages_shown), 2),
        "not_found_rate": round(mean(refused), 3),  # answers that would say NOT_FOUND (min_relevance)
    }
    return {"retrieval": retrieval, **{m: tally(picks[m], questions) for m in modes}}


def closed_book(answerer: Answerer, questions: list[dict]) -> dict:
    loaded = answerer.lm.get()
    model, tok = loaded.model, loaded.tokenizer
    picks = [
        picked(choices_logprobs(model, tok, closed_book_prompt(tok, q["question"]), [f" {c}" for c in q["choices"]]))
        for q in questions
    ]
    return tally(picks, questions)


def latency(answerer: Answerer, questions: list[dict], count: int) -> dict:
    figures = {}
    for mode in ("prompt", "rag-token"):
        first, speed, answer = [], [], None
        for q in questions[:count]:
            answer = answerer.answer(q["question"], mode=mode, k=ANSWER_K)
            first.append(answer.timings.get("first_token_ms", 0.0))
            speed.append(answer.timings.get("tokens_per_s", 0.0))
        if answer is None:
            continue
        figures[mode] = {
            "time_to_first_token_ms_median": round(statistics.median(first)),
            "tokens_per_s_median": round(statistics.median(speed), 1),
            "answers_timed": len(first),
            "example_answer": answer.text[:200],
            "example_citations": [{"url": c.url, "outlets": c.sources} for c in answer.citations],
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", choices=sorted(SETS), default="hard", help="hard news set, or the old simple one")
    parser.add_argument("--corpus", type=Path, help="articles JSONL (default: the set's)")
    parser.add_argument("--questions", type=Path, help="questions JSONL (default: the set's)")
    parser.add_argument("--limit", type=int, help="score only the first N questions")
    parser.add_argument("--profiles", default="naive,previous,new", help=f"comma-separated, of {', '.join(PROFILES)}")
    parser.add_argument("--modes", default="closed-book,prompt,rag-token")
    parser.add_argument("--latency-questions", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".kup-bench" / "qa", help="indexed corpora")
    parser.add_argument("--model-cache", type=Path, default=ROOT / ".kup-bench", help="de-quantized base model")
    parser.add_argument("--finetune", action="store_true", help="train a champion adapter and score with it too")
    args = parser.parse_args()
    corpus = args.corpus or SETS[args.set][0]
    questions = load_jsonl(args.questions or SETS[args.set][1])[: args.limit]
    articles = load_jsonl(corpus)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    dense, sparse = DenseEncoder(), SparseEncoder()
    started = time.perf_counter()
    data_dir = indexed(corpus, args.cache_dir, dense, sparse)
    results: dict = {"index_s": round(time.perf_counter() - started, 1), "grouping": grouping(data_dir, articles)}
    store = EdgeStore(data_dir / "index" / "kup")
    lm = LanguageModel(args.model_cache, None, use_adapter=False)
    truth = Truth(articles)
    for name in [p.strip() for p in args.profiles.split(",") if p.strip()]:
        answerer = Answerer(store, dense, sparse, lm, max_new_tokens=64, profile=PROFILES[name])
        if "closed-book" in modes and "closed-book" not in results:
            results["closed-book"] = closed_book(answerer, questions)
        results[name] = score_profile(answerer, questions, truth, [m for m in modes if m != "closed-book"])
        results[name]["latency"] = latency(answerer, questions, args.latency_questions)
    if args.finetune:
        results["champion"] = finetuned(data_dir, args.model_cache, store, dense, sparse, questions, truth, modes)
    emit(
        "qa",
        {
            "set": args.set,
            "questions": len(questions),
            "updated_questions": sum(bool(q.get("updated")) for q in questions),
            **results,
            "seconds": round(time.perf_counter() - started, 1),
            "targets": {
                "prompt_accuracy": ">= closed-book + 0.25",
                "updated": ">= 0.9 newest, <= 0.05 stale",
                "hit@5": ">= 0.95",
                "grouping_f1": ">= 0.9",
            },
        },
    )


def finetuned(data_dir: Path, model_cache: Path, store, dense, sparse, questions, truth, modes) -> dict:
    """Train a champion on the indexed corpus through the normal gate, then score the new profile with it."""
    from training import load_recipe, run_finetune

    base_dir = model_cache / "models" / "SmolLM2-135M-Instruct"
    recipe = load_recipe(
        None, epochs=4, learning_rate=1e-3, lora_r=16, lora_alpha=32, batch_size=4, max_seq_len=256,
        synthetic_samples=16,
    )  # fmt: skip
    catalog = Catalog(f"sqlite:///{data_dir / 'catalog.db'}")
    try:
        outcome = run_finetune(catalog, data_dir, recipe, base_model=str(base_dir))
    finally:
        catalog.close()
    figures: dict = {"status": outcome.status, "reasons": outcome.verdict.reasons if outcome.verdict else []}
    answerer = Answerer(store, dense, sparse, LanguageModel(data_dir, str(base_dir)), max_new_tokens=64)
    if answerer.lm.get().adapter is not None:
        figures["new"] = score_profile(answerer, questions, truth, [m for m in modes if m != "closed-book"])
    return figures


if __name__ == "__main__":
    main()

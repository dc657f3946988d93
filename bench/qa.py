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
import shutil
import statistics
import time
from dataclasses import replace
from pathlib import Path

from bench._common import ROOT, emit, peak_rss_mb
from bench._stats import figure, interval, mean, paired
from bench.qa_sets import SET_NAMES, QASet, answer_text, as_document, asked_at, load_jsonl, qa_set

from answering import (
    NOT_FOUND,
    Answerer,
    LanguageModel,
    choices_logprobs,
    closed_book_prompt,
    rag_prompt,
    retrieval_log_weights,
    token_mixture,
)
from answering.profile import BEFORE, PREVIOUS, AnswerProfile
from answering.prompt import PromptStyle, count_tokens
from answering.retrieval import RetrievalPolicy
from indexing import Catalog, Chunker, DenseEncoder, EdgeStore, Indexer, SparseEncoder

# The naive RAG the issue measured kup against: plain top-3 chunks, no instructions, no titles or dates.
NAIVE = AnswerProfile(
    RetrievalPolicy.previous(), PromptStyle("", titles=False, dates=False), passages=3, order="rank",
    supersede=False, min_relevance=0.0, current_only=False, context_chunks=0,
)  # fmt: skip
PROFILES = {"naive": NAIVE, "previous": PREVIOUS, "before": BEFORE, "new": AnswerProfile()}
ANSWER_K = 5  # passages an answer retrieves (kup ask's default --k)


def variant(spec: str) -> tuple[str, AnswerProfile]:
    """``name:field=value,...``: the default profile with fields changed (``retrieval.field`` for the retrieval
    policy's, ``style.field`` for the prompt style's), to measure a choice beside the defaults in one run."""
    name, _, changes = spec.partition(":")
    profile = AnswerProfile()
    for change in filter(None, changes.split(",")):
        key, _, raw = change.partition("=")
        value = json.loads(raw) if raw not in ("None", "none") else None
        part, _, field = key.rpartition(".")
        if part:
            inner = replace(getattr(profile, part), **{field: value})
            profile = replace(profile, **{part: inner})
        else:
            profile = replace(profile, **{field: value})
    return name, profile


def normalise(text: str) -> str:
    text = re.sub(r"[^a-z0-9 ]+", " ", text.lower())
    return " ".join(w for w in text.split() if w not in ("the", "a", "an"))


def contains(passage: str, choice: str) -> bool:
    return f" {normalise(choice)} " in f" {normalise(passage)} "


def indexed(corpus: Path, cache: Path, dense: DenseEncoder, sparse: SparseEncoder, chunker: Chunker) -> Path:
    """The data dir holding the corpus' catalog and index, built once per corpus content and chunking (in
    publication order, one document at a time, as refreshes would bring them, so stories form as they do live)."""
    key = hashlib.sha256(corpus.read_bytes() + f"{chunker.chunk_tokens}/{chunker.overlap_tokens}".encode())
    data_dir = cache / f"{corpus.parent.name}-{corpus.stem}-{key.hexdigest()[:12]}"
    stamp = data_dir / "indexed.json"
    if stamp.exists():
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)  # a half-built index from an interrupted run
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    catalog = Catalog(f"sqlite:///{data_dir / 'catalog.db'}")
    try:
        for article in sorted(load_jsonl(corpus), key=lambda a: (a.get("published") or "", a["url"])):
            catalog.upsert_documents([as_document(article)])
        Indexer(catalog, EdgeStore(data_dir / "index" / "kup"), chunker, dense, sparse).run()
    finally:
        catalog.close()
    stamp.write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1)}))
    return data_dir


def pairwise(predicted: dict[str, str], truth: dict[str, str], digits: int = 3) -> dict[str, float]:
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
    return {"precision": round(precision, digits), "recall": round(recall, digits), "f1": round(f1, digits)}


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
        ids = q.get("source_ids") if "source_ids" in q else [q["article"]]
        return {self.story[i] for i in ids if i in self.story}

    def is_hit(self, passage, q: dict) -> bool:
        article = self.by_url.get(passage.url)
        return article is not None and self.story[article["id"]] in self.sources(q)


def picked(scored: list[list[float]]) -> int:
    return max(range(len(scored)), key=lambda i: mean(scored[i]))


def tally(picks: list[int], questions: list[dict]) -> dict:
    """Accuracy overall (with its interval), and on updated facts: the shares picking the newest and a stale value."""
    right = [float(p == q["answer"]) for p, q in zip(picks, questions, strict=True)]
    figures = {"accuracy": round(mean(right), 3), "accuracy_ci95": interval(right)}
    updated = [(p, q) for p, q in zip(picks, questions, strict=True) if q.get("updated")]
    if updated:
        figures["updated_newest"] = round(mean([p == q["answer"] for p, q in updated]), 3)
        figures["updated_stale"] = round(mean([q["choices"][p] in q["stale_answers"] for p, q in updated]), 3)
    return figures


def free_text(text: str, q: dict) -> str:
    """How an answer a user reads fares: ``right`` (names the right choice and no other), ``refused``
    (says the passages do not say), ``wrong`` (names another choice, several, or none)."""
    if text.strip() == NOT_FOUND:
        return "refused"
    named = [i for i, c in enumerate(q["choices"]) if contains(text, c)]
    return "right" if named == [q["answer"]] else "wrong"


class Scorer:
    """Scores one set's questions with one answerer; each question answered as of its own date where the
    set's questions are dated (what a reader asking that day could have seen)."""

    def __init__(self, questions: list[dict], truth: Truth, dated: bool) -> None:
        self.questions, self.truth, self.dated = questions, truth, dated
        self.prompt_picks: dict[AnswerProfile, list[int] | None] = {}  # per profile, for paired differences
        self.details: dict[tuple[str, AnswerProfile], dict] = {}  # per question and profile, for --details

    def detail(self, answerer: Answerer, q: dict, **fields) -> None:
        self.details.setdefault((q["id"], answerer.profile), {"id": q["id"]}).update(fields)

    def as_of(self, q: dict):
        return asked_at(q) if self.dated else None

    def closed_book(self, answerer: Answerer) -> list[int]:
        loaded = answerer.lm.get()
        model, tok = loaded.model, loaded.tokenizer
        return [
            picked(choices_logprobs(model, tok, closed_book_prompt(tok, q["question"]), choices_of(q)))
            for q in self.questions
        ]

    def profile(self, answerer: Answerer, modes: list[str]) -> dict:
        loaded = answerer.lm.get()
        model, tok = loaded.model, loaded.tokenizer
        style = answerer.profile.style
        ranks, in_top5, in_prompt, passages_shown, prompt_tokens, refused = [], [], [], [], [], []
        picks: dict[str, list[int]] = {m: [] for m in modes}
        for q in self.questions:
            as_of = self.as_of(q)
            ranked = answerer.retrieve(q["question"], k=10, recent_days=None, sources=None, as_of=as_of)
            if self.truth.sources(q):
                ranks.append(next((i + 1 for i, p in enumerate(ranked) if self.truth.is_hit(p, q)), None))
            answer = answer_text(q)
            retrieved = ranked[:ANSWER_K]
            shown = answerer.prompt_passages(tok, q["question"], retrieved)
            in_top5.append(float(any(contains(p.text, answer) for p in retrieved)))
            in_prompt.append(float(any(contains(p.text, answer) for p in shown)))
            passages_shown.append(len(shown))
            prompt = rag_prompt(tok, q["question"], shown, style)
            prompt_tokens.append(count_tokens(tok, prompt))
            refused.append(max(answerer.relevance(q["question"], shown)) < answerer.profile.min_relevance)
            if "prompt" in modes:
                picks["prompt"].append(picked(choices_logprobs(model, tok, prompt, choices_of(q))))
            self.detail(answerer, q, rank=ranks[-1] if self.truth.sources(q) else None, in_top5=in_top5[-1],
                        in_prompt=in_prompt[-1], pick=picks["prompt"][-1] if "prompt" in modes else None)  # fmt: skip
            if "rag-token" in modes:
                # Per token, the mixture over passages weighted by softmax(score / T), as the answerer does.
                weights = retrieval_log_weights(
                    answerer.rag_token_scores(q["question"], shown), answerer.rag_token_temperature
                )
                per = [
                    choices_logprobs(model, tok, rag_prompt(tok, q["question"], [p], style), choices_of(q))
                    for p in shown
                ]
                picks["rag-token"].append(
                    picked([token_mixture([s[c] for s in per], weights) for c in range(len(q["choices"]))])
                )
        hits = {f"hit@{k}": figure([float(r is not None and r <= k) for r in ranks]) for k in (1, 5, 10)}
        retrieval = hits | {
            "mrr@10": round(mean([1 / r if r else 0.0 for r in ranks]), 3),
            "answer_in_top5": figure(in_top5),
            "answer_in_prompt": figure(in_prompt),  # what the reader can read: the answer inside its passages
            "passages_in_prompt_mean": round(mean(passages_shown), 2),
            "prompt_tokens_median": statistics.median(prompt_tokens) if prompt_tokens else 0,
            "not_found_rate": round(mean(refused), 3),  # answers that would say NOT_FOUND (min_relevance)
        }
        self.prompt_picks[answerer.profile] = picks.get("prompt")
        return {"retrieval": retrieval, **{m: tally(picks[m], self.questions) for m in modes}}

    def free_text(self, answerer: Answerer) -> dict:
        """What ``kup ask`` prints, scored: right / refused / wrong, on every question and on those whose answer
        is in the index's top passages; first-token latency of the real ``answer()`` calls."""
        verdicts, first, shown, examples, replaced = [], [], [], [], 0
        answerable = []
        for q in self.questions:
            answer = answerer.answer(q["question"], mode="prompt", k=ANSWER_K, as_of=self.as_of(q))
            verdict = free_text(answer.text, q)
            verdicts.append(verdict)
            self.detail(answerer, q, free_text=answer.text, verdict=verdict)
            answerable.append(any(contains(p.text, answer_text(q)) for p in answer.passages))
            if "first_token_ms" in answer.timings:
                first.append(answer.timings["first_token_ms"])
                shown.append(answer.timings.get("shown_ms", answer.timings["first_token_ms"]))
            replaced += answer.timings.get("replaced_non_answer", 0)
            if len(examples) < 5:
                examples.append({"question": q["question"], "answer": answer.text[:160], "verdict": verdict})
        in_reach = [v for v, a in zip(verdicts, answerable, strict=True) if a]
        return {
            "accuracy": figure([float(v == "right") for v in verdicts]),
            "refusals": figure([float(v == "refused") for v in verdicts]),
            "accuracy_answer_in_passages": figure([float(v == "right") for v in in_reach]),
            "refusals_answer_in_passages": figure([float(v == "refused") for v in in_reach]),
            "first_token_ms_median": round(statistics.median(first)) if first else None,
            "first_token_ms_p90": round(sorted(first)[int(0.9 * (len(first) - 1))]) if first else None,
            # when the reader sees the answer: the first token when streamed, the whole answer when checked first
            "shown_ms_median": round(statistics.median(shown)) if shown else None,
            "shown_ms_p90": round(sorted(shown)[int(0.9 * (len(shown) - 1))]) if shown else None,
            "non_answers_replaced": replaced,
            "examples": examples,
        }


def choices_of(q: dict) -> list[str]:
    return [f" {c}" for c in q["choices"]]


def select(questions: list[dict], qa: QASet, everything: bool) -> list[dict]:
    """The questions to score: on the real set, those with at least one source article in the corpus (the
    others' answers are not in the index); on the hard set, the original questions (the ``extra`` ones were added
    for the knowledge benchmark, and the published figures rest on the others); everything with ``everything``."""
    if everything:
        return questions
    if qa.name == "realnews":
        return [q for q in questions if q.get("source_ids")]
    return [q for q in questions if not q.get("extra")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", choices=SET_NAMES, default="hard", help="which set (realnews: real articles)")
    parser.add_argument("--corpus", type=Path, help="articles JSONL (default: the set's)")
    parser.add_argument("--questions", type=Path, help="questions JSONL (default: the set's)")
    parser.add_argument("--limit", type=int, help="score only the first N questions")
    parser.add_argument(
        "--all-questions", action="store_true", help="realnews: also those with no source article; hard: the extra ones"
    )
    parser.add_argument("--profiles", default="naive,new", help=f"comma-separated, of {', '.join(PROFILES)}")
    parser.add_argument("--modes", default="closed-book,prompt", help="of closed-book, prompt, rag-token")
    parser.add_argument("--free-text", default="new", help="profiles whose generated answers are scored ('' for none)")
    parser.add_argument(
        "--variant", action="append", default=[], help="name:field=value,... a profile beside the defaults (repeatable)"
    )
    parser.add_argument("--chunk-tokens", type=int, default=200, help="chunk body size the index is built with")
    parser.add_argument("--chunk-overlap", type=int, default=32)
    parser.add_argument("--base-model", default=None, help="reader: a packaged model's name or a model directory")
    parser.add_argument("--int8", action="store_true", help="the reader's linear layers in dynamic int8 (CPU)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".kup-bench" / "qa", help="indexed corpora")
    parser.add_argument("--model-cache", type=Path, default=ROOT / ".kup-bench", help="de-quantized base model")
    parser.add_argument("--details", type=Path, help="write each question's figures per profile here (JSONL)")
    parser.add_argument("--finetune", action="store_true", help="train a champion adapter and score with it too")
    args = parser.parse_args()
    qa = qa_set(args.set)
    corpus = args.corpus or qa.corpus
    articles = load_jsonl(corpus)
    questions = select(load_jsonl(args.questions or qa.questions), qa, args.all_questions)[: args.limit]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    PROFILES.update(variant(spec) for spec in args.variant)
    dense, sparse = DenseEncoder(), SparseEncoder()
    chunker = Chunker(dense.tokenize, chunk_tokens=args.chunk_tokens, overlap_tokens=args.chunk_overlap)
    started = time.perf_counter()
    data_dir = indexed(corpus, args.cache_dir, dense, sparse, chunker)
    results: dict = {"index_s": round(time.perf_counter() - started, 1), "grouping": grouping(data_dir, articles)}
    results["index_build_s"] = json.loads((data_dir / "indexed.json").read_text())["seconds"]
    store = EdgeStore(data_dir / "index" / "kup")
    lm = LanguageModel(args.model_cache, args.base_model, use_adapter=False, int8=args.int8)
    scorer = Scorer(questions, Truth(articles), qa.dated)
    free = {p.strip() for p in args.free_text.split(",") if p.strip()}
    closed = None
    with store.session():
        names = [p.strip() for p in args.profiles.split(",") if p.strip()]
        for name in names + [v.partition(":")[0] for v in args.variant if v.partition(":")[0] not in names]:
            answerer = Answerer(store, dense, sparse, lm, max_new_tokens=64, profile=PROFILES[name])
            if "closed-book" in modes and "closed-book" not in results:
                closed = scorer.closed_book(answerer)
                results["closed-book"] = tally(closed, questions)
            results[name] = scorer.profile(answerer, [m for m in modes if m != "closed-book"])
            if name in free:
                results[name]["free_text"] = scorer.free_text(answerer)
        results["differences"] = differences(scorer, closed)
    if args.details:
        names = {profile: name for name, profile in PROFILES.items()}
        rows = [{"profile": names.get(profile), **row} for (_, profile), row in scorer.details.items()]
        args.details.write_text("".join(json.dumps(row) + "\n" for row in rows))
    if args.finetune:
        results["champion"] = finetuned(data_dir, args.model_cache, store, dense, sparse, scorer, modes)
    emit(
        "qa",
        {
            "set": qa.name,
            "questions": len(questions),
            "reader": (lm.base_model or "smollm2") + (" int8" if args.int8 else ""),
            "chunking": {"tokens": args.chunk_tokens, "overlap": args.chunk_overlap},
            "updated_questions": sum(bool(q.get("updated")) for q in questions),
            **results,
            "seconds": round(time.perf_counter() - started, 1),
            "peak_rss_mb": peak_rss_mb(),
            "targets": TARGETS.get(qa.name, {}),
        },
    )


TARGETS = {
    "hard": {"prompt_accuracy": ">= closed-book + 0.25", "updated": ">= 0.9 newest, <= 0.05 stale", "hit@5": ">= 0.95"},
    "realnews": {
        "prompt_accuracy": ">= 0.55 and >= naive + 0.10 (intervals clear it)",
        "free_text_accuracy": ">= 0.35, refusals < 0.10 where the answer is in the passages",
        "answer_in_top5": ">= 0.60",
        "hit@5": ">= 0.95",
        "first_token_ms": "< 3000",
    },
}


def differences(scorer: Scorer, closed: list[int] | None) -> dict:
    """Paired differences in prompt accuracy per question (each profile - naive, - closed-book), with intervals."""
    questions = scorer.questions
    right = {
        name: [float(p == q["answer"]) for p, q in zip(picks, questions, strict=True)]
        for name, profile in PROFILES.items()
        if (picks := scorer.prompt_picks.get(profile))
    }
    if closed is not None:
        right["closed-book"] = [float(p == q["answer"]) for p, q in zip(closed, questions, strict=True)]
    pairs = [(a, b) for a in right for b in ("naive", "closed-book") if a != b and b in right and a != "closed-book"]
    return {f"{a}-{b}": paired(right[a], right[b]) for a, b in pairs}


def finetuned(data_dir: Path, model_cache: Path, store, dense, sparse, scorer: Scorer, modes) -> dict:
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
        figures["new"] = scorer.profile(answerer, [m for m in modes if m != "closed-book"])
    return figures


if __name__ == "__main__":
    main()

"""Question answering on a corpus in the index: retrieval hit@k, multiple-choice accuracy per mode, latency.

Questions (JSONL: question, choices, answer index) are about articles of made-up events that the base
model cannot know (shipped in bench/data). Each choice is scored by its mean token log-likelihood as
the answer: closed-book (no passages), prompt (numbered passages in one prompt) and rag-token (one
pass per passage, mixed by retrieval weight); with and without the champion adapter when one exists
(``--finetune`` trains one on the corpus first, through the normal gate). Latency is measured on
prompt-mode answers: time to first token and tokens per second.
Targets: hit@5 >= 0.9; prompt-mode accuracy clearly above closed-book.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
from datetime import datetime
from pathlib import Path

from _common import ROOT, emit

from answering import (
    Answerer,
    LanguageModel,
    choices_logprobs,
    closed_book_prompt,
    fit_passages,
    rag_prompt,
    retrieval_log_weights,
    token_mixture,
)
from connectors import Document
from indexing import Catalog, Chunker, DenseEncoder, EdgeStore, Indexer, SparseEncoder

DATA = ROOT / "bench" / "data"


def normalise(text: str) -> str:
    text = re.sub(r"[^a-z0-9 ]+", " ", text.lower())
    return " ".join(w for w in text.split() if w not in ("the", "a", "an"))


def contains(passage: str, choice: str) -> bool:
    return normalise(choice) in normalise(passage)


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def load_corpus(path: Path) -> list[Document]:
    docs = []
    for line in path.read_text().splitlines():
        a = json.loads(line)
        docs.append(
            Document(
                source="veltmark",
                external_id=a["id"],
                text=a["text"],
                title=a["title"],
                url=a["url"],
                published_at=datetime.fromisoformat(a["published"].replace("Z", "+00:00")),
                language="en",
            )
        )
    return docs


def score_modes(answerer: Answerer, questions: list[dict], k: int) -> dict:
    loaded = answerer.lm.get()
    model, tok = loaded.model, loaded.tokenizer
    budget = answerer.prompt_budget()
    correct = {"closed-book": 0, "prompt": 0, "rag-token": 0}
    hits = 0
    for q in questions:
        choices = [f" {c}" for c in q["choices"]]
        passages = answerer.retrieve(q["question"], k=k, recent_days=None, sources=None)
        hits += any(contains(p.text, q["choices"][q["answer"]]) for p in passages)
        fitted = fit_passages(tok, q["question"], passages, budget)

        closed = choices_logprobs(model, tok, closed_book_prompt(tok, q["question"]), choices)
        prompt = choices_logprobs(model, tok, rag_prompt(tok, q["question"], fitted), choices)
        # RAG-token: per token, the mixture over passages weighted by softmax(relevance / T), as the answerer does.
        weights = retrieval_log_weights(answerer.relevance(q["question"], fitted), answerer.rag_token_temperature)
        per_passage = [choices_logprobs(model, tok, rag_prompt(tok, q["question"], [p]), choices) for p in fitted]
        rag = [token_mixture([scores[c] for scores in per_passage], weights) for c in range(len(choices))]
        for name, scored in (("closed-book", closed), ("prompt", prompt), ("rag-token", rag)):
            pick = max(range(len(choices)), key=lambda i: mean(scored[i]))
            correct[name] += pick == q["answer"]
    n = len(questions)
    return {
        "adapter": loaded.adapter,
        f"hit@{k}": round(hits / n, 3),
        **{f"accuracy_{m}": round(c / n, 3) for m, c in correct.items()},
    }


def latency(answerer: Answerer, questions: list[dict], count: int) -> dict:
    first, speed = [], []
    for q in questions[:count]:
        answer = answerer.answer(q["question"], mode="prompt", k=5)
        first.append(answer.timings["first_token_ms"])
        speed.append(answer.timings["tokens_per_s"])
    return {
        "time_to_first_token_ms_median": round(statistics.median(first)),
        "tokens_per_s_median": round(statistics.median(speed), 1),
        "answers_timed": len(first),
        "example_answer": answer.text[:300],
        "example_citations": [c.url for c in answer.citations],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=Path, default=DATA / "qa_questions.jsonl")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DATA / "qa_corpus.jsonl",
        help="articles to index first (skipped with --index-dir)",
    )
    parser.add_argument("--index-dir", type=Path, help="use the index of an existing data dir instead")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--latency-questions", type=int, default=4)
    parser.add_argument("--finetune", action="store_true", help="train a champion adapter on the corpus first")
    parser.add_argument("--model-cache", type=Path, default=ROOT / ".kup-bench")
    args = parser.parse_args()
    questions = [json.loads(line) for line in args.questions.read_text().splitlines() if line.strip()]
    dense, sparse = DenseEncoder(), SparseEncoder()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.index_dir or Path(tmp)
        store = EdgeStore(data_dir / "index" / "kup")
        catalog = Catalog(f"sqlite:///{data_dir / 'catalog.db'}")
        if args.index_dir is None:
            catalog.upsert_documents(load_corpus(args.corpus))
            Indexer(catalog, store, Chunker(dense.tokenize), dense, sparse).run()
        base_dir = args.model_cache / "models" / "SmolLM2-135M-Instruct"
        base_ref = str(base_dir) if (base_dir / "config.json").exists() else None
        results = {}
        plain = Answerer(store, dense, sparse, LanguageModel(data_dir, base_ref, use_adapter=False), max_new_tokens=64)
        results["base"] = score_modes(plain, questions, args.k)
        results["latency"] = latency(plain, questions, args.latency_questions)
        if args.finetune:
            from training import load_recipe, run_finetune

            recipe = load_recipe(
                None,
                epochs=4,
                learning_rate=1e-3,
                lora_r=16,
                lora_alpha=32,
                batch_size=4,
                max_seq_len=256,
                synthetic_samples=16,
            )
            outcome = run_finetune(catalog, data_dir, recipe, base_model=base_ref)
            results["finetune"] = {
                "status": outcome.status,
                "summary": outcome.summary,
                "reasons": outcome.verdict.reasons if outcome.verdict else [],
            }
        with_adapter = Answerer(store, dense, sparse, LanguageModel(data_dir, base_ref), max_new_tokens=64)
        if with_adapter.lm.get().adapter is not None:
            results["champion"] = score_modes(with_adapter, questions, args.k)
        catalog.close()
    emit(
        "qa",
        {
            "questions": len(questions),
            **results,
            "targets": {f"hit@{args.k}": ">= 0.9", "prompt_vs_closed_book": "clearly higher"},
        },
    )


if __name__ == "__main__":
    main()

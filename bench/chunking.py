"""Chunking settings against retrieval quality and tokens embedded, on the hard news set. One JSON line each.

Each configuration (chunk size, the content-defined boundary rule, overlap, the title before each
chunk) indexes the whole set (``bench/data/hardnews``) with the real Catalog and Indexer and the
default encoder backend, then scores its 172 questions as ``bench/qa.py`` does: hit@1/5/10 by
source story through the answers' retrieval (``answering.retrieval``, the profile's defaults) and
hit@5 of the plain hybrid search, plus the best prompt passage's cosine (the answerer's
``min_relevance`` cut-off is set against it). Costs: chunks and tokens embedded (special tokens
included, truncation applied) and the index time. Edit locality: every paragraph of ``--edit-docs``
articles edited in turn (a sentence added), counting the chunks that would need embedding again.

    .venv/bin/python bench/chunking.py [--configs current,no-overlap,...] [--edit-docs 40]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bench._common import ROOT, emit
from bench.qa import Truth, as_document, load_jsonl

import indexing.indexer as indexer_module
from answering.profile import AnswerProfile
from answering.retrieval import retrieve
from indexing import Catalog, Chunker, DenseEncoder, EdgeStore, Indexer, SparseEncoder, search
from indexing.embedding import DENSE_SIZE

DATA = ROOT / "bench" / "data" / "hardnews"
# name: (chunk_tokens, overlap_tokens, min_tokens (None: chunk_tokens // 4), boundary_modulus, title prefix)
CONFIGS = {
    "current": (200, 32, None, 3, True),
    "no-overlap": (200, 0, None, 3, True),
    "no-title": (200, 32, None, 3, False),
    "min100-mod4": (200, 32, 100, 4, True),
    "min100-mod4-no-overlap": (200, 0, 100, 4, True),
    "224-min112-mod4-no-overlap": (224, 0, 112, 4, True),
    "128-overlap16": (128, 16, None, 3, True),
}
EDIT = " A spokesperson later said this account was being checked again."


class CountingEncoder(DenseEncoder):
    """The default encoder, remembering vectors by text (configurations share chunks, questions repeat) and,
    while ``counting``, adding up the texts and tokens sent to it as the model sees them (truncated)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.memo: dict[str, np.ndarray] = {}
        self.counting = False
        self.tokens = self.texts = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        if self.counting:
            ids = self.tokenize(list(texts), add_special_tokens=True)["input_ids"]
            self.tokens += sum(min(len(i), 256) for i in ids)
            self.texts += len(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self.memo))
        if missing:
            for text, vector in zip(missing, super().encode(missing), strict=True):
                self.memo[text] = vector
        return np.stack([self.memo[t] for t in texts]) if texts else np.zeros((0, DENSE_SIZE), np.float32)


def edit_locality(chunker: Chunker, articles: list[dict]) -> dict:
    """For every paragraph of each article: chunks of the edited text that the original does not have."""
    changed = []
    for article in articles:
        before = {c.hash for c in chunker.chunk(article["text"])}
        paragraphs = article["text"].split("\n\n")
        for i in range(len(paragraphs)):
            edited = paragraphs[:i] + [paragraphs[i] + EDIT] + paragraphs[i + 1 :]
            changed.append(sum(c.hash not in before for c in chunker.chunk("\n\n".join(edited))))
    return {
        "edits": len(changed),
        "chunks_changed_mean": round(statistics.mean(changed), 2),
        "chunks_changed_max": max(changed),
        "share_within_2": round(sum(n <= 2 for n in changed) / len(changed), 3),
    }


def build_catalog(path: Path, articles: list[dict]) -> None:
    """Documents committed one at a time in publication order, as refreshes bring them (stories form)."""
    catalog = Catalog(f"sqlite:///{path}")
    for article in sorted(articles, key=lambda a: (a["published"], a["url"])):
        catalog.upsert_documents([as_document(article)])
    catalog.close()


def run_config(name: str, spec: tuple, base: Path, work: Path, dense: CountingEncoder, sparse, data, edit_docs: int):
    chunk_tokens, overlap, min_tokens, modulus, title = spec
    articles, questions, truth = data
    chunker = Chunker(
        dense.tokenize,
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap,
        min_tokens=min_tokens,
        boundary_modulus=modulus,
    )
    original = indexer_module.embed_text
    if not title:
        indexer_module.embed_text = lambda _title, text: text
    directory = work / name
    directory.mkdir()
    shutil.copyfile(base, directory / "catalog.db")
    catalog = Catalog(f"sqlite:///{directory / 'catalog.db'}")
    store = EdgeStore(directory / "index")
    dense.tokens = dense.texts = 0
    dense.counting = True  # the indexer's calls count; the questions' below do not
    try:
        started = time.perf_counter()
        report = Indexer(catalog, store, chunker, dense, sparse).run()
        index_s = time.perf_counter() - started
    finally:
        dense.counting = False
        indexer_module.embed_text = original
        catalog.close()

    policy = AnswerProfile().retrieval
    ranks, plain_hits, best_cosines = [], [], []
    with store.session():
        for q in questions:
            ranked = retrieve(store, dense, sparse, q["question"], k=10, policy=policy)
            ranks.append(next((i + 1 for i, p in enumerate(ranked) if truth.is_hit(p, q)), None))
            hits = search(store, dense, sparse, q["question"], limit=5).hits
            plain_hits.append(any(truth.is_hit(SimpleNamespace(url=h.payload.get("url")), q) for h in hits))
            vectors = dense.encode([q["question"]] + [p.text for p in ranked[:3]])
            best_cosines.append(float(max(vectors[1:] @ vectors[0])) if len(vectors) > 1 else 0.0)
    store.close()
    chunks = report.embedded + report.reused + report.unchanged
    return {
        "config": name,
        "chunk_tokens": chunk_tokens,
        "overlap_tokens": overlap,
        "min_tokens": min_tokens if min_tokens is not None else chunk_tokens // 4,
        "boundary_modulus": modulus,
        "title_prefix": title,
        "articles": len(articles),
        "chunks": chunks,
        "chunks_per_article": round(chunks / len(articles), 2),
        "texts_embedded": dense.texts,
        "tokens_embedded": dense.tokens,
        "tokens_per_article": round(dense.tokens / len(articles)),
        "index_s": round(index_s, 1),
        "questions": len(questions),
        **{f"hit@{k}": round(sum(r is not None and r <= k for r in ranks) / len(ranks), 3) for k in (1, 5, 10)},
        "mrr@10": round(sum(1 / r for r in ranks if r) / len(ranks), 3),
        "plain_search_hit@5": round(sum(plain_hits) / len(plain_hits), 3),
        "best_passage_cosine_min": round(min(best_cosines), 3),
        "best_passage_cosine_p05": round(float(np.percentile(best_cosines, 5)), 3),
        "edit_locality": edit_locality(chunker, articles[:edit_docs]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--edit-docs", type=int, default=40, help="articles whose every paragraph is edited in turn")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    args = parser.parse_args()
    articles = load_jsonl(DATA / "articles.jsonl")
    questions = [q for q in load_jsonl(DATA / "questions.jsonl") if not q.get("extra")][: args.limit]  # as published
    dense = CountingEncoder(backend="onnx-int8", cache_dir=ROOT / ".kup-bench" / "onnx")
    sparse = SparseEncoder()
    dense.encode(["warm up"])
    data = (articles, questions, Truth(articles))
    with tempfile.TemporaryDirectory(prefix="kup-chunking-") as tmp:
        base = Path(tmp) / "catalog.db"
        build_catalog(base, articles)
        for name in [c.strip() for c in args.configs.split(",") if c.strip()]:
            emit("chunking", run_config(name, CONFIGS[name], base, Path(tmp), dense, sparse, data, args.edit_docs))


if __name__ == "__main__":
    main()

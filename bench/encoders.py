"""Dense encoder backends side by side: throughput on real chunks and hybrid retrieval quality (hit@k).

Reads the chunks of an indexed hard news corpus (the index ``bench/qa.py`` builds and caches, built
with the torch encoder: its stored vectors are the torch row), re-embeds every chunk with each other
backend into a fresh Qdrant Edge index with the same payloads and sparse vectors, and scores the
hard set's questions by plain hybrid search (``indexing.search``): hit@1/5/10 by story, as
``bench/qa.py`` counts them. Throughput is measured on the same chunk texts, backends interleaved
(``--rounds``), with export time reported apart. Prints one JSON line; choose the fastest backend
whose hit@5 is within 0.01 of torch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench._common import ROOT, emit

from indexing import Changes, ChunkPoint, DenseEncoder, EdgeStore, SparseEncoder, Vectors, embed_text, search
from indexing.embedding import BACKENDS

HARD = ROOT / "bench" / "data" / "hardnews"


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def hits(store: EdgeStore, dense: DenseEncoder, sparse: SparseEncoder, questions, articles) -> dict:
    by_url = {a["url"]: a for a in articles}
    story = {a["id"]: a.get("story_id", a["id"]) for a in articles}
    ranks = []
    with store.session():
        for q in questions:
            wanted = {story[i] for i in (q.get("source_ids") or [q["article"]])}
            found = search(store, dense, sparse, q["question"], limit=10).hits
            rank = next(
                (
                    i + 1
                    for i, h in enumerate(found)
                    if h.payload.get("url") in by_url and story[by_url[h.payload["url"]]["id"]] in wanted
                ),
                None,
            )
            ranks.append(rank)
    return {f"hit@{k}": round(sum(r is not None and r <= k for r in ranks) / len(ranks), 3) for k in (1, 5, 10)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--index", type=Path, required=True, help="an Edge index of the hard set built with torch")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--sample", type=int, default=256, help="chunks timed per backend and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".kup-bench" / "onnx")
    parser.add_argument("--no-quality", action="store_true", help="throughput only")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    articles = load_jsonl(HARD / "articles.jsonl")
    questions = [q for q in load_jsonl(HARD / "questions.jsonl") if not q.get("extra")]  # the published set
    source = EdgeStore(args.index)
    points = list(source.scan())
    texts = [embed_text(p.payload.get("title", ""), p.payload["text"]) for p in points]
    sparse = SparseEncoder()
    figures: dict = {"chunks": len(points), "questions": len(questions), "batch": args.batch}

    encoders = {}
    for b in backends:
        t0 = time.perf_counter()
        enc = DenseEncoder(backend=b, cache_dir=args.cache_dir, batch_size=args.batch)
        enc.encode(["warm up"])
        encoders[b] = enc
        figures[f"{b}_load_s"] = round(time.perf_counter() - t0, 2)  # export included on a cold cache

    sample = texts[: args.sample]
    rates: dict[str, list[float]] = {b: [] for b in backends}
    for _ in range(args.rounds):
        for b, enc in encoders.items():
            t0 = time.perf_counter()
            enc.encode(sample)
            rates[b].append(len(sample) / (time.perf_counter() - t0))
    for b in backends:
        figures[f"{b}_texts_per_s"] = round(statistics.median(rates[b]), 1)
    t0 = time.perf_counter()
    sparse.encode(sample)
    figures["sparse_texts_per_s"] = round(len(sample) / (time.perf_counter() - t0), 1)
    tok = encoders[backends[-1]]
    t0 = time.perf_counter()
    tok.tokenize(sample, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    figures["tokenize_texts_per_s"] = round(len(sample) / (time.perf_counter() - t0), 1)

    if not args.no_quality:
        sparse_vectors = source.vectors([p.id for p in points])
        for b, enc in encoders.items():
            if b == "torch":  # the stored vectors are torch's
                figures["torch_quality"] = hits(source, enc, sparse, questions, articles)
                continue
            with tempfile.TemporaryDirectory() as tmp:
                store = EdgeStore(Path(tmp) / "kup")
                t0 = time.perf_counter()
                dense = enc.encode(texts)
                figures[f"{b}_full_embed_s"] = round(time.perf_counter() - t0, 1)
                store.apply(
                    Changes(
                        upserts=[
                            ChunkPoint(p.id, Vectors(v.tolist(), sparse_vectors[p.id].sparse), p.payload)
                            for p, v in zip(points, dense, strict=True)
                        ]
                    )
                )
                store.optimize()
                figures[f"{b}_quality"] = hits(store, enc, sparse, questions, articles)
        base = figures.get("torch_quality", {}).get("hit@5")
        eligible = [b for b in backends if base is None or figures[f"{b}_quality"]["hit@5"] >= base - 0.01]
        figures["fastest_within_0.01_hit@5"] = max(eligible, key=lambda b: figures[f"{b}_texts_per_s"])
    emit("encoders", figures)


if __name__ == "__main__":
    main()

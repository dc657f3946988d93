"""(c) Hybrid query latency on Qdrant Edge at 10k and 100k chunks (query embedding excluded, reported apart).

Embedding 100k chunks takes an hour on 2 cores, so the points are built from 2,000 real MiniLM
embeddings of generated paragraphs plus small noise (realistic clusters), with BM25 sparse vectors
of texts drawn from a Zipf-distributed 20k-word vocabulary. Queries are real sentences, embedded
by the real models. The shard stays open in a session while timing (opening is reported apart).
Target: p95 under 20 ms.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._common import emit

from indexing import Changes, ChunkPoint, DenseEncoder, EdgeStore, SparseEncoder, Vectors, point_id

VOCAB = 20_000


def word(i: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = ""
    i += 1
    while i:
        i, r = divmod(i, 26)
        out += letters[r]
    return out + "o"


def texts(rng: np.random.Generator, count: int, words: int = 80) -> list[str]:
    ranks = np.minimum(rng.zipf(1.1, size=(count, words)), VOCAB) - 1
    return [" ".join(word(int(r)) for r in row) for row in ranks]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    dense, sparse = DenseEncoder(), SparseEncoder()

    base_texts = texts(rng, 2000)
    base = dense.encode(base_texts)
    questions = [f"news about {' '.join(t.split()[:6])}" for t in texts(rng, args.queries)]
    e0 = time.perf_counter()
    query_dense = [dense.encode_query(q) for q in questions]
    e1 = time.perf_counter()
    query_sparse = [sparse.encode_query(q) for q in questions]
    e2 = time.perf_counter()

    figures: dict[str, object] = {
        "query_embed_dense_ms": round((e1 - e0) / len(questions) * 1000, 2),
        "query_embed_sparse_ms": round((e2 - e1) / len(questions) * 1000, 3),
    }
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            store = EdgeStore(Path(tmp) / "index")
            corpus = texts(rng, size)
            upsert_s = 0.0
            for start in range(0, size, 2000):
                idx = np.arange(start, min(size, start + 2000))
                vecs = base[idx % len(base)] + rng.normal(0, 0.02, size=(len(idx), base.shape[1]))
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                sparse_vecs = sparse.encode([corpus[i] for i in idx])
                points = [
                    ChunkPoint(
                        point_id(f"doc-{i // 4}", i % 4),
                        Vectors(v.tolist(), s),
                        {
                            "doc_id": f"doc-{i // 4}",
                            "source": f"s{i % 5}",
                            "chunk_index": int(i % 4),
                            "published": f"2026-{1 + i % 11:02d}-01T00:00:00Z",
                            "text": corpus[i][:200],
                        },
                    )
                    for i, v, s in zip(idx, vecs, sparse_vecs, strict=True)
                ]
                t = time.perf_counter()
                store.apply(Changes(upserts=points))
                upsert_s += time.perf_counter() - t
            z0 = time.perf_counter()
            store.optimize()  # what the indexer does at the end of a run that wrote points
            optimize_s = time.perf_counter() - z0
            o0 = time.perf_counter()
            with store.session() as s:
                open_s = time.perf_counter() - o0
                s.search(query_dense[0], query_sparse[0], limit=5)  # warm-up
                latencies = []
                for qd, qs in zip(query_dense, query_sparse, strict=True):
                    t = time.perf_counter()
                    hits = s.search(qd, qs, limit=5)
                    latencies.append((time.perf_counter() - t) * 1000)
                    assert hits
                filtered = []
                for qd, qs in zip(query_dense[:100], query_sparse[:100], strict=True):
                    t = time.perf_counter()
                    s.search(qd, qs, limit=5, sources=["s1", "s3"])
                    filtered.append((time.perf_counter() - t) * 1000)
            p50, p95 = np.percentile(latencies, [50, 95])
            f50, f95 = np.percentile(filtered, [50, 95])
            figures[f"chunks_{size}"] = {
                "upsert_points_per_s": round(size / upsert_s),
                "optimize_seconds": round(optimize_s, 1),
                "open_ms": round(open_s * 1000, 1),
                "query_p50_ms": round(float(p50), 2),
                "query_p95_ms": round(float(p95), 2),
                "filtered_query_p50_ms": round(float(f50), 2),
                "filtered_query_p95_ms": round(float(f95), 2),
            }
    figures["target_p95_ms"] = 20
    emit("query_latency", figures)


if __name__ == "__main__":
    main()

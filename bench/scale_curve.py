"""How cost grows with the data: the vector store at 100k, 300k and 1M chunks, and the catalog at 100k and 1M documents.

**Store** (synthetic vectors, said so: 384-dim unit vectors drawn around 2,000 topic centres, as sentence embeddings
cluster, and 12-term BM25-like sparse vectors from a Zipf vocabulary; payloads as kup writes them), grown step by step
to each size in one process per engine, so each figure is that engine's own:

- ``edge``: Qdrant Edge as kup uses it (``indexing.EdgeStore``; upserts of 5,000, then ``optimize``: HNSW built);
- ``local``: qdrant-client's local mode (``QdrantClient(path=...)``), the same collection layout.

Per size: upsert rate (points/s over the step, flush included), the optimize that follows (Edge), hybrid query
p50/p99 (dense + sparse prefetch, RRF, ``--queries`` queries, a source filter on every fourth), the time to reopen the
store from disk, the disk it takes and the process's resident memory after reopening and querying.

**Catalog** (SQLite and PostgreSQL), at each of ``--catalog-sizes`` indexed documents over 20 sources: a refresh
where nothing changed (20 feeds answering 304, then the indexer finding nothing pending: the minute refresh's own
work), ``kup status``'s data (``cli.views_status.status_data`` and the health verdict, in process) and the ``kup
status`` command as a user runs it (a new process), and a lease claim (one new document among them claimed and
marked indexed).

Every figure is printed with its growth factor per 10x of data (the ratio between the largest and smallest size,
scaled to a factor of 10 in log space). One JSON line. Targets (issue 32) at 1M: query p99 under 50 ms, a no-op
refresh under 2 s, ``kup status`` under 2 s.

    .venv/bin/python -m bench.scale_curve [--sizes 100000,300000,1000000] [--engines edge,local]
        [--catalog-sizes 100000,1000000] [--catalogs sqlite,postgres] [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench._common import ROOT, emit, fresh_pg_database

DIM = 384
PG_ADMIN = os.environ.get("KUP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def disk_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return round(total / 2**20, 1)


def quantiles(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"p50_ms": round(statistics.median(ms), 2), "p99_ms": round(ms[int(0.99 * (len(ms) - 1))], 2)}


def growth(small: float, large: float, ratio: float) -> float | None:
    """The factor per 10x of data between two sizes ``ratio`` apart (1.0: flat, 10.0: linear)."""
    if not small or not large or small <= 0 or large <= 0:
        return None
    return round(math.exp(math.log(large / small) / math.log(ratio) * math.log(10)), 2)


class Synthetic:
    """Chunks as the store sees them: clustered unit vectors, sparse term weights, kup's payload fields."""

    def __init__(self, seed: int = 5) -> None:
        self.rng = np.random.default_rng(seed)
        centres = self.rng.normal(size=(2000, DIM)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.vocab = 30_000

    def dense(self, n: int) -> np.ndarray:
        v = self.centres[self.rng.integers(0, len(self.centres), n)] + self.rng.normal(scale=0.35, size=(n, DIM))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    def sparse(self) -> tuple[list[int], list[float]]:
        terms = np.unique(np.minimum(self.rng.zipf(1.3, 12), self.vocab - 1))
        return terms.tolist(), self.rng.uniform(0.5, 3.0, len(terms)).round(3).tolist()

    def payload(self, i: int) -> dict:
        return {
            "doc_id": f"doc-{i // 8}", "source": f"source-{i % 20}", "chunk_index": i % 8,
            "url": f"https://news.example.com/{i // 8}", "title": f"Story {i // 8}",
            "text": "a passage of about a hundred words " * 3, "published": "2026-11-01T00:00:00Z",
        }  # fmt: skip


# ---- the store, one engine per process ----


def edge_engine(path: Path):
    from indexing import Changes, ChunkPoint, EdgeStore, SparseVector, Vectors

    def upsert(ids, dense, sparse, payloads):
        EdgeStore(path).apply(Changes(upserts=[
            ChunkPoint(pid, Vectors(d.tolist(), SparseVector(*s)), p)
            for pid, d, s, p in zip(ids, dense, sparse, payloads, strict=True)
        ]))  # fmt: skip

    def optimize():
        EdgeStore(path).optimize()

    def opened():
        store = EdgeStore(path).keep_open()  # as kup api holds it
        store.count()  # the shard loads on the first operation

        def query(dense, sparse, source):
            return store.search(dense.tolist(), SparseVector(*sparse), limit=10, sources=[source] if source else None)

        return query, store.close

    return upsert, optimize, opened


def local_engine(path: Path):
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(path))
    if not client.collection_exists("kup"):
        client.create_collection(
            "kup",
            vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.COSINE)},
            sparse_vectors_config={"sparse": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
    state = {"client": client}

    def upsert(ids, dense, sparse, payloads):
        state["client"].upsert("kup", points=[
            models.PointStruct(id=pid, vector={"dense": d.tolist(), "sparse": models.SparseVector(indices=s[0],
                               values=s[1])}, payload=p)
            for pid, d, s, p in zip(ids, dense, sparse, payloads, strict=True)
        ])  # fmt: skip

    def opened():
        state["client"].close()
        reopened = QdrantClient(path=str(path))
        state["client"] = reopened

        def query(dense, sparse, source):
            flt = (
                models.Filter(must=[models.FieldCondition(key="source", match=models.MatchValue(value=source))])
                if source
                else None
            )
            return reopened.query_points(
                "kup",
                prefetch=[
                    models.Prefetch(query=dense.tolist(), using="dense", limit=40, filter=flt),
                    models.Prefetch(
                        query=models.SparseVector(indices=sparse[0], values=sparse[1]),
                        using="sparse",
                        limit=40,
                        filter=flt,
                    ),
                ],  # fmt: skip
                query=models.FusionQuery(fusion=models.Fusion.RRF),
                limit=10,
                with_payload=True,
            ).points

        return query, lambda: None

    return upsert, (lambda: None), opened


def store_worker(engine: str, sizes: list[int], queries: int, folder: Path) -> None:
    """Grow one engine's store through ``sizes``; print one JSON line per size."""
    data = Synthetic()
    upsert, optimize, opened = (edge_engine if engine == "edge" else local_engine)(folder / engine)
    have = 0
    for size in sizes:
        started = time.perf_counter()
        for start in range(have, size, 5000):
            n = min(5000, size - start)
            ids = [str(uuid.UUID(int=start + i + 1)) for i in range(n)]
            upsert(ids, data.dense(n), [data.sparse() for _ in range(n)], [data.payload(start + i) for i in range(n)])
        upserted = time.perf_counter() - started
        started = time.perf_counter()
        optimize()
        optimized = time.perf_counter() - started
        added, have = size - have, size
        started = time.perf_counter()
        query, close = opened()
        reopen = time.perf_counter() - started
        qd, qs = data.dense(queries), [data.sparse() for _ in range(queries)]
        for i in range(5):
            query(qd[i], qs[i], None)  # warm caches as a serving process's first requests do
        lat = []
        for i in range(queries):
            t = time.perf_counter()
            query(qd[i], qs[i], f"source-{i % 20}" if i % 4 == 3 else None)
            lat.append((time.perf_counter() - t) * 1000)
        line = {
            "engine": engine, "size": size, "upsert_per_s": round(added / upserted), "optimize_s": round(optimized, 1),
            "reopen_s": round(reopen, 2), **quantiles(lat), "disk_mb": disk_mb(folder / engine), "rss_mb": rss_mb(),
        }  # fmt: skip
        close()
        print(json.dumps(line), flush=True)


def store_curve(engines: list[str], sizes: list[int], queries: int, timeout: float) -> dict:
    out: dict = {"vectors": "synthetic (clustered 384-dim unit vectors, Zipf sparse terms)"}
    for engine in engines:
        with tempfile.TemporaryDirectory() as tmp:
            rows, error = [], None
            cmd = [sys.executable, "-m", "bench.scale_curve", "--worker", engine, "--sizes", ",".join(map(str, sizes)),
                   "--queries", str(queries), "--folder", tmp]  # fmt: skip
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
            deadline = time.monotonic() + timeout
            try:
                for line in proc.stdout:
                    rows.append(json.loads(line))
                    print(line.strip(), file=sys.stderr, flush=True)  # progress: a stopped run still says this much
                    if time.monotonic() > deadline:
                        break
            finally:
                if proc.poll() is None and time.monotonic() > deadline:
                    proc.kill()
                    error = f"stopped after {timeout:.0f} s (--store-timeout)"
                proc.wait()
            if proc.returncode and not error:
                error = f"worker exited with {proc.returncode}"
            out[engine] = {"sizes": rows, **({"error": error} if error else {})}
            if len(rows) >= 2:
                a, b = rows[0], rows[-1]
                ratio = b["size"] / a["size"]
                out[engine]["growth_per_10x"] = {
                    k: growth(a[k], b[k], ratio) for k in ("upsert_per_s", "reopen_s", "p50_ms", "p99_ms", "disk_mb",
                                                           "rss_mb")
                }  # fmt: skip
    return out


# ---- the catalog ----


SEED = 2_000  # documents committed through the catalog's own path; the rest are copies of their rows


def fill_catalog(url: str, count: int, have: int) -> None:
    """``count`` indexed documents in the catalog: the first ``SEED`` committed, claimed and marked indexed as a
    refresh does (story fingerprints included), the rest bulk copies of those rows under new ids and keys
    (committing a million documents one story check at a time would take hours; what is measured here is the
    catalog at that size, not how it got there)."""
    from sqlalchemy import insert, select

    from connectors import Document
    from indexing import Catalog, now_utc
    from indexing.schema import documents, story_bands

    catalog = Catalog(url)
    rng = np.random.default_rng(have)
    try:
        if have == 0:
            words = np.array([f"w{i}" for i in range(50_000)])
            docs = [
                Document(source=f"feed-{i % 20}", external_id=f"doc-{i}", text=" ".join(rng.choice(words, 60)),
                         title=f"Doc {i}", url=f"https://x.example/{i}", published_at=datetime(2026, 11, 1, tzinfo=UTC))
                for i in range(SEED)
            ]  # fmt: skip
            now = now_utc()
            catalog.upsert_documents(docs, now)
            claimed = catalog.claim_pending("bench:fill", len(docs), now)
            catalog.mark_indexed("bench:fill", [(d.id, d.version, 1) for d in claimed], now)
            have = SEED
        with catalog.engine.connect() as conn:
            seed = [dict(r._mapping) for r in conn.execute(select(documents).limit(SEED)).all()]
            bands = [dict(r._mapping) for r in conn.execute(select(story_bands).where(
                story_bands.c.doc_id.in_([r["id"] for r in seed[:500]]))).all()]  # fmt: skip
        by_doc: dict[str, list[dict]] = {}
        for band in bands:
            by_doc.setdefault(band["doc_id"], []).append(band)
        while have < count:
            n = min(20_000, count - have)
            rows, band_rows = [], []
            for i in range(n):
                row = seed[i % len(seed)]
                new_id = uuid.uuid4().hex
                rows.append({**row, "id": new_id, "external_id": f"copy-{have + i}", "story_id": new_id,
                             "url": f"https://example.com/c/{have + i}"})  # fmt: skip
                for band in by_doc.get(row["id"], ()):
                    band_rows.append({"doc_id": new_id, "band": band["band"], "key": int(rng.integers(1, 2**62))})
            with catalog.engine.begin() as conn:
                conn.execute(insert(documents), rows)
                if band_rows:
                    conn.execute(insert(story_bands), band_rows)
            have += n
    finally:
        catalog.close()


def catalog_figures(url: str, data_dir: Path, feeds: str, repeats: int) -> dict:
    from bench.noop_refresh import indexer_for, pipeline_once

    from cli.views_status import status_data
    from connectors import Document, load_sources
    from flows.deployments import read_specs
    from flows.health import pipeline_health
    from flows.runtime import Runtime
    from flows.settings import load_settings
    from indexing import Catalog, now_utc

    catalog = Catalog(url)
    env = {"KUP_CATALOG_URL": url, "KUP_DATA_DIR": str(data_dir), "KUP_SOURCES_FILE": feeds}
    try:
        sources = load_sources(Path(feeds))
        indexer = indexer_for(catalog, data_dir)
        pipeline_once(sources, catalog, indexer)
        noop = statistics.median(pipeline_once(sources, catalog, indexer) for _ in range(repeats))
        os.environ.update(env)
        settings = load_settings()
        in_process = []
        for _ in range(repeats):
            t = time.perf_counter()
            with Runtime(settings) as rt:
                status_data(rt)
                pipeline_health(settings, rt.catalog, read_specs())
            in_process.append(time.perf_counter() - t)
        command = []
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([str(ROOT / ".venv" / "bin" / "kup"), "status", "--json"], env={**os.environ, **env},
                           capture_output=True, check=False, timeout=120)  # fmt: skip
            command.append(time.perf_counter() - t)
        claims = []
        for i in range(repeats):
            doc = Document(source="feed-0", external_id=f"new-{uuid.uuid4()}", text=uuid.uuid4().hex * 8, title="New",
                           url=f"https://x.example/{i}", published_at=datetime(2026, 12, 1, tzinfo=UTC))  # fmt: skip
            now = now_utc()
            catalog.upsert_documents([doc], now)
            t = time.perf_counter()
            claimed = catalog.claim_pending("bench:claim", 100, now)
            catalog.mark_indexed("bench:claim", [(d.id, d.version, 1) for d in claimed], now)
            claims.append(time.perf_counter() - t)
            assert len(claimed) == 1, [(d.id, d.source) for d in claimed]
        return {
            "noop_refresh_s": round(noop, 3), "status_data_s": round(statistics.median(in_process), 3),
            "kup_status_command_s": round(statistics.median(command), 2),
            "lease_claim_ms": round(1000 * statistics.median(claims), 1),
        }  # fmt: skip
    finally:
        catalog.close()


def catalog_curve(kinds: list[str], sizes: list[int], repeats: int) -> dict:
    from bench.noop_refresh import FEEDS

    from fixtures import FeedServer, Item, rss
    from indexing import Catalog

    out: dict = {}
    with FeedServer() as server, tempfile.TemporaryDirectory() as tmp:
        lines = ["sources:"]
        for i in range(FEEDS):  # as bench/noop_refresh.py: each feed answers 304 to its validator
            server.set(f"/feed-{i}", rss([Item(f"Item {i}", guid=f"g{i}", summary="s")]), etag=f'"{i}"',
                       content_type="application/rss+xml")  # fmt: skip
            lines += [
                f"  - name: feed-{i}",
                f"    url: {server.url(f'/feed-{i}')}",
                "    allow_private_addresses: true",
            ]
        feeds = Path(tmp) / "sources.yaml"
        feeds.write_text("\n".join(lines) + "\n")
        for kind in kinds:
            url = f"sqlite:///{tmp}/catalog-{kind}.db" if kind == "sqlite" else create_pg_database()
            rows, have = [], 0
            try:
                for size in sizes:
                    started = time.perf_counter()
                    fill_catalog(url, size, have)
                    fill, have = time.perf_counter() - started, size
                    catalog = Catalog(url)
                    for i in range(FEEDS):  # the feeds' validators, as a previous refresh left them
                        catalog.record_source_success(f"feed-{i}", "feed", {"etag": f'"{i}"'})
                    catalog.close()
                    figures = catalog_figures(url, Path(tmp) / f"data-{kind}", str(feeds), repeats)
                    rows.append({"documents": size, "fill_s": round(fill, 1), **figures})
                    print(json.dumps({"catalog": kind, **rows[-1]}), file=sys.stderr, flush=True)
            finally:
                if kind == "postgres":
                    drop_pg_database(url)
            out[kind] = {"sizes": rows}
            if len(rows) >= 2:
                a, b = rows[0], rows[-1]
                keys = ("noop_refresh_s", "status_data_s", "kup_status_command_s", "lease_claim_ms")
                out[kind]["growth_per_10x"] = {k: growth(a[k], b[k], b["documents"] / a["documents"]) for k in keys}
    return out


def create_pg_database() -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + fresh_pg_database(PG_ADMIN, "kup_scale")


def drop_pg_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--engines", default="edge,local")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--store-timeout", type=float, default=3600, help="seconds per engine before it is stopped")
    parser.add_argument("--catalog-sizes", default="100000,1000000")
    parser.add_argument("--catalogs", default="sqlite,postgres")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.worker:
        store_worker(args.worker, sizes, args.queries, args.folder)
        return
    figures: dict = {"targets_at_1m": {"query_p99_ms": 50, "noop_refresh_s": 2, "kup_status_s": 2}}
    engines = [e for e in args.engines.split(",") if e]
    if engines:
        figures["store"] = store_curve(engines, sizes, args.queries, args.store_timeout)
    kinds = [k for k in args.catalogs.split(",") if k]
    if kinds:
        figures["catalog"] = catalog_curve(kinds, [int(s) for s in args.catalog_sizes.split(",") if s], args.repeats)
    emit("scale_curve", figures)


if __name__ == "__main__":
    main()

"""Scale-out figures: a reindex in-process against a 2-worker Dask LocalCluster, and a backfill on one Prefect worker
against the same backfill split over two; documents per second, the ratio to one process, the correctness check
(same point ids, no duplicates, nothing missing; vectors equal), per-stage times, and a projection to N machines.

On a 2-core machine the ratios cannot show scale-up (two workers share the same two cores the single process
already used); the per-stage times measured here say what N machines would give (see ``projection``).

    python bench/scale.py                      # 5,000 documents reindexed, 600 backfilled (about 10-15 min, 2 cores)
    python bench/scale.py --reindex-docs 500 --backfill-docs 100   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from bench._common import emit, fresh_pg_database, peak_rss_mb

from connectors import Document
from fixtures import FeedServer, Pipeline, article_html, paragraphs
from fixtures.workers import start_workers
from indexing import Catalog, Chunker, DenseEncoder, EdgeStore, Indexer, SparseEncoder
from indexing.fanout import Fanout, FanoutStats, WorkerRecipe
from indexing.reindex import rebuild_index

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PUBLISHED = datetime(2026, 11, 1, tzinfo=UTC)


def corpus(count: int) -> list[Document]:
    """News-sized documents of one or two chunks (two or three paragraphs of 60 words)."""
    return [
        Document(
            source="news",
            external_id=f"s{i}",
            text="\n\n".join(paragraphs(50_000 + i, count=2 + i % 2)),
            title=f"Report {i}",
            url=f"https://example.com/{i}",
            published_at=PUBLISHED + timedelta(seconds=i),
        )
        for i in range(count)
    ]


def _parts(tmp: Path):
    dense = DenseEncoder(backend="onnx-int8", cache_dir=tmp / "models" / "onnx")
    dense.encode(["warm up"])
    return dense, SparseEncoder(), Chunker(dense.tokenize, chunk_tokens=200, overlap_tokens=32)


def reindex_run(catalog: Catalog, tmp: Path, name: str, fanout: Fanout | None) -> tuple[dict, EdgeStore]:
    dense, sparse, chunker = _parts(tmp)
    store = EdgeStore(tmp / name / "kup")
    indexer = Indexer(catalog, store, chunker, dense, sparse, fanout=fanout)
    if fanout is not None:
        fanout.worker_count  # noqa: B018 - start the cluster (and load the models) before the clock starts
        fanout.encode(["warm up"] * fanout.min_texts)
        fanout.stats = FanoutStats()
    started = time.perf_counter()
    report = rebuild_index(catalog, store, indexer, dense_size=dense.dimension, batch_size=128)
    seconds = time.perf_counter() - started
    figures = {
        "documents": report.documents,
        "chunks": report.chunks,
        "seconds": round(seconds, 1),
        "docs_per_s": round(report.documents / seconds, 1),
        "stage_seconds": {k: round(v, 1) for k, v in indexer.timings.items()},
    }
    if fanout is not None:
        figures["dask_workers"] = fanout.worker_count
        figures["texts_embedded_on_dask"] = fanout.stats.texts
        figures["documents_chunked_on_dask"] = fanout.stats.documents
        figures["dask_busy_seconds"] = {k: round(v, 1) for k, v in fanout.stats.busy.items()}
        figures["dask_wall_seconds"] = {k: round(v, 1) for k, v in fanout.stats.wall.items()}
    return figures, store


def compare(a: EdgeStore, b: EdgeStore) -> dict:
    pa = {p.id: p.payload for p in a.scan()}
    pb = {p.id: p.payload for p in b.scan()}
    ids = sorted(pa)
    worst = 0.0
    for start in range(0, len(ids), 500):
        va, vb = a.vectors(ids[start : start + 500]), b.vectors(ids[start : start + 500])
        for pid, vec in va.items():
            if pid in vb:
                worst = max(worst, float(np.max(np.abs(np.array(vec.dense) - np.array(vb[pid].dense)))))
    return {
        "same_point_ids": pa.keys() == pb.keys(),
        "same_payloads": pa == pb,
        "missing": len(pa.keys() - pb.keys()),
        "extra": len(pb.keys() - pa.keys()),
        "max_abs_vector_difference": worst,
    }


def bench_reindex(count: int, tmp: Path) -> dict:
    catalog = Catalog(f"sqlite:///{tmp / 'reindex.db'}")
    catalog.upsert_documents(corpus(count))
    single, single_store = reindex_run(catalog, tmp, "single", None)
    dense, _, chunker = _parts(tmp)
    fanout = Fanout(WorkerRecipe.of(chunker, dense), workers=2, processes=True)
    try:
        spread, spread_store = reindex_run(catalog, tmp, "dask", fanout)
    finally:
        fanout.close()
    catalog.close()
    check = compare(single_store, spread_store)
    return {
        "in_process": single,
        "dask_2_workers": spread,
        "ratio_to_single": round(spread["docs_per_s"] / single["docs_per_s"], 2),
        "check": check,
        "projection": projection(single, spread),
    }


def projection(single: dict, spread: dict) -> dict:
    """Docs/s with N machines like this one as Dask workers (Amdahl), from the measured stages: chunking and
    embedding (measured in-process) divide by N; the single writer, the catalog reads and the switch stay; the
    fan-out's own cost is what the 2-worker run took beyond the in-process one (both used the same 2 cores)."""
    docs = single["documents"]
    stages = single["stage_seconds"]
    parallel = (stages["chunk"] + stages["embed"]) / docs
    serial = (single["seconds"] - stages["chunk"] - stages["embed"]) / docs
    overhead = max(0.0, (spread["seconds"] - single["seconds"]) / docs)
    out = {f"{n}_machines_docs_per_s": round(1 / (serial + overhead + parallel / n), 1) for n in (1, 2, 4, 8, 16)}
    out["parallel_share_of_single_run"] = round(parallel * docs / single["seconds"], 3)
    out["limit_docs_per_s"] = round(1 / (serial + overhead), 1)
    return out


# -- backfill on Prefect workers -------------------------------------------------------------------------------


def _fresh_database() -> str:
    return fresh_pg_database(ADMIN_URL, "kup_bench")


def _drop(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset(url: str, data_dir: Path, server: FeedServer, count: int) -> None:
    """A catalog and index holding ``count`` indexed documents (each its own story) whose pages now say more: a
    backfill must re-read, re-chunk and re-embed every one of them."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    shutil.rmtree(data_dir / "index", ignore_errors=True)
    catalog = Catalog(url)
    docs = []
    for i in range(count):
        page = f"/news/article/{i}"
        server.set(page, article_html(f"Story number {i}", paragraphs(70_000 + i, count=3)))
        docs.append(
            Document(
                source="news",
                external_id=f"/news-{i}",
                # its own words: identical texts would be one syndicated story of ``count`` members, and the
                # backfill would spend its time splitting it up (the catalog's story bookkeeping), not re-indexing
                text=f"An early version of story {i}: {paragraphs(90_000 + i, count=1, words=24)[0]}",
                title=f"Story number {i}",
                url=server.url(page),
                published_at=PUBLISHED + timedelta(minutes=i),
            )
        )
    catalog.upsert_documents(docs)
    dense, sparse, chunker = _parts(data_dir)
    Indexer(catalog, EdgeStore(data_dir / "index" / "kup"), chunker, dense, sparse).run()
    assert catalog.count(status="indexed") == count
    catalog.close()


def _run_seconds(pool, run_ids: list[str]) -> tuple[float, float]:
    """From the first run's start to the last run's end, and how long the runs ran side by side."""
    runs = [pool.flow_run(r) for r in run_ids]
    starts = [datetime.fromisoformat(r["start_time"]) for r in runs]
    ends = [datetime.fromisoformat(r["end_time"]) for r in runs]
    return (max(ends) - min(starts)).total_seconds(), max(0.0, (min(ends) - max(starts)).total_seconds())


def _stages(pool, run_ids: list[str]) -> list[str]:
    import httpx

    lines = []
    for run_id in run_ids:
        found = httpx.post(
            f"{pool.api}/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}, timeout=30
        ).json()
        for artifact in found:
            data = artifact.get("data")
            match = re.search(r"Stages: ([^\n]+)", data) if isinstance(data, str) else None
            if match:
                lines.append(match.group(1))
    return lines


def _stage_seconds(lines: list[str]) -> dict[str, float]:
    """The runs' stage lines ("pull 3.2 s, chunk 1.0 s, embed 30.1 s, write 2.0 s (...)"), summed per stage."""
    out: dict[str, float] = {}
    for line in lines:
        for stage, seconds in re.findall(r"(\w+) ([\d.]+) s", line.split(" (", 1)[0]):
            out[stage] = round(out.get(stage, 0.0) + float(seconds), 1)
    return out


def backfill_projection(count: int, seconds: float, stages: dict[str, float]) -> dict:
    """Docs/s with the backfill split over N worker machines like this one, from the one-worker run: the pull,
    chunking, embedding and writing of each window divide by N (each worker its own cores; several writers need a
    Qdrant server, Qdrant Edge takes one at a time); what is left of the run (process start, imports, model load,
    catalog work) is paid by every worker at once, so it stays."""
    work = sum(stages.get(k, 0.0) for k in ("pull", "chunk", "embed", "write"))
    fixed = max(0.0, seconds - work)
    out = {f"{n}_machines_docs_per_s": round(count / (fixed + work / n), 1) for n in (1, 2, 4, 8)}
    out["split_share_of_single_run"] = round(work / seconds, 3)
    out["fixed_seconds_per_run"] = round(fixed, 1)
    return out


def _check_index(url: str, data_dir: Path, count: int) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT status, count(*) FROM documents GROUP BY status")).all())
        chunks = conn.execute(text("SELECT sum(chunk_count) FROM documents")).scalar_one()
    engine.dispose()
    store = EdgeStore(data_dir / "index" / "kup")
    points = [(p.id, p.payload) for p in store.scan()]
    keys = Counter((p["doc_id"], p["chunk_index"]) for _, p in points)
    return {
        "all_indexed": statuses == {"indexed": count},
        "points": len(points),
        "duplicates": sum(n - 1 for n in keys.values()),
        "points_match_catalog": len(points) == chunks,
        "ids": sorted(pid for pid, _ in points),
    }


def bench_backfill(count: int, tmp: Path) -> dict:
    database = _fresh_database()
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        with FeedServer() as server:
            pipeline = Pipeline(server, tmp / "data", tmp / "sources.yaml")
            pipeline.write_sources({"news": "/news"})
            settings = {**pipeline.env(), "KUP_CATALOG_URL": url, "KUP_PER_HOST_CONCURRENCY": "8"}
            until = PUBLISHED + timedelta(minutes=count)
            half = PUBLISHED + timedelta(minutes=count // 2)

            def window(since, end):
                return {"source": "news", "since": since.isoformat(), "until": end.isoformat()}

            with start_workers(tmp / "prefect", settings, count=2, limit=1) as pool:  # two runs: two workers
                _reset(url, tmp / "data", server, count)
                warm = pool.run("backfill/backfill", window(PUBLISHED - timedelta(days=1), PUBLISHED))
                pool.wait([warm])  # the ONNX export cached, imports warm in the page cache
                _reset(url, tmp / "data", server, count)
                one = [pool.run("backfill/backfill", window(PUBLISHED, until))]
                states = pool.wait(one, timeout=1800)
                single = {"seconds": _run_seconds(pool, one)[0], "states": sorted({s for s, _ in states.values()})}
                single["stages"] = _stages(pool, one)
                single_check = _check_index(url, tmp / "data", count)

                _reset(url, tmp / "data", server, count)
                two = [pool.run("backfill/backfill", window(PUBLISHED, half))]
                two.append(pool.run("backfill/backfill", window(half, until)))
                states = pool.wait(two, timeout=1800)
                seconds, side_by_side = _run_seconds(pool, two)
                split = {"seconds": seconds, "side_by_side_seconds": round(side_by_side, 1)}
                split["states"] = sorted({s for s, _ in states.values()})
                split["stages"] = _stages(pool, two)
                split_check = _check_index(url, tmp / "data", count)
    finally:
        _drop(database)
    for figures in (single, split):
        figures["seconds"] = round(figures["seconds"], 1)
        figures["docs_per_s"] = round(count / figures["seconds"], 2)
    same = single_check.pop("ids") == split_check.pop("ids")
    for figures in (single, split):
        figures["stage_seconds"] = _stage_seconds(figures["stages"])
    return {
        "documents": count,
        "one_worker": {**single, "check": single_check},
        "two_workers": {**split, "check": split_check},
        "ratio_to_single": round(split["docs_per_s"] / single["docs_per_s"], 2),
        "same_point_ids": same,
        "projection": backfill_projection(count, single["seconds"], single["stage_seconds"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reindex-docs", type=int, default=5000)
    parser.add_argument("--backfill-docs", type=int, default=600)
    parser.add_argument("--skip-backfill", action="store_true")
    parser.add_argument("--skip-reindex", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kup-scale-") as tmp:
        reindex = None if args.skip_reindex else bench_reindex(args.reindex_docs, Path(tmp) / "reindex")
        print(json.dumps({"reindex": reindex}), file=sys.stderr, flush=True)  # kept if the backfill part fails
        backfill = None
        if not args.skip_backfill:
            try:
                backfill = bench_backfill(args.backfill_docs, Path(tmp) / "backfill")
            except Exception as exc:  # noqa: BLE001 - reported in the JSON line, with the reindex figures
                backfill = {"error": f"{type(exc).__name__}: {str(exc)[-2000:]}"}
    emit(
        "scale",
        {
            "reindex": reindex,
            "backfill": backfill,
            "peak_rss_mb": peak_rss_mb(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "note": "2 cores: the Dask and two-worker runs share the cores the single process used; see projection",
        },
    )


if __name__ == "__main__":
    main()

"""(b) A refresh where nothing changed: 20 feeds answering 304, with 1k and 10k documents in the catalog.

Measures the pipeline's own work (pull 20 sources 4 at a time as the flow does, then look for
pending work) in this process, median of several runs; and, separately, the same refresh as a
Prefect flow run against a running Prefect server (the orchestration overhead on top).
Targets: under 1 s, and the 10k time within 1.2x of the 1k time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from bench._common import emit

from connectors import Document, Fetcher, load_sources
from fixtures import FeedServer, Item, rss
from indexing import Catalog, Chunker, DenseEncoder, EdgeStore, Indexer, SparseEncoder, ingest_source, now_utc

FEEDS = 20


def populate(catalog: Catalog, count: int) -> None:
    docs = [
        Document(
            source=f"feed-{i % FEEDS}",
            external_id=f"doc-{i}",
            text=f"text {i} " * 50,
            title=f"Doc {i}",
            url=f"https://example.com/{i}",
            published_at=datetime(2026, 11, 1, tzinfo=UTC),
        )
        for i in range(count)
    ]
    now = now_utc()
    catalog.upsert_documents(docs, now)
    # Indexed, as an indexer run leaves them (through the catalog's own lease, with no vectors written).
    claimed = catalog.claim_pending("bench:populate", count, now)
    catalog.mark_indexed("bench:populate", [(d.id, d.version, 1) for d in claimed], now)
    assert catalog.count(status="indexed") == count


def indexer_for(catalog: Catalog, data_dir: Path) -> Indexer:
    """The indexer a refresh builds; its models load on first use, so a run with nothing pending loads none."""
    dense = DenseEncoder()
    return Indexer(catalog, EdgeStore(data_dir / "index" / "kup"), Chunker(dense.tokenize), dense, SparseEncoder())


def pipeline_once(sources, catalog: Catalog, indexer: Indexer) -> float:
    from flows.runtime import Runtime  # noqa: F401 - same imports as a flow run, loaded before timing

    started = time.perf_counter()
    with Fetcher() as fetcher, ThreadPoolExecutor(max_workers=4) as pool:
        reports = list(pool.map(lambda s: ingest_source(s, catalog, fetcher), sources))
    report = indexer.run()  # nothing is pending: it claims nothing and never loads a model
    elapsed = time.perf_counter() - started
    assert all(r.not_modified for r in reports), [r.error for r in reports]
    assert report.documents == 0 and indexer.dense.calls == 0
    return elapsed


def flow_once(env: dict[str, str]) -> float:
    from flows.refresh import refresh

    os.environ.update(env)
    started = time.perf_counter()
    summary = refresh()
    elapsed = time.perf_counter() - started
    assert all(s["not_modified"] for s in summary["sources"])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--flow-runs", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, object] = {"feeds": FEEDS}
    with FeedServer() as server, tempfile.TemporaryDirectory() as tmp:
        lines = ["sources:"]
        for i in range(FEEDS):
            path = f"/feed-{i}"
            server.set(
                path,
                rss([Item(f"Item {i}", guid=f"g{i}", summary="s")]),
                etag=f'"{i}"',
                content_type="application/rss+xml",
            )
            lines += [f"  - name: feed-{i}", f"    url: {server.url(path)}", "    allow_private_addresses: true"]
        sources_file = Path(tmp) / "sources.yaml"
        sources_file.write_text("\n".join(lines) + "\n")
        sources = load_sources(sources_file)
        times = {}
        for size in (int(s) for s in args.sizes.split(",")):
            data_dir = Path(tmp) / f"data-{size}"
            catalog = Catalog(f"sqlite:///{data_dir / 'catalog.db'}")
            populate(catalog, size)
            for s in sources:  # the feeds' validators, as a previous refresh left them
                catalog.record_source_success(s.name, "feed", {"etag": f'"{s.name.split("-")[1]}"'})
            indexer = indexer_for(catalog, data_dir)
            pipeline_once(sources, catalog, indexer)  # warm-up
            times[size] = statistics.median(pipeline_once(sources, catalog, indexer) for _ in range(args.repeats))
            figures[f"pipeline_seconds_{size}"] = round(times[size], 4)
            catalog.close()
            if args.flow_runs:
                from prefect.testing.utilities import prefect_test_harness

                env = {"KUP_DATA_DIR": str(data_dir), "KUP_SOURCES_FILE": str(sources_file)}
                with prefect_test_harness(server_startup_timeout=90):
                    flow_once(env)  # warm-up
                    runs = [flow_once(env) for _ in range(args.flow_runs)]
                figures[f"flow_run_seconds_{size}"] = round(statistics.median(runs), 3)
        sizes = sorted(times)
        figures["ratio_largest_to_smallest"] = round(times[sizes[-1]] / times[sizes[0]], 3)
        figures["targets"] = {"pipeline_seconds": "< 1", "ratio": "<= 1.2"}
    emit("noop_refresh", figures)


if __name__ == "__main__":
    main()

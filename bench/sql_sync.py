"""Initial sync of an SQL table from PostgreSQL into the catalog: rows/s and peak memory, 100k vs 300k rows.

Each size runs in its own process (so peak RSS is that size's own), against a table made with
generate_series on the real PostgreSQL server. Embedding is excluded from the sync figure and
reported apart (MiniLM on a sample of the same rows). Target: >= 5,000 rows/s, and peak memory
flat from 100k to 300k rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench._common import emit, peak_rss_mb

from connectors.sources import SqlSource
from indexing import Catalog, DenseEncoder, ingest_sql

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def make_table(rows: int) -> str:
    from sqlalchemy import create_engine, text

    name = f"kup_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE tickets (id bigint PRIMARY KEY, title text, body text, team text, updated_at timestamp)")
        )
        conn.execute(
            text(
                "INSERT INTO tickets SELECT g, 'Ticket ' || g, "
                "repeat('customer reports ' || (g % 97) || ' issue with the invoice export ', 12), "
                "'team' || (g % 7), timestamp '2026-01-01' + (g / 3) * interval '1 second' "
                "FROM generate_series(1, :n) g"
            ),
            {"n": rows},
        )
        conn.execute(text("CREATE INDEX ON tickets (updated_at, id)"))
    engine.dispose()
    return name


def drop(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def run_one(rows: int) -> dict:
    name = make_table(rows)
    try:
        source = SqlSource(
            type="sql",
            name="tickets",
            url_env="BENCH_URL",
            table="tickets",
            id_columns=["id"],
            text="{title}\n\n{body}",
            title="{title}",
            metadata_columns=["team"],
            updated_column="updated_at",
            reconcile_minutes=None,
        )
        env = {"BENCH_URL": ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"}
        with tempfile.TemporaryDirectory() as tmp:
            catalog = Catalog(f"sqlite:///{Path(tmp) / 'catalog.db'}")
            started = time.perf_counter()
            report = ingest_sql(source, catalog, env=env)
            seconds = time.perf_counter() - started
            assert report.error is None and report.new == rows, report
            assert catalog.count(source="tickets") == rows
            catalog.close()
    finally:
        drop(name)
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "peak_rss_mb": peak_rss_mb(),
    }


def embedding_sample(count: int = 256) -> float:
    body = "customer reports 5 issue with the invoice export " * 12
    texts = [f"Ticket {i}\n\nTicket {i}\n\n{body}" for i in range(count)]
    encoder = DenseEncoder()
    encoder.encode(texts[:8])
    started = time.perf_counter()
    encoder.encode(texts)
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,300000")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        child = subprocess.run([sys.executable, __file__, "--one", str(size)], capture_output=True, text=True)
        if child.returncode != 0:
            raise SystemExit(child.stderr[-3000:])
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    emit(
        "sql_sync",
        {
            "runs": results,
            "min_rows_per_s": min(r["rows_per_s"] for r in results),
            "rss_growth_ratio": round(results[-1]["peak_rss_mb"] / results[0]["peak_rss_mb"], 3),
            "embedding_rows_per_s_sample": round(embedding_sample(), 1),
            "targets": {"rows_per_s": ">= 5000", "memory": "flat from 100k to 300k"},
        },
    )


if __name__ == "__main__":
    main()

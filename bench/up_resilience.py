"""`kup up` alone for N minutes (default 30), as a user leaves it running: is a database listener always connected,
how fresh are database events, and does the refresh keep going when its process is killed?

Set-up: a feed on a local server and a PostgreSQL table source with ``events: notify`` (its trigger installed), and
`kup up` serving every deployment (the listen deployment in its 10-minute slots, handing over between them). While
it runs:
- every 0.5 s, the number of kup listener sessions in ``pg_stat_activity`` (share of samples with at least one:
  target >= 0.99; seconds with two or more: the hand-over overlap);
- every 15 s a row is inserted; its time to searchable (indexed in the catalog) is the event freshness;
- at ``--kills`` random moments a running refresh's process gets SIGKILL; afterwards, refresh runs cancelled for the
  deployment's concurrency slot more than two minutes after a kill are counted (target 0);
- every 30 s `kup status` is run: its first line and exit code, tallied (it must say "stopped" only when refreshes
  did stop).
One JSON line. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench._common import ROOT, emit

from connectors import pg_events
from connectors.sources import SqlSource
from fixtures import FeedServer, Pipeline, start_kup_up

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
STATUS_EVERY, INSERT_EVERY, SAMPLE_EVERY = 30.0, 15.0, 0.5


def _connect():
    import psycopg

    return psycopg.connect(PG_DSN, autocommit=True)


class Table:
    """A notify table on the real PostgreSQL, dropped at the end."""

    def __init__(self) -> None:
        self.name = f"kup_up_{uuid.uuid4().hex[:10]}"
        with _connect() as conn:
            conn.execute(
                f"CREATE TABLE {self.name} (id int PRIMARY KEY, body text, updated_at timestamptz DEFAULT now())"
            )
        self.source = SqlSource.model_validate(
            {"type": "sql", "name": "events", "url_env": "KUP_BENCH_PG_URL", "table": self.name}
            | {"id_columns": ["id"], "text": "{body}", "updated_column": "updated_at", "events": "notify"}
        )
        pg_events.apply(self.source, pg_events.install_sql(self.source), PG_DSN)
        self.inserted: dict[int, float] = {}

    def insert(self, i: int) -> None:
        with _connect() as conn:
            conn.execute(f"INSERT INTO {self.name} (id, body) VALUES (%s, %s)", (i, f"bench event {i} {uuid.uuid4()}"))
        self.inserted[i] = time.time()

    def drop(self) -> None:
        with _connect() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {self.name} CASCADE")


def listeners() -> int:
    with _connect() as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = 'test'",
            (pg_events.APP_NAME,),
        ).fetchone()[0]


def indexed_at(catalog: Path) -> dict[int, float]:
    """Event rows indexed so far: id -> when (epoch seconds)."""
    if not catalog.exists():
        return {}
    with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=10) as db:
        rows = db.execute(
            "SELECT external_id, indexed_at FROM documents WHERE source = 'events' AND indexed_at IS NOT NULL"
        ).fetchall()
    out = {}
    for external_id, when in rows:
        key = external_id.rsplit(":", 1)[-1].strip("[]() '\"")
        if key.isdigit():
            out[int(key)] = datetime.fromisoformat(str(when)).replace(tzinfo=UTC).timestamp()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="kup-up-resilience-"))
    table = Table()
    stop = threading.Event()
    samples: list[tuple[float, int]] = []
    statuses: list[tuple[float, int, str]] = []
    kills: list[float] = []
    try:
        with FeedServer() as server:
            pipeline = Pipeline(server, work / "data", work / "sources.yaml")
            pipeline.publish("/world", 3)
            pipeline.sources_file.write_text(
                "sources:\n"
                f"  - name: world\n    url: {server.url('/world')}\n    allow_private_addresses: true\n"
                f"  - name: events\n    type: sql\n    url_env: KUP_BENCH_PG_URL\n    table: {table.name}\n"
                '    id_columns: [id]\n    text: "{body}"\n    updated_column: updated_at\n    events: notify\n'
            )
            settings = {**pipeline.env(), "KUP_BENCH_PG_URL": PG_URL}
            up = start_kup_up(settings, serving={"refresh", "listen"}, timeout=300)
            began = time.monotonic()
            end = began + args.minutes * 60

            def sample() -> None:
                while not stop.wait(SAMPLE_EVERY):
                    with contextlib.suppress(Exception):  # a sample lost is a sample lost
                        samples.append((time.monotonic(), listeners()))

            def insert() -> None:
                i = 0
                while not stop.wait(INSERT_EVERY):
                    i += 1
                    table.insert(i)

            def status() -> None:
                while not stop.wait(STATUS_EVERY):
                    done = subprocess.run(
                        [sys.executable, "-m", "cli.main", "status"],
                        env=up.env,
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )
                    statuses.append(
                        (time.monotonic(), done.returncode, done.stdout.splitlines()[0] if done.stdout else "")
                    )

            threads = [threading.Thread(target=f, daemon=True) for f in (sample, insert, status)]
            for thread in threads:
                thread.start()
            kill_at = sorted(began + rng.uniform(120, max(121, args.minutes * 60 - 180)) for _ in range(args.kills))
            for moment in kill_at:
                while time.monotonic() < moment:
                    time.sleep(1)
                while time.monotonic() < end:  # the next refresh that runs
                    running = [r for r in up.flow_runs("refresh") if r["state_type"] == "RUNNING"]
                    pid = up.run_process(running[0]["id"]) if running else None
                    if pid:
                        os.kill(pid, signal.SIGKILL)
                        kills.append(time.monotonic())
                        break
                    time.sleep(0.5)
            while time.monotonic() < end:
                time.sleep(1)
            stop.set()
            runs = {name: up.flow_runs(name) for name in ("refresh", "listen")}
            catalog_path = work / "data" / "catalog.db"
            found = indexed_at(catalog_path)
            output = up.stop()
    finally:
        stop.set()
        table.drop()

    connected = [n for t, n in samples if t >= began + 90]  # after the first listen run had time to connect
    lags = [found[i] - t for i, t in table.inserted.items() if i in found]
    cancelled = [
        r
        for r in runs["refresh"]
        if r["state_type"] == "CANCELLED" and "concurrency limit" in ((r.get("state") or {}).get("message") or "")
    ]
    wall_now, mono_now = time.time(), time.monotonic()

    def mono(iso: str) -> float:
        return mono_now - (wall_now - datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())

    late_cancels = [r for r in cancelled if any(mono(r["expected_start_time"]) > k + 120 for k in kills)]
    emit(
        "up_resilience",
        {
            "minutes": args.minutes,
            "listener_connected_share": round(float(np.mean([n >= 1 for n in connected])), 4) if connected else None,
            "listener_overlap_seconds": round(sum(SAMPLE_EVERY for n in connected if n >= 2), 1),
            "listener_samples": len(connected),
            "listen_runs": dict(Counter(r["state_type"] for r in runs["listen"])),
            "events_inserted": len(table.inserted),
            "events_searchable": len(lags),
            "event_freshness_s": {
                "p50": round(float(np.percentile(lags, 50)), 2) if lags else None,
                "p95": round(float(np.percentile(lags, 95)), 2) if lags else None,
                "max": round(max(lags), 2) if lags else None,
            },
            "refresh_processes_killed": len(kills),
            "refresh_runs": dict(Counter(r["state_type"] for r in runs["refresh"])),
            "cancelled_for_slot": len(cancelled),
            "cancelled_for_slot_over_2min_after_a_kill": len(late_cancels),
            "status_first_words": dict(
                Counter(line.split(":")[1].strip() if ":" in line else line for _, _, line in statuses)
            ),
            "status_exit_codes": dict(Counter(rc for _, rc, _ in statuses)),
            "tracebacks_in_kup_up_output": output.count("Traceback"),
        },
    )


if __name__ == "__main__":
    main()

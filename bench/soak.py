"""Keep working under faults: the real every-minute refresh (`kup up`) for N minutes against failing sites and a DB.

Several feeds, each on its own local fault site (fixtures.faultsite: 500, 429 with sane and absurd
Retry-After, resets, dripped headers, nested gzip bombs, malformed XML, entity bombs, at a seeded
rate per request), and an SQL source on the real PostgreSQL whose kup connections are cut: whole
outages (every kup backend terminated as soon as it appears) and single queries cut mid-flight
(the source reads a view that sleeps 0.5 s per query, so a cut lands inside it). Only backends
carrying this run's application_name are ever terminated. Items are published at random moments
throughout; a fault spoils an attempt, never the item.

Afterwards faults stop, a grace period of a few runs lets the backlog drain, `kup up` stops, and
the index itself is asked for every published item. Reported: runs (by state), items published
and searchable (target: 0 lost), publish-to-indexed lag while faults were active (target p95 under
120 s), worker RSS sampled every few seconds (target under 1.5 GB and flat: first- vs last-quarter
peak) and tracebacks in the `kup up` output. One JSON line; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sqlite3
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from bench._common import emit

from connectors import document_id
from fixtures import paragraphs, start_kup_up
from fixtures.faultsite import FaultSite

PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
SQL_SOURCE = "tickets"
TARGET_LAG_P95_S = 120
TARGET_RSS_MB = 1536


class FaultyDatabase:
    """A table (read through a slow view) on the real PostgreSQL, and a thread that cuts kup's connections to it."""

    def __init__(self, rng: random.Random, *, outage_every: float = 120.0, cut_share: float = 0.3) -> None:
        import psycopg

        self.table = f"kup_soak_{uuid.uuid4().hex[:10]}"
        self.view = f"{self.table}_v"
        self.app = f"{self.table}_src"  # kup's connections, and only they, carry this application_name
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?application_name={self.app}"
        self.rng = rng
        self.outage_every = outage_every
        self.cut_share = cut_share
        self.kills: Counter[str] = Counter()
        self.outages: list[tuple[float, float]] = []
        self.active = True
        self._stop = threading.Event()
        self._writer = psycopg.connect(PG_DSN + " application_name=kup_soak_writer", autocommit=True)
        self._killer = psycopg.connect(PG_DSN + " application_name=kup_soak_killer", autocommit=True)
        self._writer.execute(
            f"CREATE TABLE {self.table} (id bigint PRIMARY KEY, title text NOT NULL, body text NOT NULL, "
            "updated_at timestamptz NOT NULL)"
        )
        self._writer.execute(f"CREATE VIEW {self.view} AS SELECT t.* FROM {self.table} t CROSS JOIN pg_sleep(0.5)")
        self._thread = threading.Thread(target=self._cut_loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def insert(self, n: int, title: str, body: str) -> float:
        self._writer.execute(
            f"INSERT INTO {self.table} (id, title, body, updated_at) VALUES (%s, %s, %s, clock_timestamp())",
            (n, title, body),
        )
        return time.time()

    def _backends(self) -> list[tuple[int, str]]:
        return self._killer.execute(
            "SELECT pid, state FROM pg_stat_activity WHERE datname = 'test' AND application_name = %s "
            "AND pid <> pg_backend_pid()",
            (self.app,),
        ).fetchall()

    def _terminate(self, pid: int, why: str) -> None:
        # Re-checked by application_name in the same statement: never another session's backend.
        done = self._killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s AND application_name = %s",
            (pid, self.app),
        ).fetchone()
        if done and done[0]:
            self.kills[why] += 1

    def _cut_loop(self) -> None:
        decided: set[int] = set()
        next_outage = time.monotonic() + self.rng.expovariate(1 / self.outage_every)
        outage_until = 0.0
        while not self._stop.wait(0.1):
            now = time.monotonic()
            if not self.active:
                continue
            if now >= next_outage:
                outage_until = now + self.rng.uniform(15, 45)
                self.outages.append((time.time(), outage_until - now))
                next_outage = outage_until + self.rng.expovariate(1 / self.outage_every)
            for pid, state in self._backends():
                if now < outage_until:
                    self._terminate(pid, "outage")
                elif state == "active" and pid not in decided:
                    decided.add(pid)
                    if self.rng.random() < self.cut_share:
                        self._terminate(pid, "mid_query")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._writer.execute(f"DROP VIEW IF EXISTS {self.view}")
        self._writer.execute(f"DROP TABLE IF EXISTS {self.table}")
        self._writer.close()
        self._killer.close()


def indexed_times(db: Path) -> dict[str, float]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("SELECT id, indexed_at FROM documents WHERE indexed_at IS NOT NULL").fetchall()
    except sqlite3.OperationalError:
        return {}
    return {doc_id: datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp() for doc_id, at in rows}


# -- memory of the worker processes ----------------------------------------------------------------


def _processes(root: int) -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of ``root`` and its descendants; psutil when installed, else /proc."""
    try:
        import psutil

        top = psutil.Process(root)
        out = []
        for p in [top, *top.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                out.append((p.pid, p.ppid(), " ".join(p.cmdline())))
        return out
    except ImportError:
        parents: dict[int, int] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        tree, frontier = [root], [root]
        while frontier:
            frontier = [pid for pid, parent in parents.items() if parent in frontier]
            tree += frontier
        out = []
        for pid in tree:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                out.append((pid, parents.get(pid, 0), cmd))
            except OSError:
                pass
        return out


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class MemorySampler:
    """Every few seconds: total and largest RSS of `kup up` and its flow-run processes, the Prefect server apart."""

    def __init__(self, root: int, every: float = 3.0) -> None:
        self.root = root
        self.every = every
        self.samples: list[tuple[float, float, float, float]] = []  # (time, workers total, largest, server)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            procs = _processes(self.root)
            server_roots = {pid for pid, _, cmd in procs if "prefect" in cmd and "server start" in cmd}
            server = set(server_roots)
            for _ in range(4):  # the server's own children (a few levels at most)
                server |= {pid for pid, parent, _ in procs if parent in server}
            workers = [_rss_mb(pid) for pid, _, _ in procs if pid not in server]
            self.samples.append(
                (time.time(), sum(workers), max(workers, default=0.0), sum(_rss_mb(pid) for pid in server))
            )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def figures(self, start: float, end: float) -> dict:
        quarter = (end - start) / 4
        during = [s for s in self.samples if start <= s[0] <= end]
        first = [s[1] for s in during if s[0] <= start + quarter]
        last = [s[1] for s in during if s[0] >= end - quarter]
        return {
            "rss_samples": len(self.samples),
            "worker_rss_peak_mb": round(max((s[1] for s in self.samples), default=0.0), 1),
            "worker_rss_first_quarter_peak_mb": round(max(first, default=0.0), 1),
            "worker_rss_last_quarter_peak_mb": round(max(last, default=0.0), 1),
            "largest_worker_process_peak_mb": round(max((s[2] for s in self.samples), default=0.0), 1),
            "prefect_server_rss_peak_mb": round(max((s[3] for s in self.samples), default=0.0), 1),
            "target_worker_rss_mb": TARGET_RSS_MB,
        }


# -- what the run left behind ------------------------------------------------------------------------


def refresh_runs(api: str) -> dict:
    runs = httpx.post(
        f"{api}/flow_runs/filter",
        json={"deployments": {"name": {"any_": ["refresh"]}}, "limit": 200},
        timeout=30,
    ).json()
    states = Counter((r.get("state") or {}).get("type", "?") for r in runs)
    names = Counter(
        (r.get("state") or {}).get("name", "?")
        for r in runs
        if (r.get("state") or {}).get("type") not in ("SCHEDULED", "PENDING")  # the schedule's future runs
    )
    failed = [r for r in runs if (r.get("state") or {}).get("type") in ("FAILED", "CRASHED")]
    return {
        "runs": sum(states[s] for s in ("COMPLETED", "FAILED", "CRASHED")),
        "runs_failed": states["FAILED"] + states["CRASHED"],
        "runs_cancelled": states["CANCELLED"],  # a scheduled run that found the previous one still going
        "run_states": dict(sorted(names.items())),
        "failed_run_messages": sorted({(r["state"].get("message") or "")[:300] for r in failed})[:5],
    }


def failure_records(db: Path) -> dict:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT source, stage, reason, attempts FROM failures").fetchall()
        state = conn.execute(
            "SELECT source, consecutive_failures, next_attempt_at, last_error FROM source_state"
        ).fetchall()
    kinds = Counter()
    for _, stage, reason, attempts in rows:
        kinds[f"{stage}:{_reason_kind(reason)}"] += attempts
    return {
        "recorded_failures": dict(sorted(kinds.items())),
        "sources_at_end": {
            s: {"consecutive_failures": n, "next_attempt_at": at, "last_error": (err or "")[:200] or None}
            for s, n, at, err in state
        },
        "_reasons": [r[2] for r in rows] + [s[3] or "" for s in state],
    }


_REASON_KINDS = [
    ("HTTP 500", "http_500"),
    ("HTTP 429", "http_429"),
    ("stacked content encodings", "gzip_bomb"),
    ("longer than", "deadline"),
    ("timed out", "timeout"),
    ("reset", "reset"),
    ("could not fetch", "connection"),
    ("entit", "entities"),
    ("terminat", "pg_terminated"),
    ("cannot", "sql"),
]


def _reason_kind(reason: str) -> str:
    low = reason.lower()
    for needle, kind in _REASON_KINDS:
        if needle.lower() in low:
            return kind
    return "other"


def tracebacks(log: str, reasons: list[str]) -> dict:
    """Tracebacks in the `kup up` output: how many, their exception lines, and whether a recorded reason names them."""
    lines = log.splitlines()
    exceptions = []
    first: list[str] = []
    for i, line in enumerate(lines):
        if "Traceback (most recent call last)" not in line:
            continue
        j = i + 1
        while j < len(lines) and (lines[j].startswith((" ", "\t")) or not lines[j].strip()):
            j += 1
        exception = lines[j].strip() if j < len(lines) else "?"
        exceptions.append(exception)
        if not first:
            first = [lines[k][:200] for k in range(max(0, i - 2), min(len(lines), j + 1))][-12:]
    messages = Counter(exceptions)

    def recorded(exception: str) -> bool:
        message = exception.partition(": ")[2].strip()
        return bool(message) and any(message[:80] in r for r in reasons)

    return {
        "tracebacks": len(exceptions),
        "tracebacks_outside_recorded_reasons": sum(n for e, n in messages.items() if not recorded(e)),
        "traceback_exceptions": [f"{n}x {e[:200]}" for e, n in messages.most_common(8)],
        "first_traceback": first,
    }


def searchable(index: Path, doc_ids: list[str]) -> set[str]:
    from indexing import EdgeStore

    if not index.exists():
        return set()
    return {doc for doc, points in EdgeStore(index).points_of(doc_ids).items() if points}


# -- the run ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0, help="minutes of faults and publishing")
    parser.add_argument("--feeds", type=int, default=4)
    parser.add_argument("--mean-gap", type=float, default=15.0, help="mean seconds between publications")
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of HTTP answers that are faults")
    parser.add_argument("--grace", type=float, default=180.0, help="seconds (a few runs) for the backlog to drain")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    sites = [
        FaultSite(host=f"127.0.0.{i + 2}", seed=args.seed + i, fault_rate=args.fault_rate, title=f"Wire {i}")
        for i in range(args.feeds)
    ]
    for site in sites:
        site.start()
    database = FaultyDatabase(random.Random(args.seed * 7919))
    published: dict[str, tuple[str, float]] = {}  # doc id -> (source, publish time)
    first_indexed: dict[str, float] = {}
    tmp = tempfile.TemporaryDirectory(prefix="kup-soak-")
    data = Path(tmp.name) / "data"
    catalog_db = data / "catalog.db"
    up = sampler = None
    try:
        sources = Path(tmp.name) / "sources.yaml"
        lines = ["sources:"]
        for i, site in enumerate(sites):
            lines += [f"  - name: wire-{i}", f"    url: {site.feed_url}", "    allow_private_addresses: true"]
        lines += [
            f"  - name: {SQL_SOURCE}",
            "    type: sql",
            "    url_env: KUP_SOAK_PG_URL",
            f"    table: {database.view}",
            "    id_columns: [id]",
            '    text: "{title}\\n\\n{body}"',
            '    title: "{title}"',
            "    updated_column: updated_at",
        ]
        sources.write_text("\n".join(lines) + "\n")
        up = start_kup_up(
            {"KUP_DATA_DIR": str(data), "KUP_SOURCES_FILE": str(sources), "KUP_SOAK_PG_URL": database.url}
        )
        sampler = MemorySampler(up.process.pid)
        database.start()
        stop_polling = threading.Event()

        def poll() -> None:
            while not stop_polling.wait(3):
                for doc, at in indexed_times(catalog_db).items():
                    first_indexed.setdefault(doc, at)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()

        start = time.time()
        end = start + args.minutes * 60
        n = 0
        while True:
            time.sleep(max(0.0, min(rng.expovariate(1 / args.mean_gap), end - time.time())))
            if time.time() >= end:
                break
            target = rng.randrange(args.feeds + 1)
            title = f"Soak story {n}"
            text = paragraphs(9000 + n, count=5)
            if target == args.feeds:
                at = database.insert(n, title, "\n\n".join(text))
                published[document_id(SQL_SOURCE, str(n))] = (SQL_SOURCE, at)
            else:
                guid = f"soak-{target}-{n}"
                sites[target].publish(guid, title, text, summary=text[0])
                published[document_id(f"wire-{target}", guid)] = (f"wire-{target}", time.time())
            n += 1

        for site in sites:  # grace: the backlog drains without faults
            site.faults = False
        database.active = False
        deadline = time.time() + args.grace
        while time.time() < deadline and not all(d in first_indexed for d in published):
            time.sleep(3)
        stop_polling.set()
        poller.join(timeout=10)
        runs = refresh_runs(up.api)
        sampler.stop()
        memory = sampler.figures(start, end)
        log = up.stop()
        up = None
    finally:
        if sampler is not None:
            sampler.stop()
        if up is not None:
            up.stop()
        for site in sites:
            site.stop()
        database.close()

    found = searchable(data / "index" / "kup", list(published))
    records = failure_records(catalog_db)
    lost = [d for d in published if d not in found]
    lost_by_source = Counter(published[d][0] for d in lost)
    lags = [first_indexed[d] - t for d, (_, t) in published.items() if d in first_indexed]
    p50, p95 = np.percentile(lags, [50, 95]) if lags else (None, None)
    faults = Counter()
    for site in sites:
        for (kind, mode), count in site.served.items():
            faults[f"{kind}:{mode}"] += count
    tmp.cleanup()
    emit(
        "soak",
        {
            "minutes": args.minutes,
            "seed": args.seed,
            "fault_rate": args.fault_rate,
            "feeds": args.feeds,
            **runs,
            "items_published": len(published),
            "items_published_by_source": dict(sorted(Counter(s for s, _ in published.values()).items())),
            "items_searchable": len(found),
            "items_lost": len(lost),
            "lost_by_source": dict(lost_by_source),
            "lag_p50_s": round(float(p50), 1) if lags else None,
            "lag_p95_s": round(float(p95), 1) if lags else None,
            "lag_max_s": round(max(lags), 1) if lags else None,
            "target_lag_p95_s": TARGET_LAG_P95_S,
            **memory,
            "faults_served": dict(sorted(faults.items())),
            "pg_outages": len(database.outages),
            "pg_backends_terminated": dict(database.kills),
            **{k: v for k, v in records.items() if not k.startswith("_")},
            **tracebacks(log, records["_reasons"]),
        },
    )


if __name__ == "__main__":
    main()

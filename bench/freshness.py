"""Freshness as users run it: publish-to-searchable lag for three paths in one run of `kup up`.

- **minute**: a feed pulled by the every-minute refresh (each run its own process). Target p95 <= 75 s.
- **hot**: a feed with ``poll_seconds: 5`` watched by `kup watch` (one long-lived process, models loaded).
  Target p95 < 20 s.
- **sql**: a PostgreSQL table with ``events: notify``: its trigger installed with `kup events install --yes` and
  `kup events listen` refreshing the source itself with its models loaded (``--sql-refresh here``, the default),
  or turning NOTIFYs into Prefect events that the refresh-on-event deployment's trigger runs as a refresh of that
  one source in a new flow-run process (``--sql-refresh deployment``). Measured from the row's commit. Target
  p95 < 5 s (issue 32; 10 s before). ``sql_hops`` says where the seconds go, hop by hop.

Each path has its own publisher (exponential gaps) for ``--minutes``. An item counts as searchable when its points
are written (the catalog's indexed_at), so measuring does not disturb the runs. Prefect's cost per refresh run is
reported too (wall time minus the pipeline's own seconds, and schedule-to-start delay).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from bench._common import ROOT, emit

from connectors import document_id
from fixtures import FeedServer, Item, article_html, paragraphs, rss, start_kup_up

PG_ADMIN = os.environ.get("KUP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TARGETS = {"minute": 75, "hot": 20, "sql": 5}


class FeedPublisher:
    def __init__(self, server: FeedServer, path: str, source: str) -> None:
        self.server, self.path, self.source = server, path, source
        self.items: list[Item] = []
        self.published: dict[str, float] = {}  # document id -> wall-clock publish time
        self.lock = threading.Lock()
        self._serve()

    def _serve(self) -> None:
        with self.lock:
            body = rss(list(reversed(self.items)))
            # an ETag per version, as real feeds send: an unchanged feed costs the watcher one 304
            self.server.set(self.path, body, content_type="application/rss+xml", etag=f'"{len(self.items)}"')

    def publish(self, n: int) -> None:
        guid = f"{self.source}-{n}"
        page = f"{self.path}/article/{n}"
        text = paragraphs(zlib.crc32(guid.encode()) % 100_000, count=6)
        self.server.set(page, article_html(f"{self.source} story {n}", text))
        now = datetime.now(UTC)
        with self.lock:
            self.items.append(Item(f"{self.source} story {n}", link=self.server.url(page), guid=guid, published=now))
            self.published[document_id(self.source, guid)] = now.timestamp()
        self._serve()


class RowPublisher:
    def __init__(self, url: str, source: str) -> None:
        from sqlalchemy import create_engine, text

        self.engine = create_engine(url)
        self.source = source
        self.published: dict[str, float] = {}
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE notes (id serial PRIMARY KEY, title text NOT NULL, body text NOT NULL, "
                    "updated_at timestamptz NOT NULL DEFAULT clock_timestamp())"
                )
            )

    def publish(self, n: int) -> None:
        from sqlalchemy import text

        body = " ".join(paragraphs(900_000 + n, count=3))
        with self.engine.begin() as conn:
            row_id = conn.execute(
                text("INSERT INTO notes (title, body) VALUES (:t, :b) RETURNING id"), {"t": f"note {n}", "b": body}
            ).scalar()
        self.published[document_id(self.source, str(row_id))] = time.time()  # committed


def indexed_times(db: Path) -> dict[str, float]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("SELECT id, indexed_at FROM documents WHERE indexed_at IS NOT NULL").fetchall()
    except sqlite3.OperationalError:
        return {}
    return {doc_id: datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp() for doc_id, at in rows}


def run_overheads(api: str, db: Path) -> dict:
    runs = httpx.post(f"{api}/flow_runs/filter", json={"limit": 200}, timeout=10).json()
    deployments = {d["id"]: d["name"] for d in httpx.post(f"{api}/deployments/filter", json={}, timeout=10).json()}
    out = {}
    for name in ("refresh", "refresh-on-event"):
        mine = [r for r in runs if deployments.get(r.get("deployment_id")) == name and r.get("end_time")]
        wall = [
            (datetime.fromisoformat(r["end_time"]) - datetime.fromisoformat(r["start_time"])).total_seconds()
            for r in mine
            if r.get("start_time")
        ]
        delay = [
            (datetime.fromisoformat(r["start_time"]) - datetime.fromisoformat(r["expected_start_time"])).total_seconds()
            for r in mine
            if r.get("start_time")
        ]
        key = name.replace("-", "_")
        out[f"{key}_runs"] = len(mine)
        out[f"{key}_run_wall_seconds_median"] = round(statistics.median(wall), 2) if wall else None
        out[f"{key}_schedule_to_start_seconds_median"] = round(statistics.median(delay), 2) if delay else None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        pipeline = [s for (s,) in conn.execute("SELECT json_extract(summary, '$.seconds') FROM refresh_runs")]
    out["pipeline_seconds_median"] = round(statistics.median(pipeline), 2) if pipeline else None
    return out


def _ts(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def _pct(values: list[float]) -> dict:
    if not values:
        return {}
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2)}


def _events(api: str, name: str) -> list[dict]:
    """Every ``name`` event, oldest first, through the events API's pages."""
    body = {"filter": {"event": {"name": [name]}, "order": "ASC"}, "limit": 50}
    page = httpx.post(f"{api}/events/filter", json=body, timeout=10).json()
    out = list(page["events"])
    while page.get("next_page"):
        page = httpx.get(page["next_page"], timeout=10).json()
        out += page["events"]
    return sorted(out, key=lambda e: e["occurred"])


def refresh_here_hops(api: str, published: dict[str, float], done: dict[str, float]) -> dict:
    """Where a row's seconds go when the listener refreshes it itself (from its ``kup.source.refreshed`` events):
    ``commit_to_refresh_start`` (NOTIFY, debounce, spacing, a refresh already under way) and ``refresh_seconds``
    (pull through the cursor path and index, models already loaded)."""
    refreshes = [
        (_ts(e["occurred"]) - e["payload"]["seconds"], e["payload"]["seconds"])
        for e in _events(api, "kup.source.refreshed")
    ]
    waits = []
    for committed in published.values():
        later = [start for start, _ in refreshes if start >= committed]
        if later:
            waits.append(later[0] - committed)
    return {
        "refreshes_here": len(refreshes),
        "commit_to_refresh_start": _pct(waits),
        "refresh_seconds": _pct([seconds for _, seconds in refreshes]),
    }


def sql_hops(api: str, published: dict[str, float], done: dict[str, float]) -> dict:
    """Where an event-driven row's seconds go, hop by hop (p50/p95 in seconds):

    - ``commit_to_event``: the trigger's NOTIFY, the listener's debounce, the event sent (the event's own time);
    - ``event_to_run_created``: Prefect's automation reacting to the event (the refresh-on-event run created);
    - ``created_to_pending``: the runner noticing the run (its poll);
    - ``pending_to_running``: a new flow-run process starting and importing the flow;
    - ``running_to_indexed``: the refresh itself (settings, models, pull, index) up to the row's points written;
    - ``indexed_by``: how many rows each path made searchable (the listener itself, an event run, the minute run).
    """
    events = [_ts(e["occurred"]) for e in _events(api, "kup.source.changed")]
    query = {"deployments": {"name": {"any_": ["refresh-on-event"]}}, "limit": 200}
    runs = []
    for run in httpx.post(f"{api}/flow_runs/filter", json=query, timeout=10).json():
        states = httpx.get(f"{api}/flow_run_states/", params={"flow_run_id": run["id"]}, timeout=10).json()
        at = {}
        for state in states:
            at.setdefault(state["type"], _ts(state["timestamp"]))
        created = _ts(run["created"])
        before = [e for e in events if e <= created + 0.05]
        runs.append({"event": before[-1] if before else None, "created": created, **at, "end": _ts(run["end_time"])})
    hops: dict[str, list[float]] = {
        k: [] for k in ("event_to_run_created", "created_to_pending", "pending_to_running", "running_to_end")
    }
    for run in runs:
        if run["event"] is not None:
            hops["event_to_run_created"].append(run["created"] - run["event"])
        if run.get("PENDING"):
            hops["created_to_pending"].append(run["PENDING"] - run["created"])
        if run.get("PENDING") and run.get("RUNNING"):
            hops["pending_to_running"].append(run["RUNNING"] - run["PENDING"])
        if run.get("RUNNING") and run["end"]:
            hops["running_to_end"].append(run["end"] - run["RUNNING"])
    to_event, running_to_indexed, by = [], [], {"event_run": 0, "other": 0}
    for doc, committed in published.items():
        after = [e for e in events if e >= committed]
        if after:
            to_event.append(after[0] - committed)
        indexed = done.get(doc)
        if indexed is None:
            continue
        mine = [r for r in runs if r.get("RUNNING") and r["RUNNING"] <= indexed <= (r["end"] or indexed) + 0.5]
        if mine:
            by["event_run"] += 1
            running_to_indexed.append(indexed - max(r["RUNNING"] for r in mine))
        else:
            by["other"] += 1
    out = {"events": len(events), "event_runs": len(runs), "commit_to_event": _pct(to_event)}
    out.update({k: _pct(v) for k, v in hops.items()})
    out["running_to_indexed"] = _pct(running_to_indexed)
    out["indexed_by"] = by
    return out


def _figures(lags: list[float], published: int, target: float) -> dict:
    if not lags:
        return {"published": published, "searchable": 0, "target_p95_s": target}
    p50, p95 = np.percentile(lags, [50, 95])
    return {
        "published": published,
        "searchable": len(lags),
        "lag_p50_s": round(float(p50), 1),
        "lag_p95_s": round(float(p95), 1),
        "lag_max_s": round(max(lags), 1),
        "target_p95_s": target,
        "met": bool(p95 < target),
    }


def _pg_database() -> tuple[str, callable]:
    from sqlalchemy import create_engine, text

    name = f"kup_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def _kup(env: dict[str, str], *args: str, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", *args], env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--mean-gap", type=float, default=20.0, help="mean seconds between publications, per path")
    parser.add_argument("--modes", default="minute,hot,sql")
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="the hot feed's poll_seconds")
    parser.add_argument(
        "--runner-poll-seconds",
        type=float,
        default=None,
        help="PREFECT_RUNNER_POLL_FREQUENCY for kup up's runner (default: kup up's own, 2 s between looks for runs)",
    )
    parser.add_argument(
        "--sql-refresh",
        choices=["here", "deployment"],
        default="here",
        help="who refreshes a changed table: the listener itself, or the refresh-on-event deployment",
    )
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    rng = random.Random(args.seed)

    with FeedServer() as server, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        publishers: dict[str, FeedPublisher | RowPublisher] = {}
        lines = ["sources:"]
        extra_env: dict[str, str] = {}
        drop = None
        if "minute" in modes:
            publishers["minute"] = FeedPublisher(server, "/wire", "wire")
            lines += [f"  - name: wire\n    url: {server.url('/wire')}\n    allow_private_addresses: true"]
        if "hot" in modes:
            publishers["hot"] = FeedPublisher(server, "/hot", "hot")
            lines += [
                f"  - name: hot\n    url: {server.url('/hot')}\n    allow_private_addresses: true\n"
                f"    poll_seconds: {args.poll_seconds:g}"
            ]
        if "sql" in modes:
            url, drop = _pg_database()
            publishers["sql"] = RowPublisher(url, "notes")
            extra_env["KUP_BENCH_NOTES_URL"] = url
            lines += [
                "  - name: notes\n    type: sql\n    url_env: KUP_BENCH_NOTES_URL\n    table: notes\n"
                '    id_columns: [id]\n    text: "{title}\\n\\n{body}"\n    title: "{title}"\n'
                "    updated_column: updated_at\n    events: notify"
            ]
        sources = tmp / "sources.yaml"
        sources.write_text("\n".join(lines) + "\n")
        settings = {"KUP_DATA_DIR": str(tmp / "data"), "KUP_SOURCES_FILE": str(sources), **extra_env}
        if args.runner_poll_seconds:
            settings["PREFECT_RUNNER_POLL_FREQUENCY"] = f"{args.runner_poll_seconds:g}"
        up = start_kup_up(settings, serving={"refresh", "refresh-on-event"} if "sql" in modes else {"refresh"})
        helpers: list[subprocess.Popen] = []
        try:
            if "sql" in modes:
                subprocess.run(
                    [sys.executable, "-m", "cli.main", "events", "install", "notes", "--yes"],
                    env=up.env,
                    cwd=ROOT,
                    check=True,
                    capture_output=True,
                )
                how = [] if args.sql_refresh == "here" else ["--no-refresh-here"]
                helpers.append(_kup(up.env, "events", "listen", *how, log=tmp / "listen.log"))
            if "hot" in modes:
                helpers.append(_kup(up.env, "watch", log=tmp / "watch.log"))
            time.sleep(20)  # the helpers connect and load their models; the first minute run settles

            def publish(mode: str) -> None:
                gaps = random.Random(rng.random())
                start, n = time.monotonic(), 0
                while True:
                    wait = gaps.expovariate(1 / args.mean_gap)
                    if time.monotonic() - start + wait > args.minutes * 60:
                        return
                    time.sleep(wait)
                    publishers[mode].publish(n)
                    n += 1

            threads = [threading.Thread(target=publish, args=(m,)) for m in publishers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            db = tmp / "data" / "catalog.db"
            wanted = {mode: dict(p.published) for mode, p in publishers.items()}
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                done = indexed_times(db)
                if all(d in done for w in wanted.values() for d in w):
                    break
                time.sleep(2)
            done = indexed_times(db)
            figures = {
                mode: _figures([done[d] - t for d, t in w.items() if d in done], len(w), TARGETS[mode])
                for mode, w in wanted.items()
            }
            overheads = run_overheads(up.api, db)
            if "sql" in modes:
                hops = sql_hops if args.sql_refresh == "deployment" else refresh_here_hops
                overheads["sql_hops"] = hops(up.api, wanted["sql"], done)
        finally:
            for helper in helpers:
                helper.terminate()
                helper.wait(timeout=30)
            up.stop()
            if drop:
                drop()
    emit(
        "freshness",
        {
            "minutes": args.minutes,
            "mean_gap_s": args.mean_gap,
            "poll_seconds": args.poll_seconds,
            "runner_poll_seconds": args.runner_poll_seconds or 2,
            "sql_refresh": args.sql_refresh if "sql" in modes else None,
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
            **{f"{mode}": f for mode, f in figures.items()},
            **overheads,
        },
    )


if __name__ == "__main__":
    main()

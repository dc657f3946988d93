"""Freshness under the real schedule: publish-to-searchable lag while `kup up` runs the every-minute refresh.

A local feed server publishes new articles at random moments (exponential gaps) for at least five
minutes. `kup up` runs as users run it: a Prefect server, the deployments served, the refresh
scheduled every 60 s, each run in its own process. An article counts as searchable when its
points are written; the catalog stamps that moment (indexed_at), so measuring does not disturb
the runs. Prefect's own cost per run is the run's wall time minus the pipeline's own seconds, and
the delay from a run's scheduled time to its start. Target: p95 lag at most 75 s.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from _common import emit

from connectors import document_id
from fixtures import FeedServer, Item, article_html, paragraphs, rss, start_kup_up


class Publisher:
    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.items: list[Item] = []
        self.published: dict[str, float] = {}  # guid -> wall-clock publish time
        self.lock = threading.Lock()
        self._serve()

    def _serve(self) -> None:
        with self.lock:
            self.server.set("/feed", rss(list(reversed(self.items))), content_type="application/rss+xml")

    def publish(self, n: int) -> None:
        guid = f"bench-{n}"
        path = f"/article/{n}"
        self.server.set(path, article_html(f"Breaking story {n}", paragraphs(5000 + n, count=6)))
        now = datetime.now(UTC)
        with self.lock:
            self.items.append(Item(f"Breaking story {n}", link=self.server.url(path), guid=guid, published=now))
            self.published[guid] = now.timestamp()
        self._serve()


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
    runs = httpx.post(
        f"{api}/flow_runs/filter", json={"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}, timeout=10
    ).json()
    refresh_runs = [r for r in runs if r.get("start_time") and r.get("end_time") and "refresh" in (r.get("tags") or [])]
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        pipeline = [s for (s,) in conn.execute("SELECT json_extract(summary, '$.seconds') FROM refresh_runs")]
    wall = [
        (datetime.fromisoformat(r["end_time"]) - datetime.fromisoformat(r["start_time"])).total_seconds()
        for r in refresh_runs
    ]
    delay = [
        (datetime.fromisoformat(r["start_time"]) - datetime.fromisoformat(r["expected_start_time"])).total_seconds()
        for r in refresh_runs
    ]
    return {
        "refresh_runs": len(refresh_runs),
        "run_wall_seconds_median": round(statistics.median(wall), 2) if wall else None,
        "pipeline_seconds_median": round(statistics.median(pipeline), 2) if pipeline else None,
        "prefect_overhead_seconds_median": round(statistics.median(wall) - statistics.median(pipeline), 2)
        if wall and pipeline
        else None,
        "schedule_to_start_delay_seconds_median": round(statistics.median(delay), 2) if delay else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--mean-gap", type=float, default=20.0, help="mean seconds between publications")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with FeedServer() as server, tempfile.TemporaryDirectory() as tmp:
        publisher = Publisher(server)
        sources = Path(tmp) / "sources.yaml"
        sources.write_text(
            f"sources:\n  - name: wire\n    url: {server.url('/feed')}\n    allow_private_addresses: true\n"
        )
        up = start_kup_up({"KUP_DATA_DIR": str(Path(tmp) / "data"), "KUP_SOURCES_FILE": str(sources)})
        api = up.api
        try:
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < args.minutes * 60:
                time.sleep(min(rng.expovariate(1 / args.mean_gap), args.minutes * 60 - (time.monotonic() - start)))
                publisher.publish(n)
                n += 1
            db = Path(tmp) / "data" / "catalog.db"
            wanted = {document_id("wire", guid): t for guid, t in publisher.published.items()}
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                done = indexed_times(db)
                if all(d in done for d in wanted):
                    break
                time.sleep(2)
            done = indexed_times(db)
            lags = [done[d] - t for d, t in wanted.items() if d in done]
            overheads = run_overheads(api, db)
        finally:
            up.stop()
    p50, p95 = np.percentile(lags, [50, 95]) if lags else (None, None)
    emit(
        "freshness",
        {
            "minutes": args.minutes,
            "published": len(wanted),
            "searchable": len(lags),
            "lag_p50_s": round(float(p50), 1) if lags else None,
            "lag_p95_s": round(float(p95), 1) if lags else None,
            "lag_max_s": round(max(lags), 1) if lags else None,
            **overheads,
            "target_p95_s": 75,
        },
    )


if __name__ == "__main__":
    main()

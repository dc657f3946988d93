"""Prometheus metrics read from the catalog at scrape time: freshness lag per source, documents by status, failures,
the indexing queue, embedding throughput and the last refresh.

Nothing is counted in this process: every figure is the catalog's, so any ``kup api`` (or several) serves the same
values, and a restart loses nothing. Names follow Prometheus conventions (``kup_`` prefix, base units, ``_seconds``,
``_timestamp_seconds``); ``/metrics`` passes the API's guards like every other path (key, trusted hosts).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client.core import CollectorRegistry, GaugeMetricFamily
from prometheus_client.registry import Collector

from indexing import Catalog, now_utc
from indexing.catalog.runs import RefreshRun

QUEUED = ("pending", "failed")  # documents waiting to be (re)indexed


def _seconds(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else max(0.0, (later - earlier).total_seconds())


class CatalogCollector(Collector):
    """Gauges computed from the catalog on every scrape (a few grouped queries)."""

    def __init__(self, catalog: Catalog, overdue_after: float | None = None) -> None:
        self.catalog = catalog
        self.overdue_after = overdue_after  # seconds without a completed refresh that mean refreshes stopped

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = now_utc()
        rows = self.catalog.metric_rows(QUEUED)
        yield from self._documents(rows["counts"])
        yield from self._sources(rows, now)
        open_failures = GaugeMetricFamily(
            "kup_open_failures", "Failures not yet resolved (a source or an article page)", labels=["source", "stage"]
        )
        for source, stage, n in rows["failures"]:
            open_failures.add_metric([source, stage], n)
        yield open_failures
        yield from self._last_refresh(self.catalog.last_refresh(), now)
        alive = GaugeMetricFamily(
            "kup_role_alive_timestamp_seconds",
            "When the long-lived job holding the role (listen: the database listener, connected; watch: the hot-feed "
            "watcher) last said it was alive (every second while it is)",
            labels=["role"],
        )
        for name, renewed in rows["roles"]:
            alive.add_metric([name], renewed.timestamp())
        yield alive

    def _documents(self, counts) -> Iterator[GaugeMetricFamily]:
        docs = GaugeMetricFamily(
            "kup_documents", "Documents in the catalog by source and status", labels=["source", "status"]
        )
        queue = GaugeMetricFamily(
            "kup_index_queue_documents",
            "Documents waiting to be indexed (pending or failed, retried)",
            labels=["source"],
        )
        queued: dict[str, int] = {}
        for source, status, n in counts:
            docs.add_metric([source, status], n)
            if status in QUEUED:
                queued[source] = queued.get(source, 0) + n
        for source, n in sorted(queued.items()):
            queue.add_metric([source], n)
        yield docs
        yield queue

    def _sources(self, rows: dict[str, Any], now: datetime) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "kup_source_freshness_lag_seconds",
            "How far the index may lag a source: since its last successful pull, or since its oldest document still "
            "waiting to be indexed, whichever is longer",
            labels=["source"],
        )
        success = GaugeMetricFamily(
            "kup_source_last_success_timestamp_seconds",
            "When the source was last pulled successfully",
            labels=["source"],
        )
        streak = GaugeMetricFamily(
            "kup_source_consecutive_failures",
            "Pulls of the source that failed in a row (0 once one succeeds)",
            labels=["source"],
        )
        oldest = {source: at for source, at in rows["oldest_queued"]}
        for source, _kind, last_success, last_attempt, failures_in_a_row in rows["states"]:
            streak.add_metric([source], failures_in_a_row or 0)
            if last_success is not None:
                success.add_metric([source], last_success.timestamp())
            behind = [s for s in (_seconds(now, last_success), _seconds(now, oldest.get(source))) if s is not None]
            if last_success is None and last_attempt is not None:
                behind.append(_seconds(now, last_attempt))  # never pulled: at least since it was first tried
            if behind:
                lag.add_metric([source], round(max(behind), 3))
        yield lag
        yield success
        yield streak

    def _last_refresh(self, last: RefreshRun | None, now: datetime) -> Iterator[GaugeMetricFamily]:
        finished = GaugeMetricFamily("kup_last_refresh_timestamp_seconds", "When the last refresh run finished")
        duration = GaugeMetricFamily("kup_last_refresh_duration_seconds", "How long the last refresh run took")
        healthy = GaugeMetricFamily("kup_last_refresh_healthy", "1 when the last refresh left the index fresh, else 0")
        embedded = GaugeMetricFamily("kup_last_refresh_embedded_chunks", "Chunks the last refresh run embedded")
        throughput = GaugeMetricFamily(
            "kup_embedding_chunks_per_second", "Embedding throughput of the last refresh that embedded anything"
        )
        overdue = GaugeMetricFamily(
            "kup_refresh_overdue",
            "1 when no refresh has completed for a few schedule intervals (refreshes have stopped), else 0",
        )
        if self.overdue_after is not None:
            age = None if last is None else _seconds(now, last.finished_at)
            overdue.add_metric([], 1.0 if age is None or age > self.overdue_after else 0.0)
        if last is not None:
            summary, index = last.summary, last.summary.index
            finished.add_metric([], last.finished_at.timestamp())
            duration.add_metric([], float(summary.seconds or (last.finished_at - last.started_at).seconds))
            healthy.add_metric([], 1.0 if summary.verdict is not None and summary.verdict.status == "healthy" else 0.0)
            embedded.add_metric([], float(index.embedded or 0))
            if index.embedded and index.seconds:
                throughput.add_metric([], round(index.embedded / index.seconds, 3))
        yield finished
        yield duration
        yield healthy
        yield embedded
        yield throughput
        if self.overdue_after is not None:
            yield overdue


def registry(catalog: Catalog, overdue_after: float | None = None) -> CollectorRegistry:
    """A registry holding only kup's catalog metrics."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(CatalogCollector(catalog, overdue_after))
    return reg


def metrics_route(catalog: Catalog, overdue_after: float | None = None):
    """A route answering the catalog's metrics in Prometheus text format; ``overdue_after`` (seconds) adds
    ``kup_refresh_overdue``, the same rule ``kup status`` says "refreshes have stopped" by."""
    from fastapi import Response
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    reg = registry(catalog, overdue_after)

    def metrics() -> Response:
        return Response(generate_latest(reg), media_type=CONTENT_TYPE_LATEST)

    return metrics

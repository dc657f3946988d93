"""Pulling one source into the catalog: outcomes counted, article pages fetched in parallel, failures recorded."""

from __future__ import annotations

import threading
import time

import pytest

from connectors import FeedSource, Fetcher, FetchPolicy
from fixtures.pipeline import Pipeline
from indexing import Catalog
from indexing.ingest import ingest_source


class Gauge:
    """Counts article requests in progress at once, and the most there ever were."""

    def __init__(self) -> None:
        self.active = self.peak = 0
        self._lock = threading.Lock()

    def slow(self, route):
        def handle(_request):
            with self._lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            time.sleep(0.3)
            with self._lock:
                self.active -= 1
            return route

        return handle


@pytest.fixture
def parts(tmp_path, feed_server):
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    fetcher = Fetcher(FetchPolicy(per_host_concurrency=8, retries=0))
    yield Pipeline(feed_server, tmp_path / "data", tmp_path / "sources.yaml"), catalog, fetcher
    fetcher.close()
    catalog.close()


def _source(pipeline: Pipeline, path: str) -> FeedSource:
    return FeedSource(name="world", url=pipeline.server.url(path), allow_private_addresses=True)


def test_outcomes_are_counted_and_an_unchanged_feed_costs_nothing(parts) -> None:
    pipeline, catalog, fetcher = parts
    pipeline.publish("/world", 3, etag=None)
    source = _source(pipeline, "/world")
    first = ingest_source(source, catalog, fetcher)
    assert (first.new, first.updated, first.unchanged, first.failed, first.error) == (3, 0, 0, 0, None)
    second = ingest_source(source, catalog, fetcher)  # no ETag: the feed is read again, its entries are settled
    assert (second.new, second.updated, second.unchanged, second.not_modified) == (0, 0, 3, False)


@pytest.mark.parametrize(("workers", "expected_peak"), [(1, 1), (3, 3)])
def test_article_workers_bound_the_pages_fetched_at_once(parts, workers, expected_peak) -> None:
    pipeline, catalog, fetcher = parts
    items = pipeline.publish("/world", 6)
    gauge = Gauge()
    for item in items:
        path = item.link.removeprefix(pipeline.server.base)
        pipeline.server.set(path, handler=gauge.slow(pipeline.server.routes[path]))
    report = ingest_source(_source(pipeline, "/world"), catalog, fetcher, article_workers=workers)
    assert report.new == 6 and report.fallbacks == 0
    assert gauge.peak == expected_peak


def test_a_failing_feed_is_reported_not_raised(parts) -> None:
    pipeline, catalog, fetcher = parts
    pipeline.server.set("/gone", "gone", status=404, content_type="text/plain")
    report = ingest_source(_source(pipeline, "/gone"), catalog, fetcher)
    assert not report.ok and "404" in report.error
    assert catalog.failure_streaks(["world"]) == {"world": 1}
    again = ingest_source(_source(pipeline, "/gone"), catalog, fetcher)  # a one-off failure is retried at once
    assert again.error and catalog.failure_streaks() == {"world": 2}
    skipped = ingest_source(_source(pipeline, "/gone"), catalog, fetcher)  # backing off now
    assert skipped.skipped and skipped.skipped.startswith("backing off after failures")
    assert "probe: HTTP 404" in skipped.skipped  # probed cheaply, still down: no new failure counted
    assert catalog.failure_streaks() == {"world": 2}


def test_a_backing_off_feed_that_answers_again_is_pulled_at_once(parts) -> None:
    pipeline, catalog, fetcher = parts
    pipeline.server.set("/world", "down", status=503, content_type="text/plain")
    for _ in range(2):
        ingest_source(_source(pipeline, "/world"), catalog, fetcher)
    assert catalog.source_due("world")  # backing off for two minutes now
    pipeline.publish("/world", 2)  # the outage ends

    report = ingest_source(_source(pipeline, "/world"), catalog, fetcher)

    assert report.ok and not report.skipped and report.new == 2
    assert catalog.failure_streaks() == {"world": 0} and catalog.source_due("world") is None


def test_an_unexpected_error_in_a_pull_is_recorded_as_the_sources_failure(parts, monkeypatch) -> None:
    pipeline, catalog, fetcher = parts
    pipeline.publish("/world", 1)

    def broken_parser(*args, **kwargs):
        raise RuntimeError("parser bug near postgresql://reader:hunter2@db.example/news\nsecond line")

    monkeypatch.setattr("connectors.feeds.parse_feed", broken_parser)
    report = ingest_source(_source(pipeline, "/world"), catalog, fetcher)

    assert report.error == "unexpected RuntimeError: parser bug near postgresql://reader:***@db.example/news"
    [state] = catalog.status()["sources"]
    assert state["consecutive_failures"] == 1 and state["last_error"] == report.error
    assert "hunter2" not in str(catalog.status())

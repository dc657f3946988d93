"""Hot feeds: the watcher against the local news site polls with conditional GETs, picks up a new item within
seconds and indexes it with the encoders it keeps loaded; a failing feed is polled less and less often."""

from __future__ import annotations

import threading
import time

from connectors import FeedSource, Fetcher, FetchPolicy, document_id
from fixtures.pipeline import Pipeline
from indexing import Catalog, Chunker, EdgeStore, Indexer
from indexing.ingest import ingest_source
from indexing.reports import IndexReport, SourceReport
from indexing.watch import FeedWatcher, hot_feeds


def test_a_new_item_is_searchable_within_seconds_and_an_unchanged_feed_costs_one_request(
    tmp_path, feed_server, dense, sparse
) -> None:
    pipeline = Pipeline(feed_server, tmp_path / "data", tmp_path / "sources.yaml")
    pipeline.publish("/hot", 2, etag='"v1"')
    feed = FeedSource(name="hot", url=feed_server.url("/hot"), allow_private_addresses=True, poll_seconds=5)
    cold = FeedSource(name="cold", url=feed_server.url("/cold"), allow_private_addresses=True)
    assert hot_feeds([feed, cold]) == [feed]
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    fetcher = Fetcher(FetchPolicy(retries=0))
    indexer = Indexer(catalog, EdgeStore(tmp_path / "index"), Chunker(dense.tokenize), dense, sparse)
    watcher = FeedWatcher([feed], lambda f: ingest_source(f, catalog, fetcher), indexer.run)
    thread = threading.Thread(target=watcher.run, args=(60,), daemon=True)
    thread.start()
    try:
        _until(lambda: catalog.count(status="indexed") == 2, 30)
        _until(lambda: watcher.stats.not_modified >= 1, 15)  # the second poll: 304, nothing fetched or embedded
        published = time.monotonic()
        pipeline.publish("/hot", 3, etag='"v2"')
        _until(lambda: catalog.count(status="indexed") == 3, 20)
        took = time.monotonic() - published
    finally:
        watcher.stop()
        thread.join(timeout=30)
        fetcher.close()
        catalog.close()
    assert took < 15  # one poll interval (5 s) plus one article's fetch and embedding
    feed_requests = [headers for path, headers in feed_server.requests if path == "/hot"]
    assert "if-none-match" not in feed_requests[0]
    assert all(h.get("if-none-match") for h in feed_requests[1:])  # every later poll is conditional
    assert watcher.stats.indexed >= 3  # republishing re-dates the first two items: they count as updated
    assert document_id("hot", "/hot-2") in {d["id"] for d in _indexed(tmp_path)}


def test_a_failing_feed_is_polled_less_and_less_often() -> None:
    feed = FeedSource(name="down", url="http://127.0.0.1:9/feed", poll_seconds=5)
    calls: list[float] = []

    def pull(source: FeedSource) -> SourceReport:
        calls.append(time.monotonic())
        return SourceReport(source=source.name, kind="feed", error="connection refused")

    watcher = FeedWatcher([feed], pull, lambda: IndexReport())
    waits = [watcher._wait_after(feed, pull(feed)) for _ in range(8)]
    assert waits[:4] == [10, 20, 40, 80] and waits[-1] == 300  # doubling, capped at five minutes
    assert watcher._wait_after(feed, SourceReport(source="down", kind="feed")) == 5  # back to its pace at once


def _until(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _indexed(tmp_path) -> list[dict]:
    import sqlite3

    with sqlite3.connect(tmp_path / "catalog.db") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT id FROM documents WHERE status = 'indexed'")]

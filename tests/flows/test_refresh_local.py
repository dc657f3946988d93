"""`kup refresh` without a Prefect server: the same steps as the flow, each source's pull within the same limit."""

from __future__ import annotations

import threading
import time

from fixtures.news_site import paragraphs
from flows.refresh_local import refresh_here
from flows.runtime import Runtime
from flows.settings import load_settings


def test_a_pull_that_hangs_is_stopped_at_its_limit_without_prefect(pipeline, monkeypatch) -> None:
    import connectors.feeds

    pipeline.publish("/world", 1)
    pipeline.publish("/stuck", 1, start=10)
    lines = ["sources:"]
    for name in ("stuck", "world"):
        lines += [f"  - name: {name}", f"    url: {pipeline.server.url('/' + name)}"]
        lines += ["    allow_private_addresses: true", "    max_items: 1"]
    pipeline.sources_file.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("KUP_TOTAL_TIMEOUT", "0.5")
    monkeypatch.setenv("KUP_FETCH_RETRIES", "0")  # pull limit: 5 s + 2 x 0.5 s x 2 rounds = 7 s
    monkeypatch.setenv("KUP_SOURCE_CONCURRENCY", "1")  # the stuck pull holds the only worker
    real_parse, release = connectors.feeds.parse_feed, threading.Event()

    def parse(content, *, url, content_type):  # a pathological parse: Python code that never finishes
        while url.endswith("/stuck") and not release.is_set():
            time.sleep(0.05)
        return real_parse(content, url=url, content_type=content_type)

    monkeypatch.setattr(connectors.feeds, "parse_feed", parse)
    started = time.monotonic()
    try:
        summary = refresh_here(load_settings())
    finally:
        release.set()
    assert time.monotonic() - started < 60
    by_name = {s.source: s for s in summary.sources}
    assert by_name["stuck"].error == "pull stopped after 7 s (the limit for this source)"
    assert by_name["world"].new == 1 and summary.index.documents == 1  # pulled after the stuck one
    assert summary.verdict.status == "stale" and "stuck failed: pull stopped after 7 s" in (summary.verdict.message)
    with Runtime(load_settings()) as rt:
        assert rt.catalog.last_refresh().summary.failed_sources == ["stuck"]


def test_an_article_that_leaves_its_feed_stays_indexed_and_searchable(pipeline) -> None:
    """Feeds keep only their latest items: one that drops out was not deleted at its source, so nothing is lost."""
    from indexing.search import search

    items = pipeline.publish("/world", 3)
    pipeline.write_sources({"world": "/world"})
    first = refresh_here(load_settings())
    assert first.index.documents == 3
    pipeline.publish("/world", 2, start=3, etag='"v2"')  # the feed now lists stories 3 and 4 only: 0-2 have left it
    second = refresh_here(load_settings())
    assert {s.source: s.new for s in second.sources} == {"world": 2}
    with Runtime(load_settings()) as rt:
        assert rt.catalog.count(status="indexed") == 5
        hits = search(rt.store, rt.dense, rt.sparse, paragraphs(0, count=6)[0][:300], limit=3).hits
        assert items[0].link in {h.payload.get("url") for h in hits}

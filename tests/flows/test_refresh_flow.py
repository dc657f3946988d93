"""The refresh flow under Prefect's test harness, against feeds served on localhost."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fixtures import Item, article_html, paragraphs, rss
from flows.refresh import refresh
from flows.runtime import Runtime
from flows.settings import load_settings
from indexing import search

pytestmark = pytest.mark.usefixtures("prefect_harness")


def test_refresh_indexes_new_items_and_an_unchanged_feed_costs_nothing(pipeline) -> None:
    pipeline.publish("/world", 3)
    pipeline.publish("/science", 2, start=10)
    pipeline.write_sources({"world": "/world", "science": "/science"})

    first = refresh()
    assert first["totals"] == {"new": 5, "updated": 0, "unchanged": 0, "deleted": 0, "failed": 0}
    assert first["index"]["documents"] == 5 and first["index"]["embedded"] > 5
    assert first["failed_sources"] == []
    # The first pull of a source says nothing about publication lag (its items predate it): the run says n/a, as
    # `kup status` does, and measures from when each item was first seen.
    assert first["freshness_lag_seconds"] == {"p50": None, "p95": None}
    seen = first["first_seen_lag_seconds"]
    assert 0 < seen["p50"] <= seen["p95"] < 600

    with Runtime(load_settings()) as rt:
        hits = search(rt.store, rt.dense, rt.sparse, "Story number 11", limit=3).hits
        assert hits and hits[0].payload["source"] == "science"
        assert rt.store.count() == first["index"]["chunks"]

    pages_before = sum(n for path, n in pipeline.server.hits.items() if "/article/" in path)
    second = refresh()
    assert all(s["not_modified"] for s in second["sources"])  # both feeds answered 304
    assert second["index"]["embedded"] == 0 and second["index"]["documents"] == 0
    assert sum(n for path, n in pipeline.server.hits.items() if "/article/" in path) == pages_before

    pipeline.publish("/world", 4, age_minutes=0, etag='"v2"')  # a new item, published now
    third = refresh()
    assert third["totals"]["new"] == 1
    lag = third["freshness_lag_seconds"]
    assert lag["p50"] is not None and 0 <= lag["p50"] <= lag["p95"] < 600  # the new item, from its publication


def test_changed_article_replaces_its_chunks(pipeline) -> None:
    items = pipeline.publish("/world", 2)
    pipeline.write_sources({"world": "/world"})
    refresh()

    page = "/world/article/0"
    pipeline.server.set(
        page,
        article_html(
            "Story number 0",
            ["The harbour bridge reopened after repairs."] * 3
            + ["Officials thanked the engineers for their fast work today."] * 3,
        ),
    )
    items[0].summary = "Updated summary."
    pipeline.server.set("/world", rss(items), content_type="application/rss+xml", etag='"v2"')
    summary = refresh()
    assert summary["totals"]["updated"] == 1 and summary["totals"]["unchanged"] == 1
    with Runtime(load_settings()) as rt:
        texts = [p.payload["text"] for p in rt.store.scan() if p.payload["title"] == "Story number 0"]
    assert texts and all("harbour bridge reopened" in t or "Officials thanked" in t for t in texts)


def test_broken_sources_are_recorded_and_the_rest_goes_on(pipeline) -> None:
    pipeline.publish("/good", 2)
    pipeline.server.set("/broken", "<html><body><p>Not a feed, never was</p></body></html>", content_type="text/xml")
    pipeline.server.set("/gone", "no such feed", status=404, content_type="text/plain")
    pipeline.write_sources({"good": "/good", "broken": "/broken", "gone": "/gone"})

    state = refresh(return_state=True)
    assert state.is_failed() and state.name == "Stale"
    summary = state.result(raise_on_failure=False).summary
    by_name = {s["source"]: s for s in summary["sources"]}
    assert by_name["good"]["new"] == 2 and by_name["good"]["ok"]
    assert sorted(summary["failed_sources"]) == ["broken", "gone"]
    assert "404" in by_name["gone"]["error"]
    with Runtime(load_settings()) as rt:
        status = rt.catalog.status()
    failing = {s["source"]: s for s in status["sources"]}
    assert failing["gone"]["consecutive_failures"] == 1 and "404" in failing["gone"]["last_error"]
    assert {f["source"] for f in status["failures"]} >= {"broken", "gone"}


def test_item_level_problems_do_not_stop_the_feed(pipeline) -> None:
    server = pipeline.server
    server.set("/p/ok", article_html("Fine", paragraphs(55, count=5)))
    server.set("/p/empty", "<html><body><nav>menu</nav></body></html>")
    items = [
        Item("Fine", link=server.url("/p/ok"), guid="ok", published=datetime(2026, 11, 1, tzinfo=UTC)),
        Item(
            "Page has no text",
            link=server.url("/p/empty"),
            guid="empty",
            summary="The feed's own summary, long enough to be indexed on its own.",
        ),
        Item("Dead link", link=server.url("/p/missing"), guid="dead", summary="Summary of a dead link."),
        Item("Duplicate", link=server.url("/p/ok"), guid="ok"),
        Item("", guid=None, link=None, summary=""),
    ]
    server.set("/mixed", rss(items), content_type="application/rss+xml")
    pipeline.write_sources({"mixed": "/mixed"})

    summary = refresh()
    [mixed] = summary["sources"]
    assert mixed["new"] == 3 and mixed["duplicates"] == 1 and mixed["failed"] == 1 and mixed["fallbacks"] == 2
    with Runtime(load_settings()) as rt:
        status = rt.catalog.status()
    # The dead link's summary is too short for the data checks: quarantined with the check as reason.
    assert status["documents"]["mixed"] == {"indexed": 2, "quarantined": 2}
    reasons_q = {q["external_id"]: q["last_error"] for q in status["quarantined"]}
    assert reasons_q["dead"] == "failed checks: text under 25 characters"
    assert summary["index"]["quarantined"] == 1
    assert summary["index"]["checks"]["failures"] == {"text under 25 characters": 1}
    reasons = {f["reason"] for f in status["failures"] if f["stage"] == "article"}
    assert any("404" in r for r in reasons) and any("no extractable text" in r for r in reasons)

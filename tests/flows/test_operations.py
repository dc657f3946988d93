"""What users watch and trigger: artifacts and run states of a refresh, backfills and reindexes."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId

from fixtures import article_html
from flows.backfill import backfill
from flows.outcome import RunFailed
from flows.refresh import refresh
from flows.reindex import reindex
from flows.runtime import Runtime
from flows.settings import load_settings
from indexing import search

pytestmark = pytest.mark.usefixtures("prefect_harness")


def artifacts_of(run_id, key: str) -> list:
    with get_client(sync_client=True) as client:
        return client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])),
        )


def test_a_refresh_publishes_a_table_and_a_summary(pipeline) -> None:
    pipeline.publish("/world", 2)
    pipeline.server.set("/gone", "gone", status=404, content_type="text/plain")
    pipeline.write_sources({"world": "/world", "gone": "/gone"})

    state = refresh(return_state=True)
    assert state.is_failed() and state.name == "Stale"  # a failing source: never "index is fresh", never green
    assert "gone failed" in state.message and "404" in state.message
    [table] = artifacts_of(state.state_details.flow_run_id, "refresh-sources")
    rows = {row["source"]: row for row in table.data} if isinstance(table.data, list) else None
    if rows is None:  # the API keeps table artifacts as JSON text
        import json

        rows = {row["source"]: row for row in json.loads(table.data)}
    assert rows["world"]["new"] == 2 and rows["world"]["state"] == "ok"
    seen = rows["world"]["seen to searchable p95"]  # a first pull: measured from first seen (publication: n/a)
    assert seen != "-" and seen.endswith(("s", "min")) and rows["world"]["published to searchable p95"] == "-"
    assert rows["gone"]["state"].startswith("FAILED x1") and "404" in rows["gone"]["state"]
    [markdown] = artifacts_of(state.state_details.flow_run_id, "refresh-summary")
    assert "2 new" in markdown.data and "Freshness lag" in markdown.data and "**gone failed**" in markdown.data


def test_a_source_that_keeps_failing_fails_the_run(pipeline) -> None:
    pipeline.publish("/world", 1)
    pipeline.server.set("/gone", "gone", status=500, content_type="text/plain")
    pipeline.write_sources({"world": "/world", "gone": "/gone"})
    states = [refresh(force=True, return_state=True) for _ in range(3)]  # force: skip the backoff between runs
    assert [(s.type.value, s.name) for s in states] == [("FAILED", "Stale"), ("FAILED", "Stale"), ("FAILED", "Failed")]
    assert [str(s.result(raise_on_failure=False)) for s in states[:2]] == [s.message for s in states[:2]]
    assert "gone (3 runs)" in states[-1].message and "500" in states[-1].message
    failure = states[-1].result(raise_on_failure=False)  # an exception Prefect accepts, carrying the summary
    assert isinstance(failure, RunFailed) and str(failure) == states[-1].message
    summary = failure.summary
    assert summary["failed_sources"] == ["gone"] and summary["verdict"]["status"] == "failing"
    assert next(s for s in summary["sources"] if s["source"] == "world")["ok"]  # the other source still refreshed


def test_a_clean_refresh_is_completed(pipeline) -> None:
    pipeline.publish("/world", 1)
    pipeline.write_sources({"world": "/world"})
    state = refresh(return_state=True)
    assert state.is_completed() and state.name == "Completed" and state.message == "index is fresh"


def test_backfill_reextracts_articles_the_feed_did_not_announce(pipeline) -> None:
    pipeline.publish("/world", 2)
    pipeline.write_sources({"world": "/world"})
    refresh()
    # The publisher corrects an article without touching its feed entry: a refresh cannot see it.
    pipeline.server.set(
        "/world/article/1",
        article_html(
            "Story number 1",
            [
                "Correction: the harbour festival moves to Saturday because of the storm warning.",
                "Organisers said tickets stay valid and the fireworks start at nine in the evening.",
                "The mayor thanked volunteers who rebuilt the stage after strong winds on Thursday.",
            ],
        ),
    )
    assert refresh()["totals"]["updated"] == 0

    since = "2020-01-01T00:00:00+00:00"
    summary = backfill(source="world", since=since)
    assert summary["updated"] == 1 and summary["unchanged"] == 1 and summary["indexed"] >= 1
    with Runtime(load_settings()) as rt:
        texts = [p.payload["text"] for p in rt.store.scan() if p.payload["title"] == "Story number 1"]
        hits = search(rt.store, rt.dense, rt.sparse, "festival moved to Saturday, fireworks at nine", limit=1).hits
    assert texts and all("Saturday" in t or "fireworks" in t or "mayor" in t for t in texts)
    assert hits[0].payload["title"] == "Story number 1"


def test_backfill_of_an_unknown_source_fails_clearly(pipeline) -> None:
    pipeline.write_sources({"world": "/world"})
    state = backfill(source="nope", since="2026-01-01T00:00:00+00:00", return_state=True)
    assert state.is_failed() and "unknown source(s): nope" in state.message


def test_reindex_rebuilds_into_a_new_collection(pipeline) -> None:
    pipeline.publish("/world", 3)
    pipeline.write_sources({"world": "/world"})
    refresh()
    with Runtime(load_settings()) as rt:
        before = {p.id: p.payload for p in rt.store.scan()}
    state = reindex(return_state=True)
    report = state.result()
    assert report["documents"] == 3 and report["chunks"] == len(before)
    with Runtime(load_settings()) as rt:
        assert {p.id: p.payload for p in rt.store.scan()} == before
        assert rt.settings.index_path.is_symlink()
    [summary] = artifacts_of(state.state_details.flow_run_id, "reindex-summary")
    assert "Rebuilt 3 document(s)" in summary.data

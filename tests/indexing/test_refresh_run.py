"""A refresh run's orchestrator-free steps: pulls bounded in time, an index step that never loses work, the run
judged and recorded."""

from __future__ import annotations

import threading
import time

import pytest

from connectors import FeedSource, Fetcher, FetchPolicy
from errors import ConfigError
from fixtures.pipeline import Pipeline
from indexing import Catalog, IndexReport, ingest_source, now_utc
from indexing.refresh_run import finish_refresh, index_safely, pull_sources


@pytest.fixture
def parts(tmp_path, feed_server):
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    fetcher = Fetcher(FetchPolicy(retries=0))
    yield Pipeline(feed_server, tmp_path / "data", tmp_path / "sources.yaml"), catalog, fetcher
    fetcher.close()
    catalog.close()


def _feed(pipeline: Pipeline, name: str) -> FeedSource:
    return FeedSource(name=name, url=pipeline.server.url("/" + name), allow_private_addresses=True)


def test_a_stuck_pull_is_stopped_at_its_limit_and_a_fresh_worker_pulls_the_rest(parts) -> None:
    pipeline, catalog, fetcher = parts
    pipeline.publish("/world", 2)
    release = threading.Event()

    def pull(source):
        if source.name == "stuck":  # hangs in Python code, as a pathological parse would; never writes
            release.wait(30)
            raise RuntimeError("released after the test")
        if source.name == "buggy":
            raise OverflowError("int too large to convert to float")
        return ingest_source(source, catalog, fetcher)

    sources = [_feed(pipeline, "stuck"), _feed(pipeline, "buggy"), _feed(pipeline, "world")]
    started = time.monotonic()
    try:
        reports = pull_sources(sources, pull, catalog, limits=[1.0, 10.0, 10.0], workers=1)
    finally:
        release.set()
    assert time.monotonic() - started < 10  # one worker, stuck: a fresh one took over after a second

    assert [r.source for r in reports] == ["stuck", "buggy", "world"]
    stuck, buggy, world = reports
    assert stuck.error == "pull stopped after 1 s (the limit for this source)"
    assert buggy.error == "unexpected OverflowError: int too large to convert to float"
    assert world.ok and world.new == 2
    assert catalog.failure_streaks() == {"stuck": 1, "buggy": 1, "world": 0}


def test_an_index_step_that_breaks_leaves_its_reason_and_a_configuration_error_stops(parts) -> None:
    def broken() -> IndexReport:
        raise ConnectionResetError("store went away")

    assert index_safely(broken).errors == ["unexpected ConnectionResetError: store went away"]

    def misconfigured() -> IndexReport:
        raise ConfigError("KUP_QDRANT_URL is not a URL")

    with pytest.raises(ConfigError):
        index_safely(misconfigured)


def test_finish_refresh_judges_and_records_the_run(parts) -> None:
    pipeline, catalog, fetcher = parts
    pipeline.publish("/world", 1)
    pipeline.server.set("/gone", "gone", status=404, content_type="text/plain")
    started = now_utc()
    reports = [ingest_source(_feed(pipeline, name), catalog, fetcher) for name in ("world", "gone")]

    outcome = finish_refresh(catalog, reports, IndexReport(), started)

    assert outcome.verdict.status == "stale" and outcome.streaks == {"world": 0, "gone": 1}
    assert outcome.summary.to_dict()["verdict"] == {"status": "stale", "message": outcome.verdict.message}
    assert outcome.verdict.message.startswith("index is stale: gone failed: ") and "404" in outcome.verdict.message
    recorded = catalog.last_refresh()
    assert recorded.summary.failed_sources == ["gone"] and recorded.summary.verdict.status == "stale"

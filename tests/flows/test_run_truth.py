"""A refresh run tells the truth: never "fresh" while a source is down, one sentence and no traceback when it
fails, a crash or a hang in one source never costs the others, and the kup-status artifact shows it all."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, FlowRunFilter, FlowRunFilterId
from prefect.flow_engine import run_flow

from flows.outcome import RunFailed
from flows.refresh import refresh
from flows.runtime import Runtime
from flows.settings import load_settings
from indexing import search

pytestmark = pytest.mark.usefixtures("prefect_harness")

ENGINE_LOGGERS = ("prefect.flow_runs", "prefect.task_runs", "prefect.engine")


class LogText(logging.Handler):
    """Everything Prefect's engine loggers write for a run, formatted as a console would (tracebacks included).

    (Prefect's own console handler keeps the stream of the test that started the harness, so its output cannot be
    captured here; this handler sees the same records after the same filters.)"""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def engine_logs():
    handler = LogText()
    for name in ENGINE_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    yield handler
    for name in ENGINE_LOGGERS:
        logging.getLogger(name).removeHandler(handler)


def run_as_served(**parameters) -> RunFailed:
    """Run the flow as a served deployment's process does: the engine re-raises a failed run's result and logs it
    through the run logger (here without a run id, which the API log handler is told to accept)."""
    from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

    with temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"}), pytest.raises(RunFailed) as caught:
        run_flow(refresh, parameters=parameters, error_logger=logging.getLogger("prefect.flow_runs"))
    return caught.value


def summary_of(state) -> dict:
    """A refresh run's summary, whether it ended Completed (its result) or Failed/Stale (carried by RunFailed)."""
    result = state.result(raise_on_failure=False)
    return result if isinstance(result, dict) else result.summary


def run_tags(state) -> list[str]:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id).tags


def latest_status(state) -> str:
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["kup-status"])),
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])),
        )
    return artifact.data


def test_a_crash_in_one_sources_pull_is_its_failure_and_the_others_are_indexed(pipeline, monkeypatch) -> None:
    import connectors.feeds

    pipeline.publish("/world", 2)
    pipeline.publish("/buggy", 1, start=10)
    pipeline.write_sources({"world": "/world", "buggy": "/buggy"})
    real_parse = connectors.feeds.parse_feed

    def parse(content, *, url, content_type):  # a bug that only this feed's content triggers
        if url.endswith("/buggy"):
            raise OverflowError("int too large to convert to float")
        return real_parse(content, url=url, content_type=content_type)

    monkeypatch.setattr(connectors.feeds, "parse_feed", parse)
    state = refresh(return_state=True)

    assert state.is_failed() and state.name == "Stale"  # never green in the runs list
    assert state.message == "index is stale: buggy failed: unexpected OverflowError: int too large to convert to float"
    summary = summary_of(state)
    assert summary["index"]["documents"] == 2 and summary["failed_sources"] == ["buggy"]
    with Runtime(load_settings()) as rt:
        hits = search(rt.store, rt.dense, rt.sparse, "Story number 1", limit=3).hits
        failures = {s["source"]: s for s in rt.catalog.status()["sources"]}
    assert hits and hits[0].payload["source"] == "world"  # the healthy feed is searchable after this very run
    assert failures["buggy"]["consecutive_failures"] == 1
    assert failures["buggy"]["last_error"] == "unexpected OverflowError: int too large to convert to float"
    assert "stale" in run_tags(state) and "fresh" not in run_tags(state)
    status = latest_status(state)
    assert status.startswith("## STALE") and "| buggy | FAILED x1: unexpected OverflowError" in status
    assert "| world | ok |" in status and "Freshness over the last day" in status


def test_a_pull_that_hangs_is_stopped_at_its_timeout_and_recorded(pipeline, monkeypatch) -> None:
    import connectors.feeds

    pipeline.publish("/world", 1)
    pipeline.publish("/stuck", 1, start=10)
    lines = ["sources:"]
    for name in ("world", "stuck"):
        lines += [f"  - name: {name}", f"    url: {pipeline.server.url('/' + name)}"]
        lines += ["    allow_private_addresses: true", "    max_items: 1"]
    pipeline.sources_file.write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("KUP_TOTAL_TIMEOUT", "0.5")
    monkeypatch.setenv("KUP_FETCH_RETRIES", "0")  # pull timeout: 5 s + 2 x 0.5 s x 2 rounds = 7 s
    real_parse, release = connectors.feeds.parse_feed, threading.Event()

    def parse(content, *, url, content_type):  # a pathological parse: Python code that never finishes
        while url.endswith("/stuck") and not release.is_set():
            time.sleep(0.05)
        return real_parse(content, url=url, content_type=content_type)

    monkeypatch.setattr(connectors.feeds, "parse_feed", parse)
    started = time.monotonic()
    try:
        state = refresh(return_state=True)
    finally:
        release.set()
    assert time.monotonic() - started < 60
    assert state.is_failed() and state.name == "Stale" and "stuck failed: pull stopped after 7 s" in state.message
    summary = summary_of(state)
    assert summary["index"]["documents"] == 1  # the other source was indexed in the same run
    with Runtime(load_settings()) as rt:
        stuck = {s["source"]: s for s in rt.catalog.status()["sources"]}["stuck"]
    assert stuck["consecutive_failures"] == 1 and "pull stopped" in stuck["last_error"]


def test_a_backing_off_feed_is_stale_then_noticed_by_the_next_run_when_it_answers(pipeline) -> None:
    pipeline.publish("/world", 1)
    pipeline.server.set("/flaky", "down", status=503, content_type="text/plain")
    pipeline.write_sources({"world": "/world", "flaky": "/flaky"})
    for _ in range(2):
        refresh(force=True, return_state=True)  # two failures in a row: the feed now backs off for two minutes

    backing_off = refresh(return_state=True)
    assert backing_off.is_failed() and backing_off.name == "Stale" and backing_off.message != "index is fresh"
    assert "flaky backing off after failures" in backing_off.message and "probe: HTTP 503" in backing_off.message

    pipeline.publish("/flaky", 2, start=20)  # the outage ends well before the backoff does
    recovered = refresh(return_state=True)
    assert recovered.is_completed() and recovered.name == "Completed" and recovered.message == "index is fresh"
    flaky = next(s for s in recovered.result()["sources"] if s["source"] == "flaky")
    assert flaky["new"] == 2 and flaky["ok"]
    assert "fresh" in run_tags(recovered)
    assert latest_status(recovered).startswith("## Fresh: index is fresh")


def test_a_source_failing_a_third_time_fails_the_run_in_one_sentence_without_traceback(pipeline, engine_logs) -> None:
    pipeline.publish("/world", 1)
    pipeline.server.set("/gone", "gone", status=500, content_type="text/plain")
    pipeline.write_sources({"world": "/world", "gone": "/gone"})
    for _ in range(2):
        refresh(force=True, return_state=True)

    failure = run_as_served(force=True)

    assert str(failure).startswith("source(s) keep failing: gone (3 runs): ")
    assert failure.summary["failed_sources"] == ["gone"]
    output = engine_logs.text
    assert "flow run ended Failed: source(s) keep failing" in output
    assert "Traceback" not in output and "Unexpected result for failed state" not in output
    assert "worker thread" not in output  # Prefect's per-task timeout note stays out of the terminal


def test_a_yaml_error_in_the_sources_file_fails_the_run_in_one_sentence(pipeline, engine_logs) -> None:
    pipeline.sources_file.write_text("sources:\n  - name: world\n    url: [unclosed\n")

    failure = run_as_served()

    assert "\n" not in str(failure) and str(pipeline.sources_file.name) in str(failure)
    assert failure.summary is None
    output = engine_logs.text
    assert "refresh failed: " in output
    assert "Traceback" not in output

    state = refresh(return_state=True)
    assert state.is_failed() and state.message == str(failure)
    assert "failing" in run_tags(state)


def test_a_stale_run_ends_failed_named_stale_with_a_warning_and_no_traceback(pipeline, engine_logs) -> None:
    pipeline.publish("/world", 1)
    pipeline.server.set("/gone", "gone", status=404, content_type="text/plain")
    pipeline.write_sources({"world": "/world", "gone": "/gone"})

    stale = run_as_served()

    assert stale.name == "Stale" and str(stale).startswith("index is stale: gone failed: ")
    assert stale.summary["failed_sources"] == ["gone"] and stale.summary["index"]["documents"] == 1
    output = engine_logs.text
    assert "WARNING prefect.flow_runs: flow run ended Stale: index is stale: gone failed" in output
    assert "Traceback" not in output and "ERROR" not in output

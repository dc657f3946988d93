"""The listen flow on a real Prefect server: a NOTIFY from a real PostgreSQL trigger becomes a kup.source.changed
event carrying the source and the row key only; a pipeline without event sources ends its slot at once."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from connectors import pg_events
from connectors.pg_events import Change
from connectors.sources import SqlSource
from fixtures import ROOT
from fixtures.kup_up import free_port
from flows.listen import EVENT, REFRESHED, RefreshHere, event_sources, flush_events, listen
from flows.settings import Settings, load_settings
from tests.conftest import _postgres_source

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def pg():
    yield from _postgres_source(f"kup_lf_{uuid.uuid4().hex[:10]}")


def _events(since: datetime, name: str = EVENT) -> list:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    query = EventFilter(occurred=EventOccurredFilter(since=since), event=EventNameFilter(name=[name]))
    with get_client(sync_client=True) as client:
        return client.read_events(query, limit=50).events  # the server allows at most 50 (the client asks 100)


def _declare_event_source(tmp_path, pg, monkeypatch, table: str) -> None:
    """A sources.yaml with one ``events: notify`` PostgreSQL table source named after ``table``, and the data dir."""
    env = f"KUP_TEST_{table.upper()}_URL"
    (tmp_path / "sources.yaml").write_text(
        f"sources:\n  - name: {table}\n    type: sql\n    url_env: {env}\n    table: {table}\n"
        '    id_columns: [id]\n    text: "{body}"\n    updated_column: updated_at\n    events: notify\n'
    )
    monkeypatch.setenv("KUP_SOURCES_FILE", str(tmp_path / "sources.yaml"))
    monkeypatch.setenv("KUP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv(env, pg.url)


def test_a_notify_becomes_a_prefect_event_with_the_row_key_only(tmp_path, pg, monkeypatch) -> None:
    with pg.engine.begin() as conn:
        conn.execute(text("CREATE TABLE pages (id int PRIMARY KEY, body text, updated_at timestamptz DEFAULT now())"))
    _declare_event_source(tmp_path, pg, monkeypatch, "pages")
    source = SqlSource.model_validate(
        {"type": "sql", "name": "pages", "url_env": "X", "table": "pages", "id_columns": ["id"]}
        | {"text": "{body}", "updated_column": "updated_at"}
    )
    pg_events.apply(source, pg_events.install_sql(source), pg_events.conninfo(source, {"X": pg.url}))
    since = datetime.now(UTC) - timedelta(seconds=5)

    def write_soon() -> None:
        time.sleep(4)  # the flow has started listening
        with pg.engine.begin() as conn:
            conn.execute(text("INSERT INTO pages (id, body) VALUES (42, 'a secret body')"))

    writer = threading.Thread(target=write_soon)
    writer.start()
    state = listen(
        minutes=0.25, refresh_here=False, return_state=True
    )  # a 15 s slot and its 7.5 s grace (no successor comes)
    writer.join()
    assert state.is_completed(), state.message

    deadline = time.monotonic() + 20
    found = _events(since)
    while not any(e.payload.get("reason") == "notify" for e in found):
        assert time.monotonic() < deadline, [e.payload for e in found]
        time.sleep(0.5)
        found = _events(since)
    [notified] = [e for e in found if e.payload.get("reason") == "notify"]
    assert notified.resource.id == "kup.source.pages" and notified.resource["kup.source"] == "pages"
    assert notified.payload == {"source": "pages", "reason": "notify", "count": 1, "keys": [42], "ops": {"INSERT": 1}}
    assert "secret" not in str(notified.model_dump())
    assert any(e.payload.get("reason") == "connect" for e in found)  # the catch-up at connect


def test_without_event_sources_the_slot_ends_at_once(tmp_path, monkeypatch) -> None:
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    monkeypatch.setenv("KUP_SOURCES_FILE", str(tmp_path / "sources.yaml"))
    monkeypatch.setenv("KUP_DATA_DIR", str(tmp_path / "data"))
    started = time.monotonic()
    state = listen(minutes=10, return_state=True)
    assert state.is_completed() and "nothing to listen to" in state.message
    assert time.monotonic() - started < 10


def test_watch_without_hot_feeds_ends_its_slot_at_once(tmp_path, monkeypatch) -> None:
    from flows.watch import watch

    (tmp_path / "sources.yaml").write_text("sources:\n  - name: cold\n    url: http://127.0.0.1:9/feed\n")
    monkeypatch.setenv("KUP_SOURCES_FILE", str(tmp_path / "sources.yaml"))
    monkeypatch.setenv("KUP_DATA_DIR", str(tmp_path / "data"))
    state = watch(minutes=10, return_state=True)
    assert state.is_completed() and state.message == "no feed has poll_seconds: nothing to watch"


def _notes(tmp_path, pg, monkeypatch, rows: int) -> Settings:
    with pg.engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE notes (id int PRIMARY KEY, body text, updated_at timestamptz DEFAULT clock_timestamp())")
        )
        for start in range(0, rows, 100):
            values = [
                {"i": i, "b": " ".join(f"note {i} line {j}." for j in range(40))} for i in range(start, start + 100)
            ]
            conn.execute(text("INSERT INTO notes (id, body) VALUES (:i, :b)"), values[: rows - start])
    _declare_event_source(tmp_path, pg, monkeypatch, "notes")
    return load_settings()


def test_the_listener_refreshes_a_changed_source_itself_and_says_so_in_the_event_feed(tmp_path, pg, monkeypatch):
    settings = _notes(tmp_path, pg, monkeypatch, rows=3)
    since = datetime.now(UTC)  # the server is shared: only this test's events
    said: list[str] = []
    refresher = RefreshHere(settings, event_sources(settings), said.append)
    try:
        refresher.warm_up()
        started = time.monotonic()
        refresher(Change("notes", count=3, keys=[0, 1, 2], ops={"INSERT": 3}))
        took = time.monotonic() - started
        catalog = refresher.runtime.catalog
        assert catalog.count(status="indexed") == 3
    finally:
        refresher.close()
        flush_events()
    assert took < 30 and refresher.refreshes == 1 and refresher.fallbacks == 0
    assert said and said[0].startswith("notes: 3 change(s) (notify) -> refreshed here in") and "3 new" in said[0]
    deadline = time.monotonic() + 20
    while not (found := _events(since, REFRESHED)):
        assert time.monotonic() < deadline, "no kup.source.refreshed event"
        time.sleep(0.5)
    [refreshed] = found
    assert refreshed.resource.id == "kup.source.notes"
    assert (
        refreshed.payload["new"] == 3 and refreshed.payload["indexed"] == 3 and refreshed.payload["keys"] == [0, 1, 2]
    )
    assert not _events(since)  # refreshed here: no kup.source.changed, so the deployment trigger stays idle


def test_a_failed_refresh_here_falls_back_to_the_deployment_trigger(tmp_path, pg, monkeypatch):
    settings = _notes(tmp_path, pg, monkeypatch, rows=1)
    since = datetime.now(UTC)  # the server is shared: only this test's events
    said: list[str] = []
    refresher = RefreshHere(settings, event_sources(settings), said.append)
    with pg.engine.begin() as conn:  # the source's query now fails: the pull reports an error
        conn.execute(text("ALTER TABLE notes RENAME TO gone"))
    try:
        refresher(Change("notes", count=1, keys=[0], ops={"INSERT": 1}))
    finally:
        refresher.close()
        flush_events()
    assert refresher.fallbacks == 1 and said == ["notes: 1 change(s) (notify) -> refresh requested"]
    deadline = time.monotonic() + 20
    while not (found := _events(since)):
        assert time.monotonic() < deadline, "no kup.source.changed event for the deployment trigger"
        time.sleep(0.5)
    assert found[0].payload["source"] == "notes" and not _events(since, REFRESHED)


def test_a_refresh_here_and_another_process_refreshing_the_same_source_write_each_point_once(tmp_path, pg, monkeypatch):
    """The listener's in-process refresh and a refresh in another process (the deployment's flow run, the minute
    refresh) read the same rows at once; the catalog's leases let only one of them index each document."""
    rows = 300
    settings = _notes(tmp_path, pg, monkeypatch, rows=rows)
    refresher = RefreshHere(settings, event_sources(settings))
    refresher.warm_up()
    env = {**os.environ, "KUP_PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}  # no server: in-process
    other = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "refresh", "--source", "notes"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(3)  # the other process has started (imports, models) and is about to pull
        refresher(Change("notes", reason="connect"))
        output, _ = other.communicate(timeout=300)
        assert other.returncode == 0, output
        refresher(Change("notes", reason="connect"))  # whatever the other one left pending
        catalog = refresher.runtime.catalog
        assert catalog.count(status="indexed") == rows
        store = refresher.runtime.store
        points = [p.payload for p in store.scan()]
    finally:
        refresher.close()
        flush_events()
    keys = Counter((p["doc_id"], p["chunk_index"]) for p in points)
    assert max(keys.values()) == 1  # no point written twice
    assert len({doc for doc, _ in keys}) == rows  # none missing

"""The listen flow on a real Prefect server: a NOTIFY from a real PostgreSQL trigger becomes a kup.source.changed
event carrying the source and the row key only; a pipeline without event sources ends its slot at once."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from connectors import pg_events
from connectors.sources import SqlSource
from flows.listen import EVENT, listen
from tests.conftest import _postgres_source

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def pg():
    yield from _postgres_source(f"kup_lf_{uuid.uuid4().hex[:10]}")


def _events(since: datetime) -> list:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    query = EventFilter(occurred=EventOccurredFilter(since=since), event=EventNameFilter(name=[EVENT]))
    with get_client(sync_client=True) as client:
        return client.read_events(query, limit=50).events  # the server allows at most 50 (the client asks 100)


def test_a_notify_becomes_a_prefect_event_with_the_row_key_only(tmp_path, pg, monkeypatch) -> None:
    with pg.engine.begin() as conn:
        conn.execute(text("CREATE TABLE pages (id int PRIMARY KEY, body text, updated_at timestamptz DEFAULT now())"))
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  - name: pages\n    type: sql\n    url_env: KUP_TEST_PAGES_URL\n    table: pages\n"
        '    id_columns: [id]\n    text: "{body}"\n    updated_column: updated_at\n    events: notify\n'
    )
    monkeypatch.setenv("KUP_SOURCES_FILE", str(tmp_path / "sources.yaml"))
    monkeypatch.setenv("KUP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KUP_TEST_PAGES_URL", pg.url)
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
    state = listen(minutes=0.25, return_state=True)  # the shortest slot: 10 s
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

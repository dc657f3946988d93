"""PostgreSQL change notifications against the real server: the trigger SQL, a listener that hears real NOTIFYs,
coalesces a burst, and comes back after its connection is killed."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import text

from connectors import pg_events
from connectors.sources import SqlSource
from errors import ConfigError, SourceError
from tests.conftest import _postgres_source


@pytest.fixture
def pg():
    yield from _postgres_source(f"kup_evt_{uuid.uuid4().hex[:10]}")


def _source(**overrides) -> SqlSource:
    raw = {
        "type": "sql",
        "name": "wiki",
        "url_env": "KUP_TEST_SOURCE_URL",
        "table": "Pages",
        "id_columns": ["id"],
        "text": "{body}",
        "updated_column": "updated_at",
        "events": "notify",
    }
    return SqlSource.model_validate({**raw, **overrides})


def _table(pg) -> None:
    with pg.engine.begin() as conn:
        conn.execute(
            text(
                'CREATE TABLE "Pages" (id int PRIMARY KEY, body text, secret text, '
                "updated_at timestamptz DEFAULT now())"
            )
        )


class Reports:
    def __init__(self) -> None:
        self.changes: list[pg_events.Change] = []
        self.arrived = threading.Condition()

    def __call__(self, change: pg_events.Change) -> None:
        with self.arrived:
            self.changes.append(change)
            self.arrived.notify_all()

    def wait_for(self, predicate, timeout: float = 15) -> list[pg_events.Change]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: predicate(self.changes), timeout), self.changes
            return list(self.changes)


def _connected_listener(pg, source: SqlSource) -> tuple[pg_events.Listener, Reports]:
    """The source's trigger installed and a started listener (short debounce) that has reported its connect."""
    pg_events.apply(source, pg_events.install_sql(source), pg_events.conninfo(source, pg.env()))
    reports = Reports()
    listener = pg_events.Listener(
        [source], pg.env(), reports, debouncer=pg_events.Debouncer(quiet=0.2, max_delay=1, spacing=0.2)
    )
    listener.start()
    reports.wait_for(lambda cs: any(c.reason == "connect" for c in cs))
    return listener, reports


def _notified(changes) -> list[pg_events.Change]:
    return [c for c in changes if c.reason == "notify"]


def test_trigger_sql_quotes_identifiers_and_sends_only_the_key() -> None:
    sql = pg_events.script(pg_events.install_sql(_source(schema='odd "schema"', id_columns=["id", "Rev"])))
    assert '"odd ""schema"""."Pages"' in sql
    assert 'json_build_array(r."id", r."Rev")' in sql
    assert "body" not in sql and "to_json" not in sql  # no row content leaves in the payload
    assert "AFTER INSERT OR UPDATE OR DELETE" in sql and "AFTER TRUNCATE" in sql


def test_events_need_a_table_and_postgresql() -> None:
    with pytest.raises(ValueError, match="needs a table"):
        _source(table=None, query="SELECT * FROM pages")
    with pytest.raises(ConfigError, match="needs PostgreSQL"):
        pg_events.conninfo(_source(), {"KUP_TEST_SOURCE_URL": "sqlite:///x.db"})
    with pytest.raises(ConfigError, match="KUP_TEST_SOURCE_URL is not set"):
        pg_events.conninfo(_source(), {})


def test_install_on_a_missing_table_is_one_sentence(pg) -> None:
    dsn = pg_events.conninfo(_source(), pg.env())
    with pytest.raises(SourceError, match='refused the trigger SQL: relation "public.Pages" does not exist'):
        pg_events.apply(_source(), pg_events.install_sql(_source()), dsn)


def test_listener_hears_coalesces_and_reconnects(pg) -> None:
    _table(pg)
    source = _source()
    dsn = pg_events.conninfo(source, pg.env())
    pg_events.apply(source, pg_events.install_sql(source), dsn)
    assert pg_events.installed(source, dsn)
    reports = Reports()
    listener = pg_events.Listener(
        [source], pg.env(), reports, debouncer=pg_events.Debouncer(quiet=0.3, max_delay=2, spacing=0.5)
    )
    listener.start()
    try:
        reports.wait_for(lambda cs: any(c.reason == "connect" for c in cs))  # the catch-up report at connect

        with pg.engine.begin() as conn:
            conn.execute(text("INSERT INTO \"Pages\" (id, body, secret) VALUES (7, 'hello', 'do-not-send')"))
        [change] = _notified(reports.wait_for(lambda cs: _notified(cs)))
        assert (change.source, change.keys, change.ops, change.count) == ("wiki", [7], {"INSERT": 1}, 1)

        # a burst of 1,500 changes in one transaction arrives as a few reports with a bounded sample of keys
        started = len(reports.changes)
        with pg.engine.begin() as conn:
            conn.execute(
                text("INSERT INTO \"Pages\" (id, body) SELECT g, 'row ' || g FROM generate_series(100, 1599) g")
            )
        burst = reports.wait_for(lambda cs: sum(c.count for c in cs[started:]) >= 1500)[started:]
        assert len(burst) <= 3
        assert all(len(c.keys) <= pg_events.MAX_KEYS for c in burst)
        assert burst[0].keys[:3] == [100, 101, 102]

        # the server ends the listener's connection (as a restart would): it connects again and reports a catch-up
        connects = listener.connects
        with pg.engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'kup-listen' AND datname = :d"
                ),
                {"d": pg.name},
            )
        deadline = time.monotonic() + 20
        while listener.connects == connects and time.monotonic() < deadline:
            time.sleep(0.1)
        assert listener.connects == connects + 1
        reports.wait_for(lambda cs: [c.reason for c in cs].count("connect") >= 2)
        after = len(reports.changes)
        with pg.engine.begin() as conn:
            conn.execute(text('DELETE FROM "Pages" WHERE id = 7'))
        change = reports.wait_for(lambda cs: any(c.ops.get("DELETE") for c in cs[after:]))[-1]
        assert change.keys == [7]
    finally:
        listener.stop()

    pg_events.apply(source, pg_events.remove_sql(source), dsn)
    assert not pg_events.installed(source, dsn)


def test_debouncer_bounds_and_spacing() -> None:
    d = pg_events.Debouncer(quiet=1.0, max_delay=5.0, spacing=10.0)
    for i in range(10_000):
        d.add("a", "INSERT", i, now=100.0 + i * 1e-4)
    assert d.due(now=100.5) == []  # still arriving
    [change] = d.due(now=102.0)
    assert change.count == 10_000 and len(change.keys) == pg_events.MAX_KEYS
    d.add("a", "UPDATE", 1, now=103.0)
    assert d.due(now=105.0) == []  # spaced: at most one report per 10 s
    assert [c.count for c in d.due(now=112.5)] == [1]


def test_a_hostile_notify_is_a_change_without_a_key_and_the_listener_keeps_listening(pg) -> None:
    """Any role that can connect may NOTIFY on the channel: 6 KB of nested JSON (a RecursionError in the parser)
    and a key that is no row key are counted as changes without a key; the next real change is heard as before."""
    _table(pg)
    source = _source()
    listener, reports = _connected_listener(pg, source)
    try:
        nested = '{"op": "INSERT", "key": ' + "[" * 3000 + "]" * 3000 + "}"
        odd = '{"op": "UPDATE", "key": {"id": 1, "rows": [1, [2, [3]]]}}'
        with pg.engine.begin() as conn:
            for payload in (nested, odd):
                conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": pg_events.channel(source), "p": payload})
        hostile = reports.wait_for(lambda cs: sum(c.count for c in _notified(cs)) >= 2)
        assert all(c.keys == [] for c in _notified(hostile))  # counted, no key: the cursor path catches up
        assert listener.connected.is_set() and listener.connects == 1  # the listening thread never died
        before = len(reports.changes)
        with pg.engine.begin() as conn:
            conn.execute(text("INSERT INTO \"Pages\" (id, body) VALUES (9, 'after the attack')"))
        change = reports.wait_for(lambda cs: any(c.keys == [9] for c in cs[before:]))[-1]
        assert change.ops == {"INSERT": 1}
    finally:
        listener.stop()


def test_a_key_too_long_to_notify_never_fails_the_writers_insert(pg) -> None:
    """A row whose key alone is 9,000 bytes: NOTIFY cannot carry it (8,000 bytes), so the trigger sends a marker
    without a key, the application's INSERT commits, and the listener still hears that the table changed."""
    with pg.engine.begin() as conn:
        conn.execute(
            text('CREATE TABLE "Pages" (id text PRIMARY KEY, body text, updated_at timestamptz DEFAULT now())')
        )
    source = _source()
    listener, reports = _connected_listener(pg, source)
    try:
        long_key = "k" * 9000
        with pg.engine.begin() as conn:
            conn.execute(text("INSERT INTO \"Pages\" (id, body) VALUES (:id, 'a long key')"), {"id": long_key})
            conn.execute(text("INSERT INTO \"Pages\" (id, body) VALUES ('short', 'and a normal one')"))
        with pg.engine.connect() as conn:
            assert conn.execute(text('SELECT count(*) FROM "Pages"')).scalar() == 2  # both committed
        changes = reports.wait_for(lambda cs: sum(c.count for c in _notified(cs)) >= 2)
        keys = [k for c in _notified(changes) for k in c.keys]
        assert keys == ["short"]  # the long key was not sent (a marker without a key); the short one was
    finally:
        listener.stop()

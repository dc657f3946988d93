"""SqlReader on SQLite, PostgreSQL and MariaDB: rows to documents, keyset batches, checks, safety."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from connectors import Document, ItemFailure
from connectors.sources import SqlSource
from connectors.sql import SqlReader
from connectors.sql_cursor import SqlBatch, SqlCursor
from errors import ConfigError, SourceError
from tests.source_tables import ENV, T0, events, insert, row_count, ticket, tickets

ODD_TABLE = 'odd "name"; DROP TABLE tickets; --'
ODD_COLUMN = 'body "x"'
odd_metadata = MetaData()
odd = Table(
    ODD_TABLE,
    odd_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column(ODD_COLUMN, Text),
    Column("updated_at", DateTime),
    mysql_charset="utf8mb4",
)


def source(**settings: Any) -> SqlSource:
    base = {
        "type": "sql",
        "name": "tickets",
        "url_env": ENV,
        "table": "tickets",
        "id_columns": ["id"],
        "text": "{title}\n\n{body}",
        "updated_column": "updated_at",
        "lookback": 0,
    }
    base.update(settings)
    if "query" in settings:
        base.pop("table")
    return SqlSource(**base)


def open_reader(db, **settings: Any) -> SqlReader:
    reader = SqlReader(source(**settings), db.env())
    reader.check()
    return reader


def batches(reader: SqlReader, cursor: SqlCursor | None = None) -> list[SqlBatch]:
    return list(reader.read_changes(cursor))


def ids(found: list[SqlBatch]) -> list[str]:
    return [d.external_id for b in found for d in b.documents]


# -- rows to documents -----------------------------------------------------------------------------


def test_a_row_becomes_a_document_with_templates_metadata_and_utc_date(db) -> None:
    insert(db, [ticket(7, title="Printer jam")])
    with open_reader(
        db,
        title="{title}",
        url="https://tickets.example.com/{id}",
        metadata_columns=["team", "priority", "score", "created_at"],
        published_column="created_at",
        timezone="Europe/Paris",
    ) as reader:
        [batch] = batches(reader)
    [doc] = batch.documents
    assert isinstance(doc, Document) and batch.rows == 1 and not batch.failures
    assert doc.source == "tickets" and doc.external_id == "7"
    assert doc.text == "Printer jam\n\nThe printer on floor 7 jams when printing double-sided pages."
    assert doc.title == "Printer jam" and doc.url == "https://tickets.example.com/7"
    assert doc.metadata == {"team": "ops", "priority": 1, "score": 2.5, "created_at": "2026-11-19T09:00:00"}
    assert json.loads(json.dumps(doc.metadata)) == doc.metadata  # JSON-safe as it is
    # created_at is Paris time (UTC+1 in November): the document carries the same instant in UTC.
    assert doc.published_at == datetime(2026, 11, 19, 8, 0, tzinfo=UTC) and doc.published_at.utcoffset() == timedelta(0)
    assert batch.cursor == SqlCursor(T0 + timedelta(minutes=7), [7])


def test_published_defaults_to_the_updated_timestamp(db) -> None:
    insert(db, [ticket(1)])
    with open_reader(db) as reader:
        [doc] = batches(reader)[0].documents
    assert doc.published_at == (T0 + timedelta(minutes=1)).replace(tzinfo=UTC)


def test_compound_ids_become_one_external_id(db) -> None:
    insert(db, [{"region": "eu", "seq": 3, "body": "Berlin office", "updated_at": T0}], events)
    insert(db, [{"region": "us", "seq": 3, "body": "Boston office", "updated_at": T0}], events)
    with open_reader(db, table="events", id_columns=["region", "seq"], text="{body}") as reader:
        found = batches(reader)
        assert json.loads(ids(found)[0]) == ["eu", 3]
        assert ids(found) == ['["eu", 3]', '["us", 3]']
        assert set(reader.live_ids()) == set(ids(found))
    assert found[-1].cursor == SqlCursor(T0, ["us", 3])


def test_empty_or_null_text_is_an_item_failure_with_a_reason(db) -> None:
    insert(db, [ticket(1, title=None, body=None), ticket(2, title="", body="   "), ticket(3)])
    with open_reader(db) as reader:
        [batch] = batches(reader)
    assert [d.external_id for d in batch.documents] == ["3"]
    assert [f.external_id for f in batch.failures] == ["1", "2"]
    for failure in batch.failures:
        assert isinstance(failure, ItemFailure)
        assert "empty or NULL" in failure.reason and "title" in failure.reason and "body" in failure.reason
    assert batch.cursor.ids == [3]  # failed rows still move the cursor on


def test_very_long_text_is_kept_whole(db) -> None:
    body = "lorem ipsum dolor sit amet " * 11_112  # about 300,000 characters
    insert(db, [ticket(1, body=body)])
    with open_reader(db, text="{body}") as reader:
        [doc] = batches(reader)[0].documents
    assert len(body) > 300_000 and doc.text == body.strip()
    assert "truncated_to_chars" not in doc.metadata


def test_non_ascii_text_round_trips(db) -> None:
    title = "Café naïve — Zürich"
    body = "東京の会議室 🚀 — привет, ¿qué tal? 👩🏽‍💻"
    insert(db, [ticket(1, title=title, body=body, team="équipe 🛠")])
    with open_reader(db, title="{title}", metadata_columns=["team"]) as reader:
        [doc] = batches(reader)[0].documents
    assert doc.text == f"{title}\n\n{body}" and doc.title == title and doc.metadata["team"] == "équipe 🛠"


# -- incremental reading -------------------------------------------------------------------------


def test_batches_follow_the_key_order(db) -> None:
    insert(db, [ticket(i) for i in range(1, 8)])
    with open_reader(db, batch_size=3) as reader:
        found = batches(reader)
    assert [b.rows for b in found] == [3, 3, 1]
    assert ids(found) == [str(i) for i in range(1, 8)]
    assert [b.cursor.ids for b in found] == [[3], [6], [7]]


def test_equal_timestamps_across_batch_boundaries_are_read_exactly_once(db) -> None:
    insert(db, [ticket(i, updated_at=T0) for i in range(1, 26)])
    with open_reader(db, batch_size=10) as reader:
        found = batches(reader)
        assert [b.rows for b in found] == [10, 10, 5]
        assert sorted(ids(found), key=int) == [str(i) for i in range(1, 26)]
        assert len(ids(found)) == 25
        # Resuming after the first batch (all rows share its timestamp) reads the other 15, once each.
        rest = batches(reader, found[0].cursor)
    assert [b.rows for b in rest] == [10, 5]
    assert sorted(ids(rest), key=int) == [str(i) for i in range(11, 26)]


def test_only_rows_after_the_cursor_come_back(db) -> None:
    insert(db, [ticket(i) for i in range(1, 6)])
    with open_reader(db) as reader:
        cursor = SqlCursor.from_json(SqlCursor(T0 + timedelta(minutes=3), [3]).to_json())
        assert ids(batches(reader, cursor)) == ["4", "5"]
        assert ids(batches(reader, SqlCursor(T0 + timedelta(minutes=5), [5]))) == []


def test_lookback_re_reads_recent_rows_before_the_cursor(db) -> None:
    insert(db, [ticket(i) for i in range(1, 6)])
    with open_reader(db, lookback=120) as reader:  # two minutes: rows 3, 4 and 5 of a cursor at row 5
        assert ids(batches(reader, SqlCursor(T0 + timedelta(minutes=5), [5]))) == ["3", "4", "5"]


def test_an_integer_version_orders_changes(db) -> None:
    insert(db, [ticket(i, version=10 * i, updated_at=T0) for i in range(1, 6)])
    with open_reader(db, updated_column="version", batch_size=2) as reader:
        found = batches(reader)
        assert ids(found) == ["1", "2", "3", "4", "5"] and found[-1].cursor == SqlCursor(50, [5])
        assert all(d.published_at is None for b in found for d in b.documents)  # a version is not a date
        saved = SqlCursor.from_json(found[0].cursor.to_json())
        assert saved == SqlCursor(20, [2])
        assert ids(batches(reader, saved)) == ["3", "4", "5"]
    with open_reader(db, updated_column="version", lookback=10) as reader:
        assert ids(batches(reader, SqlCursor(40, [4]))) == ["3", "4", "5"]  # versions 30 and up


def test_soft_deleted_rows_come_back_as_deletions(db) -> None:
    insert(db, [ticket(1), ticket(2, is_deleted=True), ticket(3)])
    with open_reader(db, deleted_column="is_deleted") as reader:
        [batch] = batches(reader)
        assert [d.external_id for d in batch.documents] == ["1", "3"] and batch.deleted == ["2"]
        assert sorted(reader.live_ids()) == ["1", "3"]


def test_read_window_returns_exactly_the_rows_in_the_half_open_window(db) -> None:
    insert(db, [ticket(i, updated_at=T0 + timedelta(hours=i)) for i in range(10)])
    with open_reader(db, batch_size=2) as reader:
        window = list(reader.read_window(T0 + timedelta(hours=3), T0 + timedelta(hours=6)))
        assert ids(window) == ["3", "4", "5"]
        assert ids(list(reader.read_window(T0 + timedelta(hours=8)))) == ["8", "9"]


def test_read_window_takes_aware_bounds_in_the_sources_timezone(db) -> None:
    insert(db, [ticket(i, updated_at=T0 + timedelta(hours=i)) for i in range(10)])  # Paris wall-clock times
    since = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)  # 12:00 in Paris: row 3
    with open_reader(db, timezone="Europe/Paris") as reader:
        assert ids(list(reader.read_window(since, since + timedelta(hours=2)))) == ["3", "4"]


def test_a_query_source_reads_what_its_select_returns(db) -> None:
    insert(db, [ticket(i, team="ops" if i % 2 else "sales", updated_at=T0) for i in range(1, 8)])
    query = "SELECT id, title, body, updated_at FROM tickets WHERE team = 'ops'"
    with open_reader(db, query=query, batch_size=2) as reader:
        found = batches(reader)
        assert ids(found) == ["1", "3", "5", "7"]
        assert ids(batches(reader, SqlCursor.from_json(found[0].cursor.to_json()))) == ["5", "7"]
        assert sorted(reader.live_ids()) == ["1", "3", "5", "7"]
    assert found[0].documents[0].published_at == T0.replace(tzinfo=UTC)


def test_a_query_is_sent_as_written(db) -> None:
    insert(db, [ticket(1), ticket(2, team="x :y"), ticket(3, body="A 50% discount :-)")])
    query = "SELECT id, title, body, updated_at FROM tickets WHERE team <> 'x :y' AND body NOT LIKE '%50%%'"
    with open_reader(db, query=query) as reader:
        assert ids(batches(reader)) == ["1"]


def test_rows_without_an_ordering_value_do_not_block_the_others(db) -> None:
    insert(db, [ticket(i, updated_at=None) for i in range(1, 6)] + [ticket(i) for i in range(6, 9)])
    with open_reader(db, batch_size=2) as reader:
        found = batches(reader)
    assert ids(found) == ["6", "7", "8"] and found[-1].cursor == SqlCursor(T0 + timedelta(minutes=8), [8])


def test_a_query_source_looks_back_and_backfills_like_a_table(db) -> None:
    # Through a query the column types are unknown (SQLite then returns timestamps as text).
    insert(db, [ticket(i) for i in range(1, 10)])
    query = "SELECT id, title, body, updated_at FROM tickets WHERE id <> 4"
    with open_reader(db, query=query, lookback=180, timezone="Europe/Paris") as reader:
        [last] = batches(reader)
        cursor = SqlCursor.from_json(last.cursor.to_json())
        assert ids(batches(reader, cursor)) == ["6", "7", "8", "9"]  # three minutes back from row 9
        since = datetime(2026, 11, 20, 8, 2, tzinfo=UTC)  # 09:02 in Paris
        assert ids(list(reader.read_window(since, since + timedelta(minutes=3)))) == ["2", "3"]


# -- configuration checked against the database ---------------------------------------------------


def test_a_column_dropped_from_the_table_is_named_with_its_setting(db) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE tickets DROP COLUMN team"))
    reader = SqlReader(source(metadata_columns=["team"]), db.env())
    with reader, pytest.raises(SourceError) as caught:
        reader.check()
    assert "'team'" in str(caught.value) and "metadata_columns" in str(caught.value)


def test_a_missing_template_column_is_named_with_its_setting(db) -> None:
    reader = SqlReader(source(text="{title}\n\n{summary}"), db.env())
    with reader, pytest.raises(SourceError) as caught:
        reader.check()
    assert "'summary'" in str(caught.value) and "text template" in str(caught.value)


def test_a_missing_table_is_named_with_its_setting(db) -> None:
    reader = SqlReader(source(table="no_such_table"), db.env())
    with reader, pytest.raises(SourceError) as caught:
        reader.check()
    assert "no_such_table" in str(caught.value) and "table setting" in str(caught.value)


def test_identifiers_with_quotes_and_sql_in_them_are_only_names(db) -> None:
    odd_metadata.create_all(db.engine)
    insert(db, [ticket(1)])
    insert(db, [{"id": 1, ODD_COLUMN: "a row of the odd table", "updated_at": T0}], odd)
    with open_reader(db, table=ODD_TABLE, text='{body "x"}', metadata_columns=[ODD_COLUMN]) as reader:
        [doc] = batches(reader)[0].documents
        assert list(reader.live_ids()) == ["1"]
    assert doc.text == "a row of the odd table" and doc.metadata == {ODD_COLUMN: "a row of the odd table"}
    assert inspect(db.engine).has_table("tickets") and row_count(db) == 1


def test_a_table_setting_with_sql_in_it_is_refused(db) -> None:
    insert(db, [ticket(1)])
    reader = SqlReader(source(table="tickets; DROP TABLE tickets"), db.env())
    with reader, pytest.raises(SourceError) as caught:
        reader.check()
    assert "table setting" in str(caught.value)
    assert inspect(db.engine).has_table("tickets") and row_count(db) == 1


def test_sessions_are_read_only(db) -> None:
    insert(db, [ticket(1)])
    with open_reader(db) as reader:
        assert ids(batches(reader)) == ["1"]  # reading works on the same engine
        with pytest.raises(DBAPIError), reader.engine.begin() as conn:
            conn.execute(tickets.insert(), [ticket(2)])
        with pytest.raises(DBAPIError), reader.engine.begin() as conn:
            conn.execute(tickets.delete())
    assert row_count(db) == 1


def test_an_unset_url_variable_is_a_config_error_naming_it(db) -> None:
    with pytest.raises(ConfigError) as caught:
        SqlReader(source(url_env="KUP_TEST_NOT_SET"), {})
    assert "KUP_TEST_NOT_SET" in str(caught.value)


def test_an_unparseable_url_is_a_config_error_without_the_password(db) -> None:
    with pytest.raises(ConfigError) as caught:
        SqlReader(source(), {ENV: "postgres ql://kup:hunter2-secret@127.0.0.1/db"})
    assert ENV in str(caught.value) and "hunter2" not in str(caught.value)


def test_a_wrong_url_names_the_setting_and_never_the_password(db, tmp_path: Path) -> None:
    secret = "hunter2-secret"
    if db.kind == "postgresql":
        url = f"postgresql+psycopg://kup:{secret}@127.0.0.1:5432/no_such_db"
    elif db.kind == "mariadb":
        url = make_url(db.url).set(database="no_such_db").render_as_string(hide_password=False)
        secret = make_url(db.url).password
    else:
        url = f"sqlite:///{tmp_path / 'no_such.db'}"
    reader = SqlReader(source(), {ENV: url})
    with reader, pytest.raises(SourceError) as caught:
        reader.check()
    message = str(caught.value)
    assert ENV in message and "no_such" in message
    assert secret not in message and secret not in repr(caught.value.__cause__ or "")
    assert not (tmp_path / "no_such.db").exists()  # a reader creates nothing, not even an empty SQLite file

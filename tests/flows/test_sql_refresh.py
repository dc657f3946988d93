"""A database source beside a feed in the every-minute refresh: rows searchable, edits replace, deletes vanish."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, text
from typer.testing import CliRunner

from cli.main import app
from flows.refresh import refresh
from flows.runtime import Runtime
from flows.settings import load_settings
from indexing import search

pytestmark = pytest.mark.usefixtures("prefect_harness")

T0 = datetime(2026, 11, 20, 9, 0)

metadata = MetaData()
wiki = Table(
    "wiki_pages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("title", String(200)),
    Column("body", Text),
    Column("team", String(50)),
    Column("updated_at", DateTime),
    Column("archived", Boolean, nullable=False, default=False),
)

PAGES = [
    (1, "Parking", "Staff park in the blue garage on Elm Street; the code changes every quarter."),
    (2, "Holidays", "The office closes between the winter solstice and the new year for maintenance."),
    (3, "Coffee", "The espresso machine on floor three is descaled every Friday by facilities."),
]


def sources_yaml(pipeline, *, text_template: str = "{title}\\n\\n{body}") -> str:
    return (
        "sources:\n"
        f"  - name: news\n    url: {pipeline.server.url('/news')}\n    allow_private_addresses: true\n"
        "  - name: wiki\n    type: sql\n    url_env: KUP_TEST_WIKI_URL\n    table: wiki_pages\n"
        f'    id_columns: [id]\n    text: "{text_template}"\n    title: "{{title}}"\n'
        '    url: "https://wiki.example.com/page/{id}"\n    metadata_columns: [team]\n'
        "    updated_column: updated_at\n    deleted_column: archived\n    reconcile_minutes: 0\n"
        "    max_delete_fraction: 0.6\n"
    )


@pytest.fixture
def wiki_db(pipeline, tmp_path, monkeypatch):
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'wiki.db'}"
    engine = create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            wiki.insert(),
            [
                {
                    "id": i,
                    "title": t,
                    "body": b,
                    "team": "ops",
                    "updated_at": T0 + timedelta(minutes=i),
                    "archived": False,
                }
                for i, t, b in PAGES
            ],
        )
    monkeypatch.setenv("KUP_TEST_WIKI_URL", url)
    pipeline.publish("/news", 2)
    pipeline.sources_file.write_text(sources_yaml(pipeline))
    yield engine
    engine.dispose()


def top_hit(query: str):
    with Runtime(load_settings()) as rt:
        hits = search(rt.store, rt.dense, rt.sparse, query, limit=3, sources=["wiki"]).hits
    return hits[0].payload if hits else None


def test_rows_become_searchable_edits_replace_and_deletes_vanish(pipeline, wiki_db) -> None:
    first = refresh()
    by_name = {s["source"]: s for s in first["sources"]}
    assert by_name["wiki"]["new"] == 3 and by_name["news"]["new"] == 2 and not first["failed_sources"]
    hit = top_hit("where do staff park their cars")
    assert hit["title"] == "Parking" and hit["url"] == "https://wiki.example.com/page/1"

    with wiki_db.begin() as conn:
        conn.execute(
            wiki.update()
            .where(wiki.c.id == 1)
            .values(body="Staff now park in the green lot behind the station.", updated_at=T0 + timedelta(hours=1))
        )
        conn.execute(wiki.update().where(wiki.c.id == 3).values(archived=True, updated_at=T0 + timedelta(hours=1)))
        conn.execute(wiki.delete().where(wiki.c.id == 2))  # a hard delete, found by reconciliation
    second = refresh()
    wiki_report = next(s for s in second["sources"] if s["source"] == "wiki")
    assert wiki_report["updated"] == 1 and wiki_report["deleted"] == 2
    assert second["index"]["deleted"] >= 2

    with Runtime(load_settings()) as rt:
        payloads = [p.payload for p in rt.store.scan() if p.payload["source"] == "wiki"]
        status = rt.catalog.status()
    assert {p["title"] for p in payloads} == {"Parking"}  # the archived and the deleted pages are gone
    assert all("green lot" in p["text"] for p in payloads)
    assert status["documents"]["wiki"] == {"indexed": 1, "deleted": 2}


def stale_summary() -> dict:
    """A refresh whose database source fails ends Failed named Stale; its summary rides on the result."""
    state = refresh(return_state=True)
    assert state.is_failed() and state.name == "Stale", state
    return state.result(raise_on_failure=False).summary


def test_a_broken_database_source_does_not_stop_the_feeds(pipeline, wiki_db) -> None:
    pipeline.sources_file.write_text(sources_yaml(pipeline, text_template="{title}\\n\\n{summary}"))
    summary = stale_summary()
    assert summary["failed_sources"] == ["wiki"]
    wiki_report = next(s for s in summary["sources"] if s["source"] == "wiki")
    assert "summary" in wiki_report["error"] and "text template" in wiki_report["error"]
    assert next(s for s in summary["sources"] if s["source"] == "news")["new"] == 2


def test_status_shows_the_cursor_and_its_lag(pipeline, wiki_db, restore_environ) -> None:
    refresh()
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    wiki_row = next(s for s in json.loads(result.stdout)["sources"] if s["source"] == "wiki")
    assert wiki_row["kind"] == "sql" and wiki_row["cursor"].startswith("2026-11-20T09:03")
    assert wiki_row["cursor_lag_seconds"] > 0
    assert wiki_row["read_to_end_at"]  # the read went to the end: the old cursor is "nothing changed since"
    human = CliRunner().invoke(app, ["status"])
    assert "cursor 2026-11-20T09:03" in human.output
    assert "wiki: up to date as of its last read" in human.output and "newest change" in human.output


def test_the_database_password_never_shows(pipeline, wiki_db, monkeypatch, restore_environ) -> None:
    monkeypatch.setenv("KUP_TEST_WIKI_URL", "postgresql+psycopg://kup:hunter2-secret@127.0.0.1:5432/no_such_db")
    summary = stale_summary()
    wiki_report = next(s for s in summary["sources"] if s["source"] == "wiki")
    assert wiki_report["error"] and "hunter2" not in wiki_report["error"]
    status = CliRunner().invoke(app, ["status", "--json"])
    assert "hunter2" not in status.output and "no_such_db" in status.output


def test_sql_text_reaches_the_catalog_exactly(wiki_db) -> None:
    with wiki_db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM wiki_pages")).scalar() == 3

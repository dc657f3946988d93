"""``kup events install|remove|listen`` and ``kup watch`` through the real CLI: the SQL is printed before anything
is applied, applying needs a yes, and every mistake is one sentence."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cli.main import app
from connectors import pg_events
from connectors.sources import SqlSource
from fixtures.kup_up import free_port
from tests.conftest import _postgres_source

pytestmark = pytest.mark.usefixtures("restore_environ")


@pytest.fixture
def pg():
    yield from _postgres_source(f"kup_cli_{uuid.uuid4().hex[:10]}")


def kup(*args: str, env: dict[str, str] | None = None, input: str | None = None):
    return CliRunner().invoke(app, list(args), env=env, input=input, catch_exceptions=False)


def _sources(tmp_path, pg_env_var: str = "KUP_TEST_EVENTS_URL") -> dict[str, str]:
    path = tmp_path / "sources.yaml"
    path.write_text(
        "sources:\n"
        "  - name: feed\n    url: http://127.0.0.1:9/feed\n"
        f"  - name: wiki\n    type: sql\n    url_env: {pg_env_var}\n    table: pages\n    id_columns: [id]\n"
        '    text: "{body}"\n    updated_column: updated_at\n    events: notify\n'
        f"  - name: plain\n    type: sql\n    url_env: {pg_env_var}\n    table: pages\n    id_columns: [id]\n"
        '    text: "{body}"\n    updated_column: updated_at\n'
    )
    return {"KUP_SOURCES_FILE": str(path), "KUP_DATA_DIR": str(tmp_path / "data")}


def test_install_prints_then_applies_only_with_a_yes_and_remove_undoes_it(tmp_path, pg) -> None:
    with pg.engine.begin() as conn:
        conn.execute(text("CREATE TABLE pages (id int PRIMARY KEY, body text, updated_at timestamptz)"))
    env = {**_sources(tmp_path), "KUP_TEST_EVENTS_URL": pg.url}
    source = SqlSource(
        type="sql", name="wiki", url_env="X", table="pages", id_columns=["id"], text="{body}", updated_column="u"
    )
    dsn = pg_events.conninfo(source, {"X": pg.url})

    printed = kup("events", "install", "wiki", "--print-only", env=env)
    assert printed.exit_code == 0, printed.output
    assert 'CREATE TRIGGER "kup_notify_wiki" AFTER INSERT OR UPDATE OR DELETE ON "public"."pages"' in printed.stdout
    assert not pg_events.installed(source, dsn)

    refused = kup("events", "install", "wiki", env=env)  # not a terminal: nothing is applied without --yes
    assert refused.exit_code == 1 and "run again with --yes" in refused.output
    assert "CREATE OR REPLACE FUNCTION" in refused.stdout  # ... but the SQL was shown first
    assert not pg_events.installed(source, dsn)

    applied = kup("events", "install", "wiki", "--yes", env=env)
    assert applied.exit_code == 0, applied.output
    assert "Installed" in applied.stdout and "kup_wiki" in applied.stdout
    assert pg_events.installed(source, dsn)

    removed = kup("events", "remove", "wiki", "--yes", env=env)
    assert removed.exit_code == 0, removed.output
    assert 'DROP TRIGGER IF EXISTS "kup_notify_wiki"' in removed.stdout
    assert not pg_events.installed(source, dsn)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["events", "install", "feed", "--print-only"], "source feed is a feed; events are for PostgreSQL"),
        (["events", "install", "plain", "--print-only"], "does not say 'events: notify'"),
        (["events", "install", "nope", "--print-only"], "unknown source(s): nope"),
        (["events", "install", "wiki", "--print-only"], "KUP_TEST_EVENTS_URL is not set"),
        (["watch"], "no feed in"),
        (["events", "listen"], "start `kup up` first"),
    ],
)
def test_mistakes_are_one_sentence(tmp_path, args, message) -> None:
    env = {**_sources(tmp_path), "KUP_PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    result = kup(*args, env=env)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output

"""The real ``kup`` CLI (Typer's runner, in-process under the Prefect harness): output, JSON, clear errors."""

from __future__ import annotations

import json
import os
import re

import pytest
from typer.testing import CliRunner

from cli.main import app, parse_when
from errors import InputError
from fixtures.kup_up import free_port
from flows.refresh import refresh  # noqa: F401 - imports Prefect here: its log handlers keep pytest's stderr

pytestmark = pytest.mark.usefixtures("prefect_harness", "restore_environ", "no_prefect_server")

FRESHNESS_KEYS = ("first_seen_to_searchable_seconds", "published_to_searchable_seconds")


@pytest.fixture
def no_prefect_server(monkeypatch) -> None:
    """Nothing answers at the Prefect API URL: `kup refresh` runs in-process (a server on 4200 must not count)."""
    monkeypatch.setenv("KUP_PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")


def kup(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)


def test_refresh_search_and_status(pipeline) -> None:
    pipeline.publish("/world", 3)
    pipeline.write_sources({"world": "/world"})

    result = kup("refresh")
    assert result.exit_code == 0, result.output
    assert "world" in result.output and "indexed 3 document(s)" in result.output
    assert "index is fresh" in result.stdout

    found = kup("search", "Story number 2", "--limit", "2", "--json")
    assert found.exit_code == 0, found.output
    data = json.loads(found.stdout)
    assert len(data["hits"]) == 2
    top = data["hits"][0]
    assert top["title"] == "Story number 2" and top["url"].endswith("/world/article/2")
    assert top["published"].endswith("Z") and top["score"] > 0

    human = kup("search", "Story number 2")
    assert "Story number 2" in human.output and "/world/article/2" in human.output and "published" in human.output

    status = json.loads(kup("status", "--json").stdout)
    [world] = status["sources"]
    assert world["source"] == "world" and world["by_status"] == {"indexed": 3} and world["last_error"] is None
    assert status["pending"] == 0 and status["points"] > 3
    assert status["last_refresh"]["totals"]["new"] == 3
    seen, published = (status["freshness"][k] for k in FRESHNESS_KEYS)
    assert seen["count"] == 3 and 0 <= seen["p50"] <= seen["p95"] < 600
    # The feed's first pull carried items published before kup knew the source: no publication lag yet.
    assert published == {"p50": None, "p95": None, "count": 0}

    table = kup("status")
    assert table.exit_code == 0 and "world" in table.output
    assert "first seen to searchable: p50 " in table.output
    assert "published to searchable:  n/a (nothing published since its source was added)" in table.output
    assert "None" not in table.output and not re.search(r"\d\.\d{3} s", table.output)  # no raw seconds

    pipeline.publish("/world", 2, start=3, age_minutes=0, etag='"v2"')  # published after the source was added
    assert kup("refresh").exit_code == 0
    published = json.loads(kup("status", "--json").stdout)["freshness"]["published_to_searchable_seconds"]
    assert published["count"] == 2 and published["p50"] is not None
    table = kup("status")
    assert re.search(r"published to searchable:  p50 [0-9.]+ (s|min)", table.output), table.output
    assert "(2 published after their source was added)" in table.output


def test_status_with_nothing_indexed_says_so(pipeline) -> None:
    pipeline.write_sources({"world": "/world"})
    table = kup("status")
    assert table.exit_code == 0 and "freshness: n/a (nothing indexed in 24 h)" in table.output
    assert "None" not in table.output and "- s" not in table.output
    data = json.loads(kup("status", "--json").stdout)
    assert data["freshness"]["first_seen_to_searchable_seconds"] == {"p50": None, "p95": None, "count": 0}


@pytest.mark.parametrize("as_flow_run", [False, True], ids=["in-process", "flow-run"])
def test_flags_select_another_pipeline(pipeline, tmp_path, monkeypatch, as_flow_run) -> None:
    """The flags reach the refresh as Settings, run in this process or as a flow run here, not through the
    environment: the KUP_* variables are as they were."""
    if as_flow_run:
        from prefect.settings import PREFECT_API_URL

        monkeypatch.setenv("KUP_PREFECT_API_URL", PREFECT_API_URL.value())  # the test harness's server answers
    kup_environment = {k: v for k, v in os.environ.items() if k.startswith("KUP_")}
    pipeline.publish("/world", 1)
    other_sources = tmp_path / "other.yaml"
    other_sources.write_text(
        f"sources:\n  - name: other\n    url: {pipeline.server.url('/world')}\n    allow_private_addresses: true\n"
    )
    other_data = tmp_path / "other-data"
    result = kup("--data-dir", str(other_data), "--sources", str(other_sources), "refresh", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["new"] == 1
    assert (other_data / "catalog.db").exists() and not pipeline.data_dir.joinpath("catalog.db").exists()
    assert ("not recorded in a dashboard" in result.output) is not as_flow_run
    assert {k: v for k, v in os.environ.items() if k.startswith("KUP_")} == kup_environment


def test_search_on_an_empty_index_says_so(pipeline) -> None:
    pipeline.write_sources({})
    result = kup("search", "anything")
    assert result.exit_code == 0 and "No passages found" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "   "], "query is empty"),
        (["search", "x", "--since", "last tuesday"], "--since 'last tuesday' is not a date"),
        (["search", "x", "--limit", "0"], "-k must be between 1 and 100"),
        (["search", "x", "-k", "101"], "-k must be between 1 and 100"),
        (["search", "harbour", "--source", "wrold"], "unknown source 'wrold'; known sources: world"),
        (["ask", "harbour", "--source", "wrold"], "unknown source 'wrold'; known sources: world"),
        (["refresh", "--source", "nope"], "unknown source(s): nope"),
        (["--sources", "/does/not/exist.yaml", "refresh"], "does not exist"),
        (["search", "x", "--since", "999999d"], "--since '999999d' reaches back before the calendar begins"),
        (["backfill", "-s", "world", "--since", "99999999999d"], "--since '99999999999d' reaches back before"),
        (["backfill", "-s", "world", "--since", "1d", "--until", "9999999w"], "--until '9999999w' reaches back"),
        (["ask", "x", "--recent", "0"], "--recent must be a positive number of days"),
        (["ask", "x", "--recent", "1e12"], "--recent must be a positive number of days"),
    ],
)
def test_user_mistakes_get_one_sentence_and_exit_2(pipeline, args, message) -> None:
    pipeline.write_sources({"world": "/world"})
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_invalid_sources_file_and_settings(pipeline) -> None:
    pipeline.sources_file.write_text("sources:\n  - name: Bad Name\n    url: not-a-url\n")
    result = CliRunner().invoke(app, ["refresh"])
    assert result.exit_code == 2 and "sources.0.name" in result.output and "sources.0.url" in result.output
    bad_env = CliRunner().invoke(app, ["status"], env={"KUP_CHUNK_TOKENS": "lots"})
    assert bad_env.exit_code == 2 and "KUP_CHUNK_TOKENS" in bad_env.output
    assert "Traceback" not in bad_env.output


def test_parse_when() -> None:
    assert parse_when("2026-11-01").isoformat() == "2026-11-01T00:00:00+00:00"
    assert parse_when("2026-11-01T08:00Z").hour == 8
    gap = parse_when("0d") - parse_when("2d")
    assert abs(gap.total_seconds() - 2 * 86400) < 5
    for span in ("999999d", "99999999999d", "9" * 5000 + "s"):
        with pytest.raises(InputError, match="reaches back before the calendar begins"):
            parse_when(span)


def test_feed_credentials_are_never_stored_or_shown(pipeline) -> None:
    """A feed URL with user:password@ whose items link relatively, and one whose ?token= answers 404: the password
    and the token reach neither a document URL (nor the index, nor search), a source's error, nor `kup status`."""
    from fixtures import Item, article_html, paragraphs, rss

    pipeline.server.set("/private/article/1", article_html("Members only story", paragraphs(1, count=6)))
    items = [Item("Members only story", link="/private/article/1", guid="private-1", summary="A story.")]
    pipeline.server.set("/private", rss(items), content_type="application/rss+xml")
    pipeline.server.set("/gone", "gone", status=404, content_type="text/plain")
    private = pipeline.server.url("/private").replace("http://", "http://alice:s3cret-pw@")
    tokened = pipeline.server.url("/gone") + "?token=zz-t0ken-zz"
    pipeline.sources_file.write_text(
        "sources:\n"
        f"  - name: private\n    url: {private}\n    allow_private_addresses: true\n"
        f"  - name: tokened\n    url: {tokened}\n    allow_private_addresses: true\n"
    )
    result = kup("refresh")
    assert result.exit_code == 1  # tokened failed
    found = kup("search", "Members only story", "--json")
    status = kup("status", "--json")
    shown = result.output + found.output + status.output + kup("status").output
    assert "s3cret-pw" not in shown and "zz-t0ken-zz" not in shown
    [hit] = [h for h in json.loads(found.stdout)["hits"] if h["source"] == "private"][:1]
    assert hit["url"] == pipeline.server.url("/private/article/1")  # joined against the feed URL, without userinfo
    failing = next(s for s in json.loads(status.stdout)["sources"] if s["source"] == "tokened")
    assert "404" in failing["last_error"]
    import sqlite3

    with sqlite3.connect(pipeline.data_dir / "catalog.db") as db:
        stored = " ".join(str(v) for row in db.execute("SELECT * FROM documents") for v in row)
        stored += " ".join(str(v) for row in db.execute("SELECT * FROM failures") for v in row)
        stored += " ".join(str(v) for row in db.execute("SELECT * FROM source_state") for v in row)
    assert "s3cret-pw" not in stored and "zz-t0ken-zz" not in stored

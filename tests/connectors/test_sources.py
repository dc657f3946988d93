"""The sources file: a valid one loads; every mistake is one readable sentence naming what to change."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import FeedSource, load_sources, select_sources
from errors import ConfigError

VALID = """\
sources:
  - name: world-news
    url: https://news.example.com/world/rss.xml
  - name: lab_notes
    url: http://intranet.local/feed
    allow_private_addresses: true
    fetch_articles: false
    max_items: 50
"""


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "sources.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_sources(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message  # one line that names the file
    return message


def test_a_valid_file_loads_with_defaults_filled_in(tmp_path) -> None:
    world, lab = load_sources(write(tmp_path, VALID))

    assert isinstance(world, FeedSource)
    assert (world.name, str(world.url)) == ("world-news", "https://news.example.com/world/rss.xml")
    assert (world.type, world.fetch_articles, world.allow_private_addresses, world.max_items) == (
        "feed",
        True,
        False,
        200,
    )
    assert (lab.name, lab.fetch_articles, lab.allow_private_addresses, lab.max_items) == ("lab_notes", False, True, 50)


def test_an_empty_file_has_no_sources(tmp_path) -> None:
    assert load_sources(write(tmp_path, "")) == []
    assert load_sources(write(tmp_path, "sources: []\n")) == []


def test_a_missing_file_says_how_to_point_at_one(tmp_path) -> None:
    message = config_error(tmp_path / "nope.yaml")

    assert "does not exist" in message and "KUP_SOURCES_FILE" in message and "--sources" in message


def test_a_directory_is_not_a_sources_file(tmp_path) -> None:
    assert "cannot be read" in config_error(tmp_path)


def test_invalid_yaml_names_the_line(tmp_path) -> None:
    message = config_error(write(tmp_path, "sources:\n  - name: a\n    url: [unclosed\n"))

    assert "not valid YAML" in message and "line 4" in message


def test_a_file_that_is_not_utf8_is_refused(tmp_path) -> None:
    assert "not UTF-8" in config_error(write(tmp_path, b"sources:\n  - name: caf\xe9\n"))


def test_the_top_level_must_be_a_mapping(tmp_path) -> None:
    assert "must be a mapping with a 'sources:' list" in config_error(write(tmp_path, "- name: a\n- name: b\n"))


def test_an_unknown_key_is_named_with_the_known_ones(tmp_path) -> None:
    message = config_error(write(tmp_path, VALID + "    colour: red\n"))

    assert "sources.1.colour: unknown key" in message
    assert "fetch_articles" in message and "allow_private_addresses" in message


def test_an_unknown_top_level_key_is_named(tmp_path) -> None:
    assert "feeds: unknown key" in config_error(write(tmp_path, "feeds: []\n"))


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("not-a-url", "'not-a-url' is not a usable URL"),
        ("ftp://example.com/feed", "scheme should be 'http' or 'https'"),
    ],
)
def test_a_bad_url_is_named(tmp_path, url, words) -> None:
    message = config_error(write(tmp_path, f"sources:\n  - name: a\n    url: {url}\n"))

    assert "sources.0.url" in message and words in message


def test_a_missing_url_is_named(tmp_path) -> None:
    assert "sources.0.url: required but missing" in config_error(write(tmp_path, "sources:\n  - name: a\n"))


def test_an_entry_that_is_not_a_mapping_is_named(tmp_path) -> None:
    message = config_error(write(tmp_path, "sources:\n  - https://example.com/feed\n"))

    assert "sources.0: must be a mapping" in message


@pytest.mark.parametrize("name", ["Bad Name", "-leading-dash", "x" * 65, "dots.not.allowed"])
def test_a_bad_name_is_named_with_the_rule(tmp_path, name) -> None:
    message = config_error(write(tmp_path, f"sources:\n  - name: '{name}'\n    url: https://example.com/feed\n"))

    assert f"sources.0.name: '{name}' is not a valid name" in message and "lowercase letters" in message


def test_duplicate_names_are_refused(tmp_path) -> None:
    text = "sources:\n" + "".join(f"  - name: {n}\n    url: https://example.com/{i}\n" for i, n in enumerate("abab"))

    message = config_error(write(tmp_path, text))

    assert "names must be unique" in message and "repeated: a, b" in message


def test_every_problem_is_reported_at_once(tmp_path) -> None:
    text = (
        "sources:\n"
        "  - name: a\n    url: https://example.com/1\n    colour: red\n"
        "  - name: Bad Name\n    url: not-a-url\n"
        "  - name: a\n    url: https://example.com/2\n"
    )

    message = config_error(write(tmp_path, text))

    for place in ("sources.0.colour", "sources.1.name", "sources.1.url", "repeated: a"):
        assert place in message


def test_select_sources_picks_by_name_in_the_order_asked(tmp_path) -> None:
    sources = load_sources(write(tmp_path, VALID))

    assert select_sources(sources, None) == sources
    assert select_sources(sources, []) == sources
    assert [s.name for s in select_sources(sources, ["lab_notes", "world-news"])] == ["lab_notes", "world-news"]
    assert [s.name for s in select_sources(sources, ["lab_notes", "lab_notes"])] == ["lab_notes"]


def test_select_sources_with_an_unknown_name_lists_the_known_ones(tmp_path) -> None:
    sources = load_sources(write(tmp_path, VALID))

    with pytest.raises(ConfigError) as caught:
        select_sources(sources, ["world-news", "sport"])

    message = str(caught.value)
    assert "unknown source(s): sport" in message and "world-news, lab_notes" in message


def test_select_sources_from_an_empty_file_says_there_are_none() -> None:
    with pytest.raises(ConfigError, match="the sources file has: none"):
        select_sources([], ["world"])


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{title:d}", "format spec"),
        ("{0}", "names no column"),
        ("{}", "names no column"),
        ("{a.b}", "not a plain column name"),
        ("{a[0]}", "not a plain column name"),
        ("{title!r}", "conversion"),
        ("{title", "malformed"),
    ],
)
def test_an_sql_template_must_name_plain_columns(tmp_path, template, words) -> None:
    text = (
        "sources:\n  - name: tickets\n    type: sql\n    url_env: TICKETS_DB_URL\n    table: tickets\n"
        f"    id_columns: [id]\n    updated_column: updated_at\n    text: '{template}'\n"
    )
    message = config_error(write(tmp_path, text))
    assert "text template" in message and words in message
    assert "Traceback" not in message


def test_sql_templates_with_plain_columns_and_literal_braces_load(tmp_path) -> None:
    text = (
        "sources:\n  - name: tickets\n    type: sql\n    url_env: TICKETS_DB_URL\n    table: tickets\n"
        "    id_columns: [id]\n    updated_column: updated_at\n    text: '{{{{ {title} }}}} {body}'\n"
        "    url: 'https://support.example/t/{id}'\n"
    )
    (source,) = load_sources(write(tmp_path, text))
    assert source.columns() == {
        "id": "id_columns",
        "updated_at": "updated_column",
        "title": "text template",
        "body": "text template",
    }

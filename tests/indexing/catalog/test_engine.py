"""The catalog's database on SQLite and on the real PostgreSQL server: migrations and bad URLs."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from errors import ConfigError
from indexing import Catalog


def test_migrations_create_schema_once(catalog_url: str) -> None:
    Catalog(catalog_url).close()
    Catalog(catalog_url).close()  # second open finds the schema at head and changes nothing
    engine = create_engine(catalog_url)
    tables = set(inspect(engine).get_table_names())
    wanted = {"documents", "story_bands", "source_state", "failures", "refresh_runs", "roles", "kup_schema_version"}
    assert wanted <= tables
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM kup_schema_version")).scalar() == "0005"
    assert {"deleted_at", "story_id", "searchable_at"} <= {c["name"] for c in inspect(engine).get_columns("documents")}
    engine.dispose()


def test_bad_catalog_urls_are_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="KUP_CATALOG_URL"):
        Catalog("nonsense://x")
    with pytest.raises(ConfigError, match="SQLite or PostgreSQL"):
        Catalog("mysql+pymysql://root@127.0.0.1/test")
    with pytest.raises(ConfigError) as info:
        Catalog("postgresql+psycopg://kup:s3cret-pw@127.0.0.1:1/nowhere")
    assert "s3cret-pw" not in str(info.value) and "***" in str(info.value)


def test_a_bad_option_or_a_query_string_password_is_one_sentence_without_the_password() -> None:
    with pytest.raises(ConfigError) as info:  # psycopg refuses the option: a ProgrammingError, not OperationalError
        Catalog("postgresql+psycopg://kup@127.0.0.1:5432/test?bogus=1")
    assert "KUP_CATALOG_URL" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError) as info:
        Catalog("postgresql+psycopg://kup@127.0.0.1:1/nowhere?password=hunter2-secret")
    assert "hunter2-secret" not in str(info.value)


def test_an_older_catalog_is_migrated_in_place_keeping_its_data(catalog_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from indexing.catalog import _MIGRATIONS

    engine = create_engine(catalog_url)
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(
            text(
                "INSERT INTO documents (id, source, external_id, title, published_estimated, text, content_hash, "
                "extraction, meta, status, version, first_seen_at, updated_at, attempts) VALUES "
                "('abc', 'news', 'g1', 'Old', false, 'kept text', 'h', 'article', '{}', 'indexed', 1, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 0)"
            )
        )
    engine.dispose()
    catalog = Catalog(catalog_url)  # opens, finds 0001, upgrades to head
    row = catalog.document("abc")
    assert row["text"] == "kept text" and row["deleted_at"] is None and row["status"] == "indexed"
    assert row["story_id"] is None  # assigned when the indexer next claims it, or by assign_stories
    assert catalog.assign_stories() == 1 and catalog.document("abc")["story_id"] == "abc"
    catalog.close()

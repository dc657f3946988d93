"""The catalog on SQLite and on the real PostgreSQL server: states, leases, failures, migrations."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, inspect, text

from connectors import Document, ItemFailure
from errors import ConfigError
from indexing import Catalog

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def doc(n: int, text_: str = "body", source: str = "news", published: datetime | None = T0) -> Document:
    return Document(
        source=source,
        external_id=f"guid-{n}",
        text=f"{text_} {n}",
        title=f"Title {n}",
        url=f"https://example.com/{n}",
        published_at=published,
        entry_hash=f"entry-{n}",
    )


@pytest.fixture
def catalog(catalog_url: str):
    cat = Catalog(catalog_url)
    yield cat
    cat.close()


def test_migrations_create_schema_once(catalog_url: str) -> None:
    Catalog(catalog_url).close()
    Catalog(catalog_url).close()  # second open finds the schema at head and changes nothing
    engine = create_engine(catalog_url)
    tables = set(inspect(engine).get_table_names())
    assert {"documents", "source_state", "failures", "refresh_runs", "kup_schema_version"} <= tables
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM kup_schema_version")).scalar() == "0002"
    assert "deleted_at" in {c["name"] for c in inspect(engine).get_columns("documents")}
    engine.dispose()


def test_upsert_classifies_new_updated_unchanged(catalog: Catalog) -> None:
    assert catalog.upsert_documents([doc(1), doc(2)], T0) == {doc(1).id: "new", doc(2).id: "new"}
    changed = doc(2, "edited body")
    outcomes = catalog.upsert_documents([doc(1), changed], T0 + timedelta(minutes=1))
    assert outcomes == {doc(1).id: "unchanged", changed.id: "updated"}
    row = catalog.document(changed.id)
    assert row["version"] == 2 and row["status"] == "pending" and row["text"] == "edited body 2"
    assert row["first_seen_at"] == T0 and row["published_at"] == T0
    assert catalog.count(status="pending") == 2


def test_undated_document_keeps_first_seen_estimate(catalog: Catalog) -> None:
    undated = doc(3, published=None)
    catalog.upsert_documents([undated], T0)
    catalog.upsert_documents([doc(3, "changed", published=None)], T0 + timedelta(hours=2))
    row = catalog.document(undated.id)
    assert row["published_at"] == T0 and row["published_estimated"] is True


def test_claims_never_overlap_and_leases_release(catalog: Catalog) -> None:
    catalog.upsert_documents([doc(i) for i in range(10)], T0)
    first = catalog.claim_pending("host:1", 6, T0)
    second = catalog.claim_pending("host:2", 6, T0)
    assert len(first) == 6 and len(second) == 4
    assert not {d.id for d in first} & {d.id for d in second}
    assert catalog.claim_pending("host:3", 6, T0) == []
    # An expired lease is free again.
    assert len(catalog.claim_pending("host:3", 20, T0 + timedelta(hours=1))) == 10


def test_mark_indexed_is_compare_and_set_on_version(catalog: Catalog) -> None:
    catalog.upsert_documents([doc(1), doc(2)], T0)
    claimed = {d.id: d for d in catalog.claim_pending("me:1", 10, T0)}
    catalog.upsert_documents([doc(2, "changed while indexing")], T0)  # a concurrent pull updates doc 2
    marked = catalog.mark_indexed("me:1", [(i, d.version, 3) for i, d in claimed.items()], T0)
    assert marked == 1
    assert catalog.document(doc(1).id)["status"] == "indexed"
    stale = catalog.document(doc(2).id)
    assert stale["status"] == "pending" and stale["lease_owner"] is None and stale["version"] == 2


def test_failed_documents_retry_after_backoff(catalog: Catalog) -> None:
    catalog.upsert_documents([doc(1)], T0)
    [claimed] = catalog.claim_pending("me:1", 10, T0)
    catalog.mark_failed("me:1", [claimed.id], "store down", T0)
    row = catalog.document(claimed.id)
    assert row["status"] == "failed" and row["attempts"] == 1 and row["last_error"] == "store down"
    assert catalog.claim_pending("me:1", 10, T0 + timedelta(seconds=30)) == []
    [again] = catalog.claim_pending("me:1", 10, row["next_attempt_at"] + timedelta(seconds=1))
    assert again.attempts == 1


def test_leases_of_dead_processes_are_taken_over(catalog: Catalog) -> None:
    import socket

    catalog.upsert_documents([doc(1)], T0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{socket.gethostname()}:{dead.stdout.strip()}"
    now = datetime.now(UTC)
    assert len(catalog.claim_pending(owner, 10, now)) == 1
    assert len(catalog.claim_pending("other:1", 10, now)) == 1  # the dead owner's lease is reaped


def test_quarantine_records_reason_and_keeps_indexed_version(catalog: Catalog) -> None:
    catalog.quarantine("news", [ItemFailure("bad-1", "no text at all", url=None, title="Empty")], T0)
    status = catalog.status()
    assert status["documents"]["news"] == {"quarantined": 1}
    assert status["quarantined"][0]["last_error"] == "no text at all"
    # A quarantined item that later arrives with text becomes a normal pending document.
    good = Document(source="news", external_id="bad-1", text="now it has text", title="Empty")
    assert catalog.upsert_documents([good], T0)[good.id] == "updated"
    assert catalog.document(good.id)["status"] == "pending"


def test_known_entries_hides_documents_whose_article_retry_is_due(catalog: Catalog) -> None:
    catalog.upsert_documents([doc(1), doc(2)], T0)
    catalog.record_article_failures("news", [(doc(2).id, "HTTP 503")], T0)
    assert catalog.known_entries("news", ["guid-1", "guid-2"], T0) == {"guid-1": "entry-1", "guid-2": "entry-2"}
    later = T0 + timedelta(minutes=6)
    assert catalog.known_entries("news", ["guid-1", "guid-2"], later) == {"guid-1": "entry-1"}
    catalog.resolve_failures("news", [doc(2).id], "article", later)
    assert "guid-2" in catalog.known_entries("news", ["guid-2"], later)


def test_article_retries_give_up(catalog: Catalog) -> None:
    catalog.upsert_documents([doc(1)], T0)
    for attempt in range(4):
        catalog.record_article_failures("news", [(doc(1).id, "HTTP 404")], T0 + timedelta(days=attempt))
    failure = catalog.status()["failures"][0]
    assert failure["attempts"] == 4 and failure["next_retry_at"] is None
    assert catalog.known_entries("news", ["guid-1"], T0 + timedelta(days=30)) == {"guid-1": "entry-1"}


def test_source_failures_back_off_and_success_resets(catalog: Catalog) -> None:
    first = catalog.record_source_failure("news", "feed", "HTTP 500", T0)
    assert first == T0  # the first failure is retried at the next run
    second = catalog.record_source_failure("news", "feed", "HTTP 500", T0)
    assert second == T0 + timedelta(minutes=2)
    assert catalog.source_due("news", T0 + timedelta(minutes=1)) == second
    with_retry_after = catalog.record_source_failure("news", "feed", "HTTP 429", T0, retry_after=3600)
    assert with_retry_after == T0 + timedelta(hours=1)
    catalog.record_source_success("news", "feed", {"etag": '"v2"'}, T0)
    assert catalog.source_due("news", T0) is None
    assert catalog.source_cursor("news") == {"etag": '"v2"'}
    state = catalog.status()["sources"][0]
    assert state["consecutive_failures"] == 0 and state["last_error"] is None
    assert catalog.status()["failures"] == []


def test_freshness_lags_and_refresh_runs(catalog: Catalog) -> None:
    catalog.upsert_documents([doc(1), doc(2, published=None)], T0)
    claimed = catalog.claim_pending("me:1", 10, T0)
    catalog.mark_indexed("me:1", [(d.id, d.version, 1) for d in claimed], T0 + timedelta(seconds=90))
    assert catalog.freshness_lags(T0) == [90.0]  # the undated document is not counted
    catalog.record_refresh(T0, T0 + timedelta(seconds=5), {"seconds": 5, "totals": {"new": 2}})
    assert catalog.last_refresh()["summary"]["totals"] == {"new": 2}


def test_bad_catalog_urls_are_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="KUP_CATALOG_URL"):
        Catalog("nonsense://x")
    with pytest.raises(ConfigError, match="SQLite or PostgreSQL"):
        Catalog("mysql+pymysql://root@127.0.0.1/test")
    with pytest.raises(ConfigError) as info:
        Catalog("postgresql+psycopg://kup:s3cret-pw@127.0.0.1:1/nowhere")
    assert "s3cret-pw" not in str(info.value) and "***" in str(info.value)


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
    catalog.close()

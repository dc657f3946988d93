"""ingest_sql and backfill_sql into a real catalog, from SQLite, PostgreSQL and MariaDB sources."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from connectors import document_id
from connectors.sources import SqlSource
from connectors.sql import SqlBatch
from indexing import Catalog, backfill_sql, ingest_sql
from tests.source_tables import ENV, T0, assets, change, insert, remove, row_count, ticket

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalog(sqlite_url: str):
    cat = Catalog(sqlite_url)
    yield cat
    cat.close()


def source(**settings: Any) -> SqlSource:
    base = {
        "type": "sql",
        "name": "tickets",
        "url_env": ENV,
        "table": "tickets",
        "id_columns": ["id"],
        "text": "{title}\n\n{body}",
        "title": "{title}",
        "updated_column": "updated_at",
        "published_column": "created_at",  # so a row touched without an edit keeps its content hash
        "deleted_column": "is_deleted",
        "reconcile_minutes": None,
        "lookback": 300,
    }
    return SqlSource(**{**base, **settings})


def sync(db, catalog: Catalog, src: SqlSource | None = None, now: datetime = NOW, **options: Any):
    return ingest_sql(src or source(), catalog, env=db.env(), now=now, **options)


def row(catalog: Catalog, i: int) -> dict[str, Any] | None:
    return catalog.document(document_id("tickets", str(i)))


def position(catalog: Catalog) -> dict[str, Any]:
    return catalog.source_cursor("tickets")["position"]


def index_everything(catalog: Catalog) -> None:
    """Do what the indexer does with the pending documents, so only later changes are pending."""
    claimed = catalog.claim_pending("test:1", 1000, NOW)
    catalog.mark_indexed("test:1", [(d.id, d.version, 1) for d in claimed], NOW)


def live_documents(catalog: Catalog) -> int:
    return sum(1 for _ in catalog.live_external_ids("tickets"))


def source_warning(catalog: Catalog) -> str | None:
    return next(s for s in catalog.status()["sources"] if s["source"] == "tickets")["warning"]


def test_a_first_sync_commits_every_row_and_saves_the_cursor(db, catalog: Catalog) -> None:
    insert(db, [ticket(i) for i in range(1, 6)])
    report = sync(db, catalog, source(batch_size=2))
    assert report.ok and (report.new, report.updated, report.deleted, report.failed) == (5, 0, 0, 0)
    assert catalog.count(source="tickets") == 5 == catalog.count(status="pending")
    assert position(catalog) == {"value": "2026-11-20T09:05:00", "kind": "datetime", "ids": [5]}
    first = row(catalog, 1)
    assert first["text"] == "Ticket 1\n\nThe printer on floor 1 jams when printing double-sided pages."
    assert first["title"] == "Ticket 1" and first["published_at"] == (T0 - timedelta(days=1)).replace(tzinfo=UTC)


def test_a_sync_with_nothing_changed_only_rereads_the_lookback_window(db, catalog: Catalog) -> None:
    insert(db, [ticket(i) for i in range(1, 6)])
    sync(db, catalog)
    index_everything(catalog)
    report = sync(db, catalog, source(lookback=120))  # back to 09:03: rows 3, 4 and 5
    assert report.ok and (report.new, report.updated, report.unchanged) == (0, 0, 3)
    assert catalog.count(status="pending") == 0 and catalog.count(status="indexed") == 5
    assert sync(db, catalog).unchanged == 5  # five minutes back reaches them all
    assert position(catalog)["ids"] == [5]


def test_an_edit_replaces_the_text(db, catalog: Catalog) -> None:
    insert(db, [ticket(i) for i in range(1, 4)])
    sync(db, catalog)
    index_everything(catalog)
    change(db, 2, body="Floor 2 now prints on one side only.", updated_at=T0 + timedelta(hours=1))
    report = sync(db, catalog)
    assert (report.new, report.updated) == (0, 1)
    edited = row(catalog, 2)
    assert edited["text"] == "Ticket 2\n\nFloor 2 now prints on one side only."
    assert edited["status"] == "pending" and edited["version"] == 2
    assert position(catalog) == {"value": "2026-11-20T10:00:00", "kind": "datetime", "ids": [2]}


def test_a_soft_delete_queues_the_removal_and_an_undelete_brings_it_back(db, catalog: Catalog) -> None:
    insert(db, [ticket(i) for i in range(1, 4)])
    sync(db, catalog)
    index_everything(catalog)
    change(db, 2, is_deleted=True, updated_at=T0 + timedelta(hours=1))
    report = sync(db, catalog)
    assert report.deleted == 1 and report.updated == 0
    gone = row(catalog, 2)
    assert gone["deleted_at"] == NOW and gone["status"] == "pending"  # the indexer removes its points
    assert sync(db, catalog, now=NOW + timedelta(minutes=1)).deleted == 0  # re-read, already deleted
    # Restored before the indexer ran: the text is the same, yet the document must come back.
    change(db, 2, is_deleted=False, updated_at=T0 + timedelta(hours=2))
    report = sync(db, catalog, now=NOW + timedelta(minutes=2))
    assert report.updated == 1 and report.deleted == 0
    back = row(catalog, 2)
    assert back["deleted_at"] is None and back["status"] == "pending"
    assert live_documents(catalog) == 3


def test_an_undelete_after_the_indexer_removed_it_is_an_update(db, catalog: Catalog) -> None:
    insert(db, [ticket(i) for i in range(1, 3)])
    sync(db, catalog)
    change(db, 1, is_deleted=True, updated_at=T0 + timedelta(hours=1))
    sync(db, catalog)
    index_everything(catalog)
    assert row(catalog, 1)["status"] == "deleted"
    change(db, 1, is_deleted=False, updated_at=T0 + timedelta(hours=2))
    assert sync(db, catalog).updated == 1
    assert row(catalog, 1)["deleted_at"] is None and row(catalog, 1)["status"] == "pending"


def test_reconciliation_finds_hard_deletes(db, catalog: Catalog) -> None:
    insert(db, [ticket(i) for i in range(1, 11)])
    sync(db, catalog, source(reconcile_minutes=0))
    index_everything(catalog)
    remove(db, 3, 7)
    report = sync(db, catalog, source(reconcile_minutes=0))
    assert report.ok and report.deleted == 2 and not report.warnings
    assert row(catalog, 3)["deleted_at"] == NOW and row(catalog, 7)["status"] == "pending"
    assert live_documents(catalog) == 8
    assert catalog.source_cursor("tickets")["reconciled_at"] == NOW.isoformat()


def test_reconciliation_is_not_repeated_before_it_is_due(db, catalog: Catalog) -> None:
    insert(db, [ticket(i) for i in range(1, 11)])
    sync(db, catalog, source(reconcile_minutes=30))
    remove(db, 3)
    assert sync(db, catalog, source(reconcile_minutes=30), now=NOW + timedelta(minutes=10)).deleted == 0
    assert sync(db, catalog, source(reconcile_minutes=30), now=NOW + timedelta(minutes=31)).deleted == 1


def test_the_mass_deletion_guard_deletes_nothing_and_keeps_warning(db, catalog: Catalog) -> None:
    insert(db, [ticket(i) for i in range(1, 11)])
    every_half_hour = source(reconcile_minutes=30)
    sync(db, catalog, every_half_hour)
    remove(db, *range(1, 9))  # 8 of 10: a broken view or a revoked grant looks just like this
    report = sync(db, catalog, every_half_hour, now=NOW + timedelta(minutes=31))
    assert report.ok and report.deleted == 0
    assert len(report.warnings) == 1 and "max_delete_fraction" in report.warnings[0]
    assert "8 of 10" in report.warnings[0]
    assert live_documents(catalog) == 10
    assert "max_delete_fraction" in source_warning(catalog)
    # The next sync does not reconcile yet, and the warning stays visible.
    later = sync(db, catalog, every_half_hour, now=NOW + timedelta(minutes=40))
    assert later.ok and "max_delete_fraction" in later.warnings[0] and "max_delete_fraction" in source_warning(catalog)
    # Once someone confirms (a higher fraction), the reconciliation passes and the warning clears.
    confirmed = sync(db, catalog, source(reconcile_minutes=30, max_delete_fraction=0.9), now=NOW + timedelta(hours=2))
    assert confirmed.deleted == 8 and confirmed.warnings == []
    assert source_warning(catalog) is None and live_documents(catalog) == 2


def test_a_connection_lost_mid_sync_loses_nothing(db, catalog: Catalog) -> None:
    insert(db, [ticket(i, updated_at=T0 + timedelta(minutes=i // 2)) for i in range(1, 26)])
    src = source(batch_size=10)
    seen: list[SqlBatch] = []

    def cut_after_first(batch: SqlBatch) -> None:
        seen.append(batch)
        if len(seen) == 1:
            db.break_connections()

    try:
        report = sync(db, catalog, src, on_batch=cut_after_first)
    finally:
        db.restore_connections()
    assert report.error and "tickets" in report.error and len(seen) == 1
    password = make_url(db.url).password
    assert not password or password not in report.error
    assert report.new == 10 and catalog.count(source="tickets") == 10
    assert (
        position(catalog)
        == seen[0].cursor.to_json()
        == {"value": "2026-11-20T09:05:00", "kind": "datetime", "ids": [10]}
    )
    failed_state = next(s for s in catalog.status()["sources"] if s["source"] == "tickets")
    assert failed_state["consecutive_failures"] == 1 and "tickets" in failed_state["last_error"]

    again = sync(db, catalog, src, now=NOW + timedelta(minutes=1), force=True)
    assert again.ok and again.new == 15
    assert catalog.count(source="tickets") == row_count(db) == 25
    assert sorted(int(x) for x in catalog.live_external_ids("tickets")) == list(range(1, 26))
    assert position(catalog)["ids"] == [25]


def test_late_commits_inside_the_lookback_are_caught_and_backfill_reaches_further(db, catalog: Catalog) -> None:
    insert(db, [ticket(i) for i in range(1, 6)])
    sync(db, catalog)
    cursor = catalog.source_cursor("tickets")
    # Committed late: stamped before the cursor (09:05); one within five minutes of it, one not.
    insert(db, [ticket(6, updated_at=T0 + timedelta(minutes=2)), ticket(7, updated_at=T0 - timedelta(minutes=20))])
    report = sync(db, catalog)
    assert report.new == 1 and row(catalog, 6) is not None and row(catalog, 7) is None
    assert catalog.source_cursor("tickets") == cursor  # nothing newer than the cursor came in

    backfill = backfill_sql(
        source(),
        catalog,
        datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
        datetime(2026, 11, 20, 9, 1, tzinfo=UTC),
        env=db.env(),
        now=NOW,
    )
    assert backfill.ok and backfill.new == 1 and backfill.unchanged == 0  # row 7 only; row 1 is at 09:01
    assert row(catalog, 7)["text"].startswith("Ticket 7")
    assert catalog.source_cursor("tickets") == cursor


def test_a_row_whose_text_empties_is_quarantined_with_its_reason(db, catalog: Catalog) -> None:
    insert(db, [ticket(1), ticket(2, title=None, body=None)])
    report = sync(db, catalog)
    assert report.new == 1 and report.failed == 1
    bad = row(catalog, 2)
    assert bad["status"] == "quarantined" and "empty or NULL" in bad["last_error"]
    assert position(catalog)["ids"] == [2]  # a bad row does not hold the cursor back


def test_a_configuration_error_stops_the_source_and_keeps_the_cursor(db, catalog: Catalog) -> None:
    insert(db, [ticket(1)])
    sync(db, catalog)
    cursor = catalog.source_cursor("tickets")
    report = sync(db, catalog, source(text="{title}\n\n{summary}"), now=NOW + timedelta(minutes=1))
    assert report.error and "'summary'" in report.error and "text template" in report.error
    assert catalog.source_cursor("tickets") == cursor
    assert catalog.count(source="tickets") == 1


def test_uuid_ids_sharing_a_timestamp_resume_from_the_saved_cursor(db, catalog: Catalog) -> None:
    # The saved cursor holds the ids as JSON text; they must still compare with and bind against UUIDs.
    with db.engine.begin() as conn:
        conn.execute(
            assets.insert(), [{"id": uuid.UUID(int=i), "body": f"asset {i}", "updated_at": T0} for i in range(1, 8)]
        )
    settings = {"table": "assets", "text": "{body}", "title": None, "published_column": None, "deleted_column": None}
    assert sync(db, catalog, source(batch_size=3, **settings)).new == 7
    again = sync(db, catalog, source(batch_size=3, **settings), now=NOW + timedelta(minutes=1))
    assert again.ok and again.unchanged == 7 and again.new == 0
    with db.engine.begin() as conn:
        conn.execute(assets.insert(), [{"id": uuid.UUID(int=100), "body": "asset 100", "updated_at": T0}])
    last = sync(db, catalog, source(batch_size=3, lookback=0, **settings), now=NOW + timedelta(minutes=2))
    assert last.ok and (last.new, last.unchanged) == (1, 0)
    assert catalog.count(source="tickets") == 8


def test_a_backfill_sends_unchanged_rows_of_its_window_back_to_the_indexer(db, catalog: Catalog) -> None:
    insert(db, [ticket(i) for i in range(1, 6)])
    sync(db, catalog)
    index_everything(catalog)
    cursor = catalog.source_cursor("tickets")
    change(db, 2, body="Door 2 was rewired.")  # an edit that did not bump updated_at: a sync cannot see it
    window = (datetime(2026, 11, 20, 9, 2, tzinfo=UTC), datetime(2026, 11, 20, 9, 4, tzinfo=UTC))
    report = backfill_sql(source(), catalog, *window, env=db.env(), now=NOW)
    assert report.ok and (report.new, report.updated, report.unchanged) == (0, 1, 1)  # rows 2 and 3
    assert row(catalog, 2)["text"].endswith("Door 2 was rewired.")
    assert {d: row(catalog, d)["status"] for d in range(1, 6)} == {
        1: "indexed",
        2: "pending",
        3: "pending",
        4: "indexed",
        5: "indexed",
    }
    assert catalog.source_cursor("tickets") == cursor


def test_a_backfill_of_an_unreachable_database_reports_the_error(db, catalog: Catalog) -> None:
    insert(db, [ticket(1)])
    db.break_connections()
    try:
        report = backfill_sql(source(), catalog, datetime(2026, 11, 20, tzinfo=UTC), env=db.env(), now=NOW)
    finally:
        db.restore_connections()
    assert report.error and "tickets" in report.error and report.new == 0
    assert catalog.count(source="tickets") == 0 and catalog.source_cursor("tickets") is None


def test_a_backing_off_database_is_probed_and_read_as_soon_as_it_answers(db, catalog: Catalog) -> None:
    insert(db, [ticket(i) for i in range(1, 4)])
    db.break_connections()
    try:
        for minute in range(2):
            assert sync(db, catalog, now=NOW + timedelta(minutes=minute)).error
        skipped = sync(db, catalog, now=NOW + timedelta(minutes=2))  # backing off: probed, still down
        assert skipped.skipped.startswith("backing off after failures") and "probe: source tickets" in skipped.skipped
        assert catalog.failure_streaks(["tickets"]) == {"tickets": 2}  # a probe is not a new failure
    finally:
        db.restore_connections()
    back = sync(db, catalog, now=NOW + timedelta(minutes=2, seconds=30))  # still inside the backoff
    assert back.ok and not back.skipped and back.new == 3
    assert catalog.failure_streaks(["tickets"]) == {"tickets": 0}

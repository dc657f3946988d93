"""Documents in the catalog: new, updated and unchanged pulls, quarantine, and what belongs in the index."""

from __future__ import annotations

from datetime import timedelta

from connectors import Document, ItemFailure
from indexing import Catalog
from indexing.catalog import LIVE_STATUSES
from tests.indexing.catalog import T0, doc


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


def test_quarantine_records_reason_and_keeps_indexed_version(catalog: Catalog) -> None:
    catalog.quarantine("news", [ItemFailure("bad-1", "no text at all", url=None, title="Empty")], T0)
    status = catalog.status()
    assert status["documents"]["news"] == {"quarantined": 1}
    assert status["quarantined"][0]["last_error"] == "no text at all"
    # A quarantined item that later arrives with text becomes a normal pending document.
    good = Document(source="news", external_id="bad-1", text="now it has text", title="Empty")
    assert catalog.upsert_documents([good], T0)[good.id] == "updated"
    assert catalog.document(good.id)["status"] == "pending"


def test_count_live_counts_what_live_rows_yields(catalog: Catalog) -> None:
    assert LIVE_STATUSES == ("indexed", "pending", "failed")
    assert catalog.count_live() == 0
    catalog.upsert_documents([doc(i) for i in range(4)], T0)  # four pending
    claimed = {d.id: d for d in catalog.claim_pending("me:1", 3, T0)}
    indexed, failed, _ = list(claimed)
    catalog.mark_indexed("me:1", [(indexed, claimed[indexed].version, 1)], T0)
    catalog.mark_failed("me:1", [failed], "store down", T0)
    catalog.quarantine("news", [ItemFailure("bad-1", "no text at all", url=None, title="Empty")], T0)
    catalog.upsert_documents([doc(4)], T0)
    catalog.mark_deleted("news", ["guid-4"], T0)  # queued for removal: pending, but no longer live
    statuses = {s: catalog.count(status=s) for s in ("indexed", "pending", "failed", "quarantined")}
    assert statuses == {"indexed": 1, "pending": 3, "failed": 1, "quarantined": 1}
    live = [row.id for batch in catalog.live_rows(batch_size=2) for row in batch]
    assert doc(4).id not in live and failed in live and indexed in live
    assert catalog.count_live() == len(live) == 4

"""The refresh run log and the freshness lags the catalog reports."""

from __future__ import annotations

from datetime import timedelta

from indexing import Catalog
from tests.indexing.catalog import T0, doc


def test_freshness_lags_and_refresh_runs(catalog: Catalog) -> None:
    catalog.upsert_documents([doc(1), doc(2, published=None)], T0)
    claimed = catalog.claim_pending("me:1", 10, T0)
    catalog.mark_indexed("me:1", [(d.id, d.version, 1) for d in claimed], T0 + timedelta(seconds=90))
    assert catalog.freshness_lags(T0) == [90.0]  # the undated document is not counted
    catalog.record_refresh(T0, T0 + timedelta(seconds=5), {"seconds": 5, "totals": {"new": 2}})
    assert catalog.last_refresh()["summary"]["totals"] == {"new": 2}

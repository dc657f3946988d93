"""Article failures: a due retry hides a known entry, and retries give up after a few attempts."""

from __future__ import annotations

from datetime import timedelta

from indexing import Catalog
from tests.indexing.catalog import T0, doc


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

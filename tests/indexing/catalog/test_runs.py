"""The refresh run log and the freshness lags the catalog reports."""

from __future__ import annotations

from datetime import timedelta

from indexing import Catalog
from indexing.reports import RefreshSummary, SourceSummary, Totals
from indexing.schema import refresh_runs
from tests.indexing.catalog import T0, doc


def test_refresh_runs_are_logged(catalog: Catalog) -> None:
    summary = RefreshSummary(seconds=5, sources=[SourceSummary(source="world", kind="feed", new=2)])
    catalog.record_refresh(T0, T0 + timedelta(seconds=5), summary)
    last = catalog.last_refresh()
    assert last.summary.totals == Totals(new=2) and last.summary == summary
    assert (last.started_at, last.finished_at) == (T0, T0 + timedelta(seconds=5))


def test_a_run_recorded_by_an_older_version_reads_back(catalog: Catalog) -> None:
    old = {"seconds": 5, "sources": [{"source": "world", "kind": "feed", "new": 2, "ok": True}], "totals": {"new": 2}}
    with catalog._write() as conn:
        conn.execute(refresh_runs.insert().values(started_at=T0, finished_at=T0, summary=old))
    summary = catalog.last_refresh().summary
    assert summary.totals == Totals(new=2) and summary.sources[0].warnings == [] and summary.verdict is None


def test_searchable_lags_from_first_seen_and_from_publication(catalog: Catalog) -> None:
    # The source's first pull carries an article from last week: its age says nothing about freshness.
    catalog.upsert_documents([doc(1, published=T0 - timedelta(days=7))], T0)
    claimed = catalog.claim_pending("me:1", 10, T0)
    catalog.mark_indexed("me:1", [(d.id, d.version, 1) for d in claimed], T0 + timedelta(seconds=40))
    # An hour later a new article, published ten minutes before it was pulled, and an undated one.
    later = T0 + timedelta(hours=1)
    catalog.upsert_documents([doc(2, published=later - timedelta(minutes=10)), doc(3, published=None)], later)
    claimed = catalog.claim_pending("me:1", 10, later)
    catalog.mark_indexed("me:1", [(d.id, d.version, 1) for d in claimed], later + timedelta(seconds=90))
    # Another source whose first pull is all it has: none of its items counts for the publication lag.
    catalog.upsert_documents([doc(4, source="other", published=later - timedelta(minutes=5))], later)
    claimed = catalog.claim_pending("me:1", 10, later)
    catalog.mark_indexed("me:1", [(d.id, d.version, 1) for d in claimed], later + timedelta(seconds=20))

    lags = catalog.searchable_lags(T0)
    assert sorted(lags["first_seen"]) == [20.0, 40.0, 90.0, 90.0]
    assert lags["published"] == [690.0]  # 10 min before the pull + 90 s to searchable
    recent = catalog.searchable_lags(later)
    assert sorted(recent["first_seen"]) == [20.0, 90.0, 90.0] and recent["published"] == [690.0]
    assert catalog.searchable_lags(later + timedelta(minutes=1)) == {"first_seen": [], "published": []}


def test_reindexing_does_not_move_the_lag_and_an_edit_counts_from_when_it_was_seen(catalog: Catalog) -> None:
    """Re-indexing (a reindex, a backfill, a story's new payload) writes the points again but does not make the
    content any later; an edit is measured from when the edit was seen, not from its document's first sighting."""
    catalog.upsert_documents([doc(1, published=None)], T0)
    claimed = catalog.claim_pending("me:1", 10, T0)
    catalog.mark_indexed("me:1", [(d.id, d.version, 1) for d in claimed], T0 + timedelta(seconds=2))
    assert catalog.searchable_lags(T0)["first_seen"] == [2.0]

    rebuilt = T0 + timedelta(minutes=13)  # a reindex requeues everything and writes it again
    assert catalog.requeue(changed_since=T0) == 1
    claimed = catalog.claim_pending("me:1", 10, rebuilt)
    catalog.mark_indexed("me:1", [(d.id, d.version, 1) for d in claimed], rebuilt)
    assert catalog.searchable_lags(T0)["first_seen"] == [2.0]  # not 13 min

    edited = T0 + timedelta(hours=2)  # the article changes; the edit is searchable 1.5 s after it was seen
    catalog.upsert_documents([doc(1, "an edited text", published=None)], edited)
    claimed = catalog.claim_pending("me:1", 10, edited)
    catalog.mark_indexed("me:1", [(d.id, d.version, 1) for d in claimed], edited + timedelta(seconds=1.5))
    assert catalog.searchable_lags(T0)["first_seen"] == [1.5]  # not 2 h

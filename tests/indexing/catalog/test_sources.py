"""Source state: failures back off, success resets, and each source's failure streak."""

from __future__ import annotations

from datetime import timedelta

from indexing import Catalog
from tests.indexing.catalog import T0


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


def test_failure_streaks_count_consecutive_failures_per_source(catalog: Catalog) -> None:
    assert catalog.failure_streaks() == {}
    for _ in range(3):
        catalog.record_source_failure("news", "feed", "HTTP 500", T0)
    catalog.record_source_failure("crm", "sql", "connection refused", T0)
    catalog.record_source_success("blog", "feed", None, T0)
    assert catalog.failure_streaks() == {"news": 3, "crm": 1, "blog": 0}
    assert catalog.failure_streaks(["news", "unknown"]) == {"news": 3}
    assert catalog.failure_streaks([]) == {}
    catalog.record_source_success("news", "feed", None, T0)
    assert catalog.failure_streaks(["news", "crm"]) == {"news": 0, "crm": 1}


def test_a_huge_retry_after_parks_a_source_for_an_hour_at_most(catalog: Catalog) -> None:
    for asked in (315_360_000, 999_999_999_999, float("1e300")):
        next_at = catalog.record_source_failure("news", "feed", "HTTP 429", T0, retry_after=asked)
        assert next_at == T0 + timedelta(hours=1)

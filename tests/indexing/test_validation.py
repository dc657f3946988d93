"""The data checks (a real Great Expectations suite) and what the indexer does with their verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors import Document
from indexing import Catalog, Chunker, EdgeStore, Indexer
from indexing.catalog import DocRow
from indexing.validation import DocumentChecks, Requirements

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def row(i: int, **changes) -> DocRow:
    values = dict(
        id=f"doc-{i}",
        source="news",
        url=f"https://example.com/{i}",
        title=f"Title {i}",
        text="A perfectly ordinary article body that is long enough.",
        published_at=NOW - timedelta(hours=1),
        published_estimated=False,
        language="en",
        version=1,
        attempts=0,
    )
    values.update(changes)
    return DocRow(**values)


@pytest.fixture(scope="module")
def checks() -> DocumentChecks:
    return DocumentChecks(min_text_chars=25)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"text": "too short"}, "text under 25 characters"),
        ({"text": "   " + "x" * 10 + "   "}, "text under 25 characters"),
        ({"url": None}, "no URL"),
        ({"url": "ftp://example.com/file"}, "URL is not http(s)"),
        ({"url": "javascript:alert(1)"}, "URL is not http(s)"),
        ({"title": "  "}, "no title"),
        ({"published_at": None}, "no published time"),
        ({"published_at": NOW + timedelta(days=2)}, "published time in the future: 2026-11-26 12:00 UTC"),
        ({"published_at": datetime(1970, 1, 1, tzinfo=UTC)}, "published time before 1990: 1970-01-01"),
        ({"language": None}, "no detected language"),
        # a page of megabytes (3.6 M characters of paragraphs) would be 12,500 chunks to embed: quarantined whole
        ({"text": "A paragraph of a hostile page. " * 120_000}, "text over 200,000 characters (KUP_MAX_TEXT_CHARS)"),
    ],
)
def test_each_check_names_what_is_wrong(checks, changes, reason) -> None:
    failed, summary = checks.check([row(0), row(1, **changes)], now=NOW)
    assert failed == {"doc-1": [reason]}
    assert summary.checked == 2 and summary.passed == 1
    assert summary.failures == {reason.split(":")[0]: 1}


def test_small_future_skew_is_allowed_and_ids_must_be_unique(checks) -> None:
    failed, _ = checks.check([row(0, published_at=NOW + timedelta(minutes=5))], now=NOW)
    assert failed == {}
    failed, _ = checks.check([row(0), row(0)], now=NOW)
    assert failed == {"doc-0": ["id repeated within the batch"]}


def test_requirements_follow_the_source(checks) -> None:
    bare = row(2, source="wiki", url=None, title="")
    failed, _ = checks.check([bare], {"wiki": Requirements(url=False, title=False)}, now=NOW)
    assert failed == {}
    failed, _ = checks.check([bare], {}, now=NOW)
    assert failed == {"doc-2": ["no URL", "no title"]}


def test_several_failures_are_all_reported_and_deletions_skip_checks(checks) -> None:
    failed, summary = checks.check([row(3, text="", title="", language=None), row(4, text="", deleted=True)], now=NOW)
    assert failed == {"doc-3": ["text under 25 characters", "no title", "no detected language"]}
    assert summary.as_dict() == {
        "checked": 2,
        "passed": 1,
        "quarantined": 1,
        "failures": {"text under 25 characters": 1, "no title": 1, "no detected language": 1},
    }


def test_indexer_quarantines_failures_and_indexes_the_rest(tmp_path, dense, sparse, checks) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    store = EdgeStore(tmp_path / "index")
    good = Document(
        source="news",
        external_id="good",
        text="Ferries resumed after the storm " * 5,
        title="Good",
        url="https://example.com/good",
        published_at=NOW,
        language="en",
    )
    future = Document(
        source="news",
        external_id="future",
        text="From the future " * 5,
        title="Odd",
        url="https://example.com/odd",
        published_at=datetime.now(UTC) + timedelta(days=3),
        language="en",
    )
    catalog.upsert_documents([good, future])
    indexer = Indexer(catalog, store, Chunker(dense.tokenize), dense, sparse, checks=checks)
    report = indexer.run()
    assert report.documents == 1 and report.quarantined == 1
    assert report.checks["failures"] == {"published time in the future": 1}
    assert catalog.document(future.id)["status"] == "quarantined"
    assert catalog.document(future.id)["last_error"].startswith("failed checks: published time in the future")
    assert {p.payload["doc_id"] for p in store.scan()} == {good.id}
    # A corrected version passes and is indexed.
    future.published_at = datetime.now(UTC)
    catalog.upsert_documents([future])
    assert indexer.run().documents == 1
    assert catalog.document(future.id)["status"] == "indexed"
    catalog.close()

"""Syndicated stories in the catalog, on SQLite and PostgreSQL: copies join, follow-ups and distractors do not."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

from connectors import Document

ARTICLES = Path(__file__).parents[3] / "bench" / "data" / "hardnews" / "articles.jsonl"
T0 = datetime(2026, 9, 24, 8, 0, tzinfo=UTC)


@cache
def _articles() -> dict[str, dict]:
    return {a["id"]: a for a in map(json.loads, ARTICLES.read_text().splitlines())}


def doc(article_id: str, outlet: str, at: datetime, *, url: str | None = None, text: str | None = None) -> Document:
    article = _articles()[article_id]
    url = url or f"https://{outlet}.example/{article_id}"
    return Document(
        source=outlet, external_id=url, text=text or article["text"], title=article["title"], url=url, published_at=at
    )


def story_of(catalog, d: Document) -> str | None:
    return catalog.document(d.id)["story_id"]


def test_identical_text_under_two_urls_is_one_story_named_after_the_earliest(catalog) -> None:
    first = doc("hn-0106", "ledger", T0)
    copy = doc("hn-0106", "lantern", T0 + timedelta(hours=3))
    catalog.upsert_documents([copy])
    assert story_of(catalog, copy) == copy.id
    catalog.upsert_documents([first])  # the earlier one arrives later: the story is renamed after it
    assert story_of(catalog, first) == story_of(catalog, copy) == first.id
    assert catalog.story_members([first.id]) == {first.id: [("ledger", first.url), ("lantern", copy.url)]}


def test_a_paraphrase_joins_while_a_follow_up_and_a_distractor_do_not(catalog) -> None:
    original = doc("hn-0106", "ledger", T0)
    paraphrase = doc("hn-0114", "courier", T0 + timedelta(hours=10))  # reworded, reordered, same facts
    follow_up = doc("hn-0185", "ledger", T0 + timedelta(hours=20))  # same closure, a changed fact, within 48 h
    catalog.upsert_documents([original, paraphrase, follow_up])
    assert story_of(catalog, paraphrase) == original.id
    assert story_of(catalog, follow_up) == follow_up.id
    bridge = doc("hn-0212", "post", T0)  # two bridge closures in the same town, same hour
    other_bridge = doc("hn-0321", "wire", T0 + timedelta(hours=1))
    catalog.upsert_documents([bridge, other_bridge])
    assert story_of(catalog, bridge) != story_of(catalog, other_bridge)


def test_reassigning_changes_nothing_and_requeues_nobody(catalog) -> None:
    docs = [doc("hn-0106", "ledger", T0), doc("hn-0112", "lantern", T0 + timedelta(hours=5))]
    docs.append(doc("hn-0114", "courier", T0 + timedelta(hours=9)))
    catalog.upsert_documents(docs)
    before = {d.id: (story_of(catalog, d), catalog.document(d.id)["version"]) for d in docs}
    assert len({s for s, _ in before.values()}) == 1
    assert catalog.assign_stories([d.id for d in docs]) == 3
    assert {d.id: (story_of(catalog, d), catalog.document(d.id)["version"]) for d in docs} == before


def test_a_date_only_update_keeps_the_story_and_refreshes_the_other_members(catalog) -> None:
    first = doc("hn-0106", "ledger", T0)
    copy = doc("hn-0106", "lantern", T0 + timedelta(hours=2))
    catalog.upsert_documents([first, copy])
    claimed = catalog.claim_pending("test:1", 10)
    catalog.mark_indexed("test:1", [(d.id, d.version, 1) for d in claimed])
    assert {d.story for d in claimed} == {(("ledger", first.url), ("lantern", copy.url))}
    version = catalog.document(first.id)["version"]
    redated = doc("hn-0106", "lantern", T0 + timedelta(days=9))  # out of the window, but near-identical
    assert catalog.upsert_documents([redated]) == {copy.id: "updated"}
    assert story_of(catalog, redated) == first.id
    # The other member goes back to the indexer (a payload-only rewrite) with a new version.
    row = catalog.document(first.id)
    assert row["status"] == "pending" and row["version"] == version + 1


def test_an_edited_or_deleted_document_leaves_its_story(catalog) -> None:
    first = doc("hn-0106", "ledger", T0)
    copy = doc("hn-0112", "lantern", T0 + timedelta(hours=5))
    third = doc("hn-0114", "courier", T0 + timedelta(hours=9))
    catalog.upsert_documents([first, copy, third])
    assert {story_of(catalog, d) for d in (first, copy, third)} == {first.id}
    rewritten = doc("hn-0106", "ledger", T0, text=_articles()["hn-0321"]["text"])  # now another story's text
    catalog.upsert_documents([rewritten])
    assert story_of(catalog, first) == first.id
    assert story_of(catalog, copy) == story_of(catalog, third) == copy.id  # renamed after its earliest member
    catalog.mark_deleted("courier", [third.external_id])
    assert story_of(catalog, third) is None
    assert catalog.story_members([copy.id]) == {copy.id: [("lantern", copy.url)]}


def test_database_rows_are_not_fingerprinted_into_stories(catalog) -> None:
    article = doc("hn-0106", "ledger", T0)
    rows = [
        Document(source="tickets", external_id=str(n), text=article.text, title="t", extraction="row", published_at=T0)
        for n in range(2)
    ]
    catalog.upsert_documents([article, *rows])
    assert story_of(catalog, article) == article.id
    assert [story_of(catalog, r) for r in rows] == [None, None]  # identical text, yet no story: rows are not news
    assert catalog.assign_stories() == 0  # and nothing is left to assign later


def test_a_story_of_many_copies_shingles_each_member_about_once(catalog, monkeypatch) -> None:
    import indexing.catalog.story_assignment as stories

    stories._confirming.cache_clear()
    made = []
    real = stories.fingerprint
    monkeypatch.setattr(stories, "fingerprint", lambda text, **kw: made.append(kw) or real(text, **kw))
    copies = [doc("hn-0106", f"outlet{i}", T0 + timedelta(minutes=10 * i)) for i in range(12)]
    for copy in copies:  # one at a time, as refreshes bring them
        catalog.upsert_documents([copy])
    assert len({story_of(catalog, c) for c in copies}) == 1
    confirming = sum(1 for kw in made if kw.get("bands") is False)
    assert confirming <= 2 * len(copies)  # not the 66 pairs a story of 12 copies has

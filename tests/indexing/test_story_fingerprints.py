"""The story detector, and stories through indexing and search: every outlet on every point."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cli.views import search_data
from connectors import Document
from indexing import Catalog, Chunker, EdgeStore, Indexer, search
from indexing.story_fingerprints import BANDS, fingerprint, same_story

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
STORY = (
    "The council in Harlow Vale approved 14.5 million crowns on Monday for a new swimming pool, "
    "to be built by Ostrey Builders and finished by June 2028. Six firms bid for the work. "
    "Councillor Mara Quill said the old pool, opened in 1961, had been closed since March."
)


def test_fingerprints_are_deterministic_with_one_key_per_band() -> None:
    a, b = fingerprint(STORY), fingerprint(STORY)
    assert a == b and len(a.band_keys) == BANDS == 64
    assert a.band_keys[:2] == (3159412465998882222, -4793149681955635159)  # stored keys: must never drift
    assert {"14.5", "2028", "1961"} <= a.numbers
    assert fingerprint("").band_keys == ()


def test_same_story_needs_the_window_the_words_and_the_numbers() -> None:
    copy = fingerprint(STORY.replace("on Monday", "this week"))
    original = fingerprint(STORY)
    assert same_story(original, T0, copy, T0 + timedelta(hours=6)) is not None
    changed = fingerprint(STORY.replace("14.5 million", "19.8 million").replace("June 2028", "May 2029"))
    assert same_story(original, T0, changed, T0 + timedelta(hours=6)) is None  # a follow-up: other figures
    redated = fingerprint(STORY)
    assert same_story(original, T0, redated, T0 + timedelta(days=30)) == 1.0  # identical: dates do not matter


def _doc(outlet: str, hours: int, text: str = STORY) -> Document:
    url = f"https://{outlet}.example/pool"
    return Document(
        source=outlet,
        external_id=url,
        text=text,
        title="Pool approved",
        url=url,
        published_at=T0 + timedelta(hours=hours),
    )


@pytest.fixture
def parts(tmp_path, dense, sparse):
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    store = EdgeStore(tmp_path / "index" / "kup")
    indexer = Indexer(catalog, store, Chunker(dense.tokenize, chunk_tokens=200, overlap_tokens=32), dense, sparse)
    yield catalog, store, indexer
    catalog.close()


def test_a_new_copy_puts_its_url_on_the_earlier_points_and_search_shows_every_outlet(parts, dense, sparse) -> None:
    catalog, store, indexer = parts
    catalog.upsert_documents([_doc("ledger", 0)])
    assert indexer.run().embedded >= 1
    catalog.upsert_documents([_doc("lantern", 3)])
    report = indexer.run()
    assert report.documents == 2  # the copy, and the earlier member whose payload gains the copy's URL
    assert report.embedded == 1 == report.unchanged  # the copy is embedded; the member only gets a new payload
    payloads = [p.payload for p in store.scan()]
    assert {p["story_id"] for p in payloads} == {_doc("ledger", 0).id}
    assert all(
        p["story_urls"] == ["https://ledger.example/pool", "https://lantern.example/pool"]
        and p["story_sources"] == ["ledger", "lantern"]
        for p in payloads
    )
    other = STORY.replace("swimming pool", "library").replace("14.5", "3.1").replace("2028", "2027")
    catalog.upsert_documents([_doc("courier", 4, other)])
    indexer.run()
    everything = search(store, dense, sparse, "swimming pool Harlow Vale", limit=3)
    assert len({h.payload["story_id"] for h in everything.hits}) < 3  # search keeps both copies of a story
    view = search_data(everything)["hits"]
    shown = next(h for h in view if h["story_id"] == _doc("ledger", 0).id)
    assert shown["also_in"] == [s for s in ("ledger", "lantern") if s != shown["source"]]

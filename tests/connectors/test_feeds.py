"""Feeds to Documents against a real local server: formats, conditional GET, fallbacks, encodings, ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors import FeedState, document_id, pull_feed
from connectors.feeds import canonical_url, parse_feed
from errors import SourceError
from fixtures import Item, article_html, atom, paragraphs, rss, rss1

RSS_TYPE = "application/rss+xml"
WHEN = datetime(2026, 3, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))  # 12:30 UTC


def publish(server, count: int = 2, *, builder=rss, path: str = "/feed.xml", when=WHEN, **route) -> list[Item]:
    """Serve a feed at ``path`` whose items link to article pages on the same server."""
    items = []
    for i in range(count):
        page = f"/article/{i}"
        server.set(page, article_html(f"Story {i}", paragraphs(i)))
        items.append(
            Item(
                f"Story {i}",
                link=server.url(page),
                guid=f"story-{i}",
                published=when + timedelta(hours=i),
                summary=f"Summary of story {i}.",
                author="Jane Reporter",
            )
        )
    server.set(path, builder(items), content_type=route.pop("content_type", RSS_TYPE), **route)
    return items


def article_hits(server) -> int:
    return sum(n for path, n in server.hits.items() if path.startswith("/article/"))


# -- formats -----------------------------------------------------------------------------------


def test_rss2_items_become_documents_with_their_article_text(server, fetcher, feed_source) -> None:
    publish(server, 2, etag='"v1"')

    pull = pull_feed(feed_source(), fetcher, FeedState())

    assert (pull.failures, pull.warnings, pull.duplicates, pull.unchanged) == ([], [], 0, 0)
    assert pull.state.etag == '"v1"' and not pull.not_modified
    assert len(pull.documents) == 2
    doc = pull.documents[0]
    assert doc.extraction == "article" and doc.extraction_note is None
    assert paragraphs(0)[0] in doc.text and paragraphs(0)[-1] in doc.text
    assert "Copyright Test News" not in doc.text and "Summary of story" not in doc.text
    assert doc.title == "Story 0"
    assert doc.published_at == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert doc.published_at.utcoffset() == timedelta(0)
    assert doc.author == "Jane Reporter"
    assert doc.language == "en"
    assert doc.external_id == "story-0" and doc.source == "test-feed"
    assert doc.url == server.url("/article/0")
    assert doc.id == document_id("test-feed", "story-0")
    assert doc.entry_hash
    assert pull.documents[1].published_at == datetime(2026, 3, 1, 13, 30, tzinfo=UTC)
    assert article_hits(server) == 2


def test_atom_entries_become_documents(server, fetcher, feed_source) -> None:
    # the atom and rss1 builders write the wall-clock time with a "Z", so they are given UTC times
    publish(server, 2, builder=atom, content_type="application/atom+xml", when=WHEN.astimezone(UTC))

    pull = pull_feed(feed_source(), fetcher, FeedState())

    assert [d.title for d in pull.documents] == ["Story 0", "Story 1"]
    doc = pull.documents[0]
    assert doc.extraction == "article" and paragraphs(0)[2] in doc.text
    assert doc.published_at == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert doc.author == "Test Author"  # Atom entries here carry none, so the page's meta author stands in
    assert doc.language == "en"
    assert len({d.id for d in pull.documents}) == 2


def test_rss1_rdf_items_become_documents(server, fetcher, feed_source) -> None:
    publish(server, 2, builder=rss1, content_type="application/rdf+xml", when=WHEN.astimezone(UTC))

    pull = pull_feed(feed_source(), fetcher, FeedState())

    assert [d.title for d in pull.documents] == ["Story 0", "Story 1"]
    assert pull.documents[1].published_at == datetime(2026, 3, 1, 13, 30, tzinfo=UTC)  # from dc:date
    assert pull.documents[1].extraction == "article" and paragraphs(1)[0] in pull.documents[1].text
    assert pull.warnings == []


def test_rss091_items_become_documents(server, fetcher, feed_source) -> None:
    server.set("/article/0", article_html("Old school", paragraphs(7)))
    server.set(
        "/feed.xml",
        '<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        ' "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n<rss version="0.91"><channel>'
        "<title>Old</title><link>http://example.com/</link><description>d</description><language>en-us</language>"
        f"<item><title>Old school</title><link>{server.url('/article/0')}</link>"
        "<description>An RSS 0.91 item.</description></item></channel></rss>",
        content_type=RSS_TYPE,
    )

    pull = pull_feed(feed_source(), fetcher, FeedState())

    assert len(pull.documents) == 1
    doc = pull.documents[0]
    assert doc.title == "Old school" and doc.extraction == "article" and paragraphs(7)[1] in doc.text
    assert doc.external_id == server.url("/article/0")  # no guid in 0.91: the link is the id
    assert doc.published_at is None


@pytest.mark.parametrize(
    "broken",
    [
        "<description>fish & chips</description>",  # an unescaped ampersand
        "<description>ok</description></item></channel></rss></wrong>",  # a stray closing tag at the end
    ],
)
def test_a_bozo_feed_that_still_has_entries_yields_documents_and_a_warning(server, fetcher, feed_source, broken):
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        "<item><title>Fine</title><guid>fine</guid><description>All good here.</description></item>"
        f"<item><title>Broken</title><guid>broken</guid>{broken}"
    )
    if "</rss>" not in broken:
        body += "</item></channel></rss>"
    server.set("/feed.xml", body, content_type=RSS_TYPE)

    pull = pull_feed(feed_source(), fetcher, FeedState())

    assert [d.external_id for d in pull.documents] == ["fine", "broken"]
    assert len(pull.warnings) == 1 and "malformed but usable" in pull.warnings[0]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"\x00\x01 this is { not xml at all", "application/xml", "not well-formed"),
        (b"<html><head><title>Home</title></head><body><p>Welcome</p></body></html>", "text/html", "text/html"),
        (b"<?xml version='1.0'?><catalog><book>Not a feed</book></catalog>", "application/xml", "feed.xml is"),
        (b"", RSS_TYPE, "feed.xml is"),
    ],
)
def test_an_unusable_feed_is_a_source_error(server, fetcher, feed_source, body, content_type, message) -> None:
    server.set("/feed.xml", body, content_type=content_type)

    with pytest.raises(SourceError, match="is not an RSS or Atom feed") as caught:
        pull_feed(feed_source(), fetcher, FeedState())

    assert message in str(caught.value)


def test_a_feed_that_cannot_be_fetched_is_a_source_error_naming_the_source(fetcher, feed_source) -> None:
    with pytest.raises(SourceError, match="feed test-feed: HTTP 404"):
        pull_feed(feed_source("/nothing-here"), fetcher, FeedState())


def test_a_valid_feed_with_no_items_is_an_empty_pull(server, fetcher, feed_source) -> None:
    publish(server, 0)

    pull = pull_feed(feed_source(), fetcher, FeedState())

    assert pull.documents == [] and pull.failures == [] and not pull.not_modified


# -- conditional GET and skipping known entries -------------------------------------------------


@pytest.mark.parametrize("validator", ["etag", "last_modified"])
def test_an_unchanged_feed_answers_304_and_fetches_nothing(server, fetcher, feed_source, validator) -> None:
    route = {"etag": '"abc"'} if validator == "etag" else {"last_modified": "Sun, 01 Mar 2026 12:00:00 GMT"}
    publish(server, 2, **route)
    first = pull_feed(feed_source(), fetcher, FeedState())
    assert len(first.documents) == 2 and article_hits(server) == 2

    state = FeedState.from_cursor(first.state.to_cursor())
    second = pull_feed(feed_source(), fetcher, state)

    assert second.not_modified and second.documents == [] and second.failures == []
    assert second.state == first.state
    assert article_hits(server) == 2
    assert server.hits["/feed.xml"] == 2


def test_known_entries_are_counted_unchanged_and_not_fetched_again(server, fetcher, feed_source) -> None:
    items = publish(server, 3)
    first = pull_feed(feed_source(), fetcher, FeedState())
    catalog = {d.external_id: d.entry_hash for d in first.documents}
    asked: list[list[str]] = []

    def known(ids: list[str]) -> dict[str, str]:
        asked.append(ids)
        return {i: catalog[i] for i in ids if i in catalog}

    second = pull_feed(feed_source(), fetcher, FeedState(), known)
    assert asked == [["story-0", "story-1", "story-2"]]
    assert second.unchanged == 3 and second.documents == []
    assert article_hits(server) == 3

    items[1].summary = "A corrected summary."  # the entry changed, so its fingerprint did
    server.set("/feed.xml", rss(items), content_type=RSS_TYPE)
    third = pull_feed(feed_source(), fetcher, FeedState(), known)
    assert third.unchanged == 2 and [d.external_id for d in third.documents] == ["story-1"]
    assert server.hits["/article/1"] == 2 and server.hits["/article/0"] == 1


# -- article fallbacks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page", "note"),
    [
        ({"body": "gone", "status": 404}, "HTTP 404"),
        ({"body": "broken", "status": 500}, "HTTP 500"),
        (
            {"body": '<html><body><nav><a href="/">Home</a> <a href="/world">World</a></nav></body></html>'},
            "no extractable text",
        ),
        ({"body": b"%PDF-1.7", "content_type": "application/pdf"}, "application/pdf, not HTML"),
    ],
)
def test_an_article_page_that_fails_falls_back_to_the_feed_text(server, fetcher, feed_source, page, note) -> None:
    publish(server, 2)
    server.set("/article/1", **page)

    pull = pull_feed(feed_source(), fetcher, FeedState())

    good, fallback = pull.documents
    assert good.extraction == "article"
    assert fallback.extraction == "feed" and note in fallback.extraction_note
    assert fallback.text == "Summary of story 1."
    assert fallback.title == "Story 1" and fallback.author == "Jane Reporter"
    assert fallback.published_at == datetime(2026, 3, 1, 13, 30, tzinfo=UTC)
    assert pull.failures == []


def test_an_item_without_a_link_uses_its_feed_text(server, fetcher, feed_source) -> None:
    items = [Item("Linkless", summary="<p>The whole story is <b>right here</b> in the feed itself.</p>")]
    server.set("/feed.xml", rss(items), content_type=RSS_TYPE)

    first = pull_feed(feed_source(), fetcher, FeedState())
    second = pull_feed(feed_source(), fetcher, FeedState())

    (doc,) = first.documents
    assert doc.extraction == "feed" and doc.extraction_note == "entry has no link"
    assert doc.text == "The whole story is right here in the feed itself."
    assert doc.url is None and doc.external_id.startswith("sha256:")
    assert second.documents[0].id == doc.id  # a content-derived id is stable too


def test_article_fetching_can_be_turned_off(server, fetcher, feed_source) -> None:
    publish(server, 2)

    pull = pull_feed(feed_source(fetch_articles=False), fetcher, FeedState())

    assert [d.extraction for d in pull.documents] == ["feed", "feed"]
    assert "off" in pull.documents[0].extraction_note
    assert article_hits(server) == 0


def test_items_that_cannot_become_documents_are_failures_and_the_rest_goes_on(server, fetcher, feed_source) -> None:
    server.set("/article/0", article_html("Story 0", paragraphs(0)))
    server.set(
        "/feed.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<item><pubDate>Sun, 01 Mar 2026 12:00:00 GMT</pubDate></item>"  # nothing to go on
        '<item><guid isPermaLink="false">only-a-guid</guid></item>'  # an id, but no text and no link
        f"<item><title>Story 0</title><link>{server.url('/article/0')}</link></item>"
        "</channel></rss>",
        content_type=RSS_TYPE,
    )

    pull = pull_feed(feed_source(), fetcher, FeedState())

    assert [d.title for d in pull.documents] == ["Story 0"]
    empty, no_text = pull.failures
    assert empty.external_id == "(empty entry)" and "no id, link, title or text" in empty.reason
    assert no_text.external_id == "only-a-guid" and "no text" in no_text.reason and "no link" in no_text.reason


def test_items_without_dates_have_no_published_at(server, fetcher, feed_source) -> None:
    server.set("/feed.xml", rss([Item("Undated", guid="u1", summary="No date on this one.")]), content_type=RSS_TYPE)

    (doc,) = pull_feed(feed_source(), fetcher, FeedState()).documents

    assert doc.published_at is None


def test_duplicate_guids_yield_one_document(server, fetcher, feed_source) -> None:
    items = [
        Item("First", guid="same", summary="The first copy."),
        Item("Second", guid="same", summary="The second copy."),
        Item("Other", guid="other", summary="Another item."),
    ]
    server.set("/feed.xml", rss(items), content_type=RSS_TYPE)

    pull = pull_feed(feed_source(), fetcher, FeedState())

    assert [d.title for d in pull.documents] == ["First", "Other"]
    assert pull.duplicates == 1


def test_max_items_caps_the_entries_read(server, fetcher, feed_source) -> None:
    publish(server, 3)

    pull = pull_feed(feed_source(max_items=2), fetcher, FeedState())

    assert [d.external_id for d in pull.documents] == ["story-0", "story-1"]
    assert server.hits["/article/2"] == 0


def test_an_unusable_item_link_does_not_sink_the_feed(server, fetcher, feed_source) -> None:
    publish(server, 1)
    items = [
        Item("Good", link=server.url("/article/0"), guid="good"),
        Item("Bad port", link="http://127.0.0.1:99999/x", guid="bad-port", summary="Port out of range."),
        Item("Bad host", link="http://[::1/x", guid="bad-host", summary="A broken IPv6 literal."),
    ]
    server.set("/feed.xml", rss(items), content_type=RSS_TYPE)

    pull = pull_feed(feed_source(), fetcher, FeedState())

    good, bad_port, bad_host = pull.documents
    assert good.extraction == "article"
    assert bad_port.extraction == "feed" and "refused" in bad_port.extraction_note
    assert bad_host.extraction == "feed" and bad_host.url is None and bad_host.text == "A broken IPv6 literal."


# -- encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["iso-8859-1", "windows-1252"])
@pytest.mark.parametrize("content_type", [RSS_TYPE, "text/xml"])
def test_a_non_utf8_feed_is_decoded_by_its_declaration(server, fetcher, feed_source, encoding, content_type) -> None:
    items = [Item("Café culture", guid="c1", summary="A naïve review of the café on the corner.")]
    server.set("/feed.xml", rss(items, encoding=encoding).encode(encoding), content_type=content_type)

    pull = pull_feed(feed_source(), fetcher, FeedState())

    (doc,) = pull.documents
    assert doc.title == "Café culture"
    assert doc.text == "A naïve review of the café on the corner."
    assert pull.warnings == []  # text/xml without a charset follows the XML declaration (RFC 7303)


def test_a_latin1_article_page_is_decoded_by_its_content_type_header(server, fetcher, feed_source) -> None:
    publish(server, 1)
    lines = [f"The \u201cnaïve\u201d café owner said \u2014 plainly \u2014 that {p}" for p in paragraphs(3)]
    page = article_html("Café story", lines, charset=None).encode("cp1252")  # cp1252 quotes, labelled latin-1
    assert b"charset" not in page and b"\xe9" in page
    server.set("/article/0", page, content_type="text/html; charset=iso-8859-1")

    (doc,) = pull_feed(feed_source(), fetcher, FeedState()).documents

    assert doc.extraction == "article"
    assert "The \u201cnaïve\u201d café owner said \u2014 plainly \u2014 that" in doc.text


def test_a_quoted_charset_parameter_is_honoured(server, fetcher, feed_source) -> None:
    publish(server, 1)
    page = article_html("Naïve", [f"Naïve café {p}" for p in paragraphs(4)], charset=None).encode("latin-1")
    server.set("/article/0", page, content_type='text/html; charset="ISO-8859-1"')

    (doc,) = pull_feed(feed_source(), fetcher, FeedState()).documents

    assert "Naïve café" in doc.text


# -- politeness and guards ---------------------------------------------------------------------


def test_a_source_that_points_at_a_private_address_is_refused(server, fetcher, feed_source) -> None:
    publish(server, 1)

    with pytest.raises(SourceError, match="non-public address") as caught:
        pull_feed(feed_source(allow_private_addresses=False), fetcher, FeedState())

    assert "allow_private_addresses" in str(caught.value) and "test-feed" in str(caught.value)
    assert server.hits["/feed.xml"] == 0


def test_an_article_disallowed_by_robots_txt_falls_back_to_feed_text(server, fetcher, feed_source) -> None:
    publish(server, 2)
    server.set("/robots.txt", "User-agent: *\nDisallow: /article/1\n", content_type="text/plain")

    pull = pull_feed(feed_source(), fetcher, FeedState())

    allowed, blocked = pull.documents
    assert allowed.extraction == "article"
    assert blocked.extraction == "feed" and "robots.txt" in blocked.extraction_note
    assert blocked.text == "Summary of story 1."
    assert server.hits["/article/1"] == 0 and server.hits["/robots.txt"] == 1


def test_an_oversized_article_page_falls_back_to_feed_text(server, make_fetcher, feed_source) -> None:
    publish(server, 2)
    server.set("/article/1", article_html("Huge", paragraphs(1, count=200)))

    pull = pull_feed(feed_source(), make_fetcher(max_bytes=20_000), FeedState())

    assert pull.documents[0].extraction == "article"
    assert pull.documents[1].extraction == "feed" and "20000-byte cap" in pull.documents[1].extraction_note


def test_relative_item_links_resolve_against_the_final_feed_url(server, fetcher, feed_source) -> None:
    server.set("/news/article/9", article_html("Relative", paragraphs(9)))
    server.set("/old-feed", status=301, headers={"Location": "/news/feed.xml"})
    server.set("/news/feed.xml", rss([Item("Relative", link="article/9", guid="r9")]), content_type=RSS_TYPE)

    (doc,) = pull_feed(feed_source("/old-feed"), fetcher, FeedState()).documents

    assert doc.url == server.url("/news/article/9") and doc.extraction == "article"


def test_guids_do_not_depend_on_where_the_feed_is_served(server, fetcher, feed_source) -> None:
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        "<item><title>Opaque</title><guid>12345</guid><description>A permalink-style guid.</description></item>"
        "</channel></rss>"
    )
    server.set("/v1/feed.xml", body, content_type=RSS_TYPE)
    server.set("/v2/feed.xml", body, content_type=RSS_TYPE)

    (old,) = pull_feed(feed_source("/v1/feed.xml"), fetcher, FeedState()).documents
    (new,) = pull_feed(feed_source("/v2/feed.xml"), fetcher, FeedState()).documents

    assert old.external_id == new.external_id == "12345" and old.id == new.id


# -- identity ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://Example.COM/a/b?id=7&utm_source=rss&utm_medium=feed#comments", "http://example.com/a/b?id=7"),
        ("https://example.com?fbclid=abc", "https://example.com/"),
        ("https://example.com/p?b=2&a=1&flag&q=a%2Fb", "https://example.com/p?b=2&a=1&flag&q=a%2Fb"),
        ("https://example.com/p?UTM_Campaign=x&gclid=y&keep=1", "https://example.com/p?keep=1"),
    ],
)
def test_canonical_url(url, canonical) -> None:
    assert canonical_url(url) == canonical


def test_item_links_are_canonicalised_before_fetching(server, fetcher, feed_source) -> None:
    server.set("/article/0", article_html("Tracked", paragraphs(0)))
    link = server.url("/article/0") + "?utm_source=feed&utm_campaign=spring#top"
    server.set("/feed.xml", rss([Item("Tracked", link=link)]), content_type=RSS_TYPE)

    (doc,) = pull_feed(feed_source(), fetcher, FeedState()).documents

    assert doc.url == server.url("/article/0") and doc.external_id == doc.url
    assert "/article/0" in [path for path, _ in server.requests]


def test_document_ids_are_stable_and_content_hash_follows_the_text(server, fetcher, feed_source) -> None:
    publish(server, 2)
    first = pull_feed(feed_source(), fetcher, FeedState()).documents
    second = pull_feed(feed_source(), fetcher, FeedState()).documents

    assert [d.id for d in first] == [d.id for d in second]
    assert [d.content_hash for d in first] == [d.content_hash for d in second]

    server.set("/article/1", article_html("Story 1", paragraphs(101)))  # the article was rewritten
    third = pull_feed(feed_source(), fetcher, FeedState()).documents

    assert [d.id for d in third] == [d.id for d in first]
    assert third[0].content_hash == first[0].content_hash
    assert third[1].content_hash != first[1].content_hash
    assert pull_feed(feed_source(name="other"), fetcher, FeedState()).documents[0].id != first[0].id


def test_parse_feed_returns_raw_entries_and_the_complaint(server) -> None:
    entries, complaint = parse_feed(rss([Item("One", guid="1")]).encode(), url="http://example.com/feed")
    assert [e["title"] for e in entries] == ["One"] and complaint is None

    entries, complaint = parse_feed(b"<rss version='2.0'><channel><item><title>A & B</title></item>", url="u")
    assert [e["title"] for e in entries] == ["A & B"] and "not well-formed" in complaint

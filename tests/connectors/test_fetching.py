"""The polite fetcher against a real local HTTP server: caching, limits, retries, redirects, guards, robots."""

from __future__ import annotations

import gzip
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connectors.fetching import MAX_RETRY_AFTER_SECONDS
from errors import FetchError
from fixtures import Route


def timed(call, *args, **kwargs):
    """``call``'s outcome (result or FetchError) and how long it took."""
    start = time.monotonic()
    try:
        outcome = call(*args, **kwargs)
    except FetchError as exc:
        outcome = exc
    return outcome, time.monotonic() - start


# -- plain answers and conditional GET ---------------------------------------------------------


def test_get_returns_body_status_and_headers_and_sends_our_user_agent(server, fetcher) -> None:
    url = server.set("/hello", "hello, world", content_type="text/plain; charset=utf-8")

    result = fetcher.get(url, allow_private=True)

    assert (result.status, result.content, result.not_modified) == (200, b"hello, world", False)
    assert result.content_type == "text/plain; charset=utf-8"
    assert result.url == result.final_url == url
    path, headers = server.requests[-1]
    assert path == "/hello"
    assert headers["user-agent"].startswith("kup/") and headers["user-agent"] == fetcher.policy.user_agent
    assert headers["accept"] == "*/*"


def test_etag_round_trip_answers_304_not_modified(server, fetcher) -> None:
    url = server.set("/feed", "<rss/>", etag='"v1"')

    first = fetcher.get(url, allow_private=True)
    second = fetcher.get(url, allow_private=True, etag=first.etag)
    stale = fetcher.get(url, allow_private=True, etag='"v0"')

    assert first.status == 200 and first.etag == '"v1"'
    assert second.not_modified and second.status == 304 and second.content == b""
    assert server.requests[1][1]["if-none-match"] == '"v1"'
    assert stale.status == 200 and stale.content == b"<rss/>"
    assert server.hits["/feed"] == 3


def test_last_modified_round_trip_answers_304_not_modified(server, fetcher) -> None:
    stamp = format_datetime(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), usegmt=True)
    url = server.set("/feed", "<rss/>", last_modified=stamp)

    first = fetcher.get(url, allow_private=True)
    second = fetcher.get(url, allow_private=True, last_modified=first.last_modified)

    assert first.status == 200 and first.last_modified == stamp
    assert second.not_modified
    assert server.requests[1][1]["if-modified-since"] == stamp


# -- timeouts and size caps --------------------------------------------------------------------


def test_a_server_slower_than_read_timeout_is_a_transient_error_and_is_retried(server, make_fetcher) -> None:
    url = server.set("/slow", "late", delay=1.0)
    fetcher = make_fetcher(read_timeout=0.2, retries=1)

    error, elapsed = timed(fetcher.get, url, allow_private=True)

    assert isinstance(error, FetchError) and error.transient
    assert "timed out" in str(error)
    assert server.hits["/slow"] == 2  # the timeout was retried once, then given up
    assert elapsed < 0.9


def test_a_slow_drip_is_cut_off_at_total_timeout(server, make_fetcher) -> None:
    url = server.set("/drip", "x" * 3000, drip=0.05)  # 30 pieces, 1.5 s in all, each well inside read_timeout
    fetcher = make_fetcher(total_timeout=0.4, retries=0)

    error, elapsed = timed(fetcher.get, url, allow_private=True)

    assert isinstance(error, FetchError) and error.transient
    assert "took longer than 0.4s" in str(error)
    assert elapsed < 1.0


def test_a_declared_content_length_over_the_cap_is_refused(server, make_fetcher) -> None:
    url = server.set("/big", "x" * 5000)
    fetcher = make_fetcher(max_bytes=1000)

    with pytest.raises(FetchError, match="1000-byte cap") as caught:
        fetcher.get(url, allow_private=True)

    assert "5000 bytes" in str(caught.value)
    assert not caught.value.transient
    assert server.hits["/big"] == 1  # a size problem is not retried


def test_a_body_of_exactly_the_cap_is_accepted(server, make_fetcher) -> None:
    url = server.set("/edge", "x" * 1000)

    assert make_fetcher(max_bytes=1000).get(url, allow_private=True).content == b"x" * 1000


def test_the_cap_counts_decoded_bytes_while_streaming(server, make_fetcher) -> None:
    """A small gzip body that inflates past the cap: Content-Length passes, the streaming count stops it."""
    bomb = gzip.compress(b"a" * 200_000)
    assert len(bomb) < 50_000
    gzipped = {"content_type": "text/plain", "headers": {"Content-Encoding": "gzip"}}
    url = server.set("/bomb", bomb, **gzipped)
    small = server.set("/small", gzip.compress(b"b" * 10_000), **gzipped)
    fetcher = make_fetcher(max_bytes=50_000)

    with pytest.raises(FetchError, match="exceeds the 50000-byte cap"):
        fetcher.get(url, allow_private=True)
    assert fetcher.get(small, allow_private=True).content == b"b" * 10_000


# -- redirects ---------------------------------------------------------------------------------


def test_redirects_are_followed_and_relative_locations_resolved(server, fetcher) -> None:
    server.set("/old", status=301, headers={"Location": "/moved"})
    server.set("/moved", status=302, headers={"Location": server.url("/new")})
    server.set("/new", "here", content_type="text/plain")

    result = fetcher.get(server.url("/old"), allow_private=True)

    assert result.content == b"here"
    assert result.url == server.url("/old") and result.final_url == server.url("/new")
    assert [path for path, _ in server.requests] == ["/old", "/moved", "/new"]


def test_a_redirect_loop_is_detected(server, fetcher) -> None:
    server.set("/a", status=302, headers={"Location": "/b"})
    server.set("/b", status=302, headers={"Location": "/a"})

    with pytest.raises(FetchError, match="redirect loop"):
        fetcher.get(server.url("/a"), allow_private=True)

    assert server.hits["/a"] == 1 and server.hits["/b"] == 1


def test_too_many_redirects_are_refused(server, make_fetcher) -> None:
    for i in range(6):
        server.set(f"/r{i}", status=307, headers={"Location": f"/r{i + 1}"})
    server.set("/r6", "end")
    fetcher = make_fetcher(max_redirects=3)

    with pytest.raises(FetchError, match="more than 3 redirects"):
        fetcher.get(server.url("/r0"), allow_private=True)

    assert sum(server.hits.values()) == 4 and server.hits["/r4"] == 0
    assert make_fetcher(max_redirects=6).get(server.url("/r0"), allow_private=True).content == b"end"


def test_a_redirect_without_location_is_an_error(server, fetcher) -> None:
    server.set("/nowhere", status=302)

    with pytest.raises(FetchError, match="without a Location") as caught:
        fetcher.get(server.url("/nowhere"), allow_private=True)
    assert caught.value.status == 302


# -- HTTP errors and retries -------------------------------------------------------------------


def test_404_is_a_permanent_error_and_not_retried(server, fetcher) -> None:
    with pytest.raises(FetchError, match="HTTP 404") as caught:
        fetcher.get(server.url("/missing"), allow_private=True)

    assert caught.value.status == 404 and not caught.value.transient
    assert server.hits["/missing"] == 1


def test_503_with_retry_after_is_retried_until_it_succeeds(server, fetcher) -> None:
    def flaky(_request) -> Route:
        if server.hits["/flaky"] <= 2:
            return Route(b"busy", status=503, headers={"Retry-After": "0"})
        return Route(b"ok", content_type="text/plain")

    server.set("/flaky", handler=flaky)

    result, elapsed = timed(fetcher.get, server.url("/flaky"), allow_private=True)

    assert not isinstance(result, FetchError), result
    assert result.status == 200 and result.content == b"ok"
    assert server.hits["/flaky"] == 3
    assert elapsed < 1.0


def test_a_server_error_that_persists_is_transient_after_the_retries(server, make_fetcher) -> None:
    url = server.set("/down", "oops", status=500)

    with pytest.raises(FetchError, match="HTTP 500") as caught:
        make_fetcher(retries=2).get(url, allow_private=True)

    assert caught.value.status == 500 and caught.value.transient
    assert server.hits["/down"] == 3


@pytest.mark.parametrize("retry_after", ["120", "date"])
def test_a_long_retry_after_is_recorded_not_slept_through(server, fetcher, retry_after) -> None:
    if retry_after == "date":
        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    url = server.set("/limited", "slow down", status=429, headers={"Retry-After": retry_after})

    error, elapsed = timed(fetcher.get, url, allow_private=True)

    assert isinstance(error, FetchError) and error.status == 429 and error.transient
    assert error.retry_after is not None and 100 < error.retry_after <= 120
    assert server.hits["/limited"] == 1
    assert elapsed < 1.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("999999999999", 3600.0),  # overflowed timedelta in the catalog and crashed the refresh
        ("315360000", 3600.0),  # ten years: the source would have been parked for a decade
        ("Fri, 31 Dec 9999 23:59:59 GMT", 3600.0),
        ("Mon, 01 Jan 1990 00:00:00 GMT", 0.0),  # a date in the past means now
        ("  90 ", 90.0),
        ("soon", None),  # garbage is ignored, not guessed at
        ("-5", None),
        ("1e9", None),
        ("Sun, 99 Nov 99999999999 08:49:37 GMT", None),
    ],
)
def test_retry_after_is_parsed_robustly_and_clamped_to_an_hour(server, make_fetcher, header, expected) -> None:
    url = server.set("/limited", "slow down", status=503, headers={"Retry-After": header})

    error, elapsed = timed(make_fetcher(retries=0).get, url, allow_private=True)

    assert isinstance(error, FetchError) and error.status == 503
    assert error.retry_after == expected
    assert elapsed < 1.0
    assert MAX_RETRY_AFTER_SECONDS == 3600.0


# -- SSRF guard and schemes --------------------------------------------------------------------


def test_loopback_is_refused_unless_private_addresses_are_allowed(server, fetcher) -> None:
    url = server.set("/secret", "internal")

    with pytest.raises(FetchError, match="non-public address 127.0.0.1") as caught:
        fetcher.get(url)

    assert "allow_private_addresses" in str(caught.value)
    assert not caught.value.transient
    assert server.hits["/secret"] == 0
    assert fetcher.get(url, allow_private=True).content == b"internal"


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.1.1:8080/admin",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/",
        "http://2130706433/",  # 127.0.0.1 spelled as one number
        "http://0.0.0.0/",
    ],
)
def test_private_and_special_addresses_are_refused_without_connecting(make_fetcher, url) -> None:
    fetcher = make_fetcher(connect_timeout=5.0, retries=2)

    error, elapsed = timed(fetcher.get, url)

    assert isinstance(error, FetchError) and "non-public address" in str(error)
    assert elapsed < 0.5  # a connection attempt to 10.0.0.1 would hang until connect_timeout


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/file", "gopher://example.com/", "javascript:alert(1)", "http:///no-host"],
)
def test_only_http_urls_are_fetched(fetcher, url) -> None:
    with pytest.raises(FetchError, match=r"only http\(s\) URLs"):
        fetcher.get(url, allow_private=True)


def test_every_redirect_hop_passes_the_guard(server, fetcher) -> None:
    server.set("/to-file", status=302, headers={"Location": "file:///etc/passwd"})

    with pytest.raises(FetchError, match=r"refused 'file:///etc/passwd'"):
        fetcher.get(server.url("/to-file"), allow_private=True)


@pytest.mark.parametrize("url", ["http://example.com:99999/", "http://[::1/"])
def test_an_unparsable_url_is_a_fetch_error_not_a_crash(fetcher, url) -> None:
    with pytest.raises(FetchError, match="refused"):
        fetcher.get(url)


# -- robots.txt --------------------------------------------------------------------------------


def test_robots_txt_disallow_is_respected_and_fetched_once(server, fetcher) -> None:
    server.set("/robots.txt", "User-agent: *\nDisallow: /private\n", content_type="text/plain")
    server.set("/private/page", "secret")
    server.set("/public/page", "hello")

    with pytest.raises(FetchError, match="robots.txt of .* disallows"):
        fetcher.get(server.url("/private/page"), allow_private=True, check_robots=True)
    assert fetcher.get(server.url("/public/page"), allow_private=True, check_robots=True).content == b"hello"
    assert fetcher.get(server.url("/public/page"), allow_private=True, check_robots=True).status == 200

    assert server.hits["/private/page"] == 0
    assert server.hits["/robots.txt"] == 1  # cached per origin
    assert dict(server.requests)["/robots.txt"]["accept"] == "text/plain"
    # robots.txt governs article fetches only; a caller that does not ask is not stopped
    assert fetcher.get(server.url("/private/page"), allow_private=True).content == b"secret"


def test_a_missing_robots_txt_allows_everything(server, fetcher) -> None:
    url = server.set("/anything", "fine")

    assert fetcher.get(url, allow_private=True, check_robots=True).content == b"fine"
    assert server.hits["/robots.txt"] == 1


def test_an_unreachable_robots_txt_disallows_for_now(server, make_fetcher) -> None:
    server.set("/robots.txt", "down", status=503)
    url = server.set("/page", "page")

    with pytest.raises(FetchError, match="robots.txt"):
        make_fetcher(retries=0).get(url, allow_private=True, check_robots=True)
    assert server.hits["/page"] == 0


def test_robots_txt_is_not_consulted_when_the_policy_says_so(server, make_fetcher) -> None:
    server.set("/robots.txt", "User-agent: *\nDisallow: /\n", content_type="text/plain")
    url = server.set("/page", "page")

    assert make_fetcher(respect_robots=False).get(url, allow_private=True, check_robots=True).content == b"page"
    assert server.hits["/robots.txt"] == 0


ROBOTS = """\
# our own group overrides the * group entirely
User-agent: Googlebot
Disallow: /

User-agent: KUP
Allow: /
Disallow: /drafts
Allow: /drafts/published
Disallow: /*.pdf$
Disallow: /search*q=

User-agent: *
Disallow: /
"""


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/news/story", True),  # Allow: /
        ("/drafts/x", False),  # the longer Disallow beats Allow: / (first-match parsers get this wrong)
        ("/drafts/published/x", True),  # the longest rule wins
        ("/report.pdf", False),  # * and $ wildcards
        ("/report.pdf.html", True),
        ("/search?q=energy", False),
        ("/search?page=2", True),
        ("/%64rafts/x", False),  # percent-encoded unreserved characters match their plain spelling
    ],
)
def test_robots_rules_follow_rfc_9309(server, fetcher, path, allowed) -> None:
    server.set("/robots.txt", ROBOTS, content_type="text/plain")
    url = server.set(path, "page")

    outcome, _ = timed(fetcher.get, url, allow_private=True, check_robots=True)

    assert isinstance(outcome, FetchError) is not allowed, outcome
    if not allowed:
        assert "robots.txt" in str(outcome)


# -- per-host politeness -----------------------------------------------------------------------


def _parallel_gets(fetcher, url: str, count: int) -> tuple[list[object], float]:
    outcomes: list[object] = [None] * count

    def worker(i: int) -> None:
        try:
            outcomes[i] = fetcher.get(url, allow_private=True)
        except FetchError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes, time.monotonic() - start


def test_per_host_concurrency_one_serialises_requests(server, make_fetcher) -> None:
    url = server.set("/slowish", "ok", delay=0.3)

    outcomes, elapsed = _parallel_gets(make_fetcher(per_host_concurrency=1), url, 3)

    assert all(getattr(o, "status", None) == 200 for o in outcomes), outcomes
    assert elapsed >= 0.85


def test_per_host_concurrency_three_runs_requests_together(server, make_fetcher) -> None:
    url = server.set("/slowish", "ok", delay=0.3)

    outcomes, elapsed = _parallel_gets(make_fetcher(per_host_concurrency=3), url, 3)

    assert all(getattr(o, "status", None) == 200 for o in outcomes), outcomes
    assert elapsed < 0.8


def test_waiting_for_a_host_slot_does_not_count_against_total_timeout(server, make_fetcher) -> None:
    url = server.set("/slowish", "ok", delay=0.3)
    fetcher = make_fetcher(per_host_concurrency=1, total_timeout=0.5, retries=0)

    outcomes, elapsed = _parallel_gets(fetcher, url, 3)

    assert all(getattr(o, "status", None) == 200 for o in outcomes), outcomes  # the third waited 0.6 s
    assert elapsed >= 0.85

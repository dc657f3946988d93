"""The dashboard tells the truth when a feed goes down, as a user sees it in a real headless Chromium: `kup up`
serves two local feed servers, one of them is stopped, and the runs list and the keyed kup-status artifact say so;
once it serves again, the index is fresh within two runs. Screenshots land in test-artifacts/."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer

import pytest

from fixtures import ROOT, FeedServer, Pipeline, start_kup_up
from fixtures.kup_up import BROWSER_ARGS, KupUp, require_chromium

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts"
FINISHED = {"COMPLETED", "FAILED", "CRASHED"}


def restart(server: FeedServer) -> None:
    """Serve again on the address a stopped server had, as a site back from an outage (FeedServer itself binds
    a fresh port each time)."""
    old = server._server
    server._server = ThreadingHTTPServer(old.server_address, old.RequestHandlerClass)
    server._server.daemon_threads = True
    server._thread = threading.Thread(target=server._server.serve_forever, daemon=True)
    server.start()


def _started(run: dict) -> datetime:
    return datetime.fromisoformat(run["start_time"])


def next_run(up: KupUp, after: datetime, timeout: float = 300) -> dict:
    """The first refresh run that started after ``after`` and finished. One is triggered by hand so as not to wait
    for the schedule; whichever of the two the concurrency limit cancels does not count."""
    up.trigger("refresh")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = [
            r
            for r in up.flow_runs("refresh")
            if r["start_time"] and _started(r) > after and r["state"] and r["state"]["type"] in FINISHED
        ]
        if runs:
            return min(runs, key=_started)
        time.sleep(2)
    raise AssertionError(f"no refresh run started after {after:%H:%M:%S} finished within {timeout:.0f} s")


def _rgb(css: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", css)[:3])


def look(page, up: KupUp, run: dict, shot: str) -> dict:
    """What the dashboard shows about ``run``: its badge in the runs list (text, classes, colour), and the latest
    kup-status artifact reached from the Artifacts page (its id and text, and the newest ids the API knew before and
    after: a scheduled run may finish meanwhile). Screenshots of both."""
    newest = [newest_status_id(up)]
    page.goto(f"{up.dashboard}/runs", wait_until="networkidle")
    item = page.locator(".flow-run-list-item", has=page.locator(f'a[href="/runs/flow-run/{run["id"]}"]'))
    badge = item.locator(".state-badge").first
    badge.wait_for(timeout=30_000)
    seen = {
        "badge": badge.inner_text().strip(),
        "badge_class": badge.get_attribute("class") or "",
        "colour": _rgb(badge.evaluate("e => getComputedStyle(e).backgroundColor")),
    }
    page.screenshot(path=str(ARTIFACTS / f"dashboard-truth-{shot}-runs.png"))

    page.goto(f"{up.dashboard}/artifacts", wait_until="networkidle")
    page.get_by_text("kup-status", exact=True).first.click()
    page.wait_for_url(re.compile(r"/artifacts/key/kup-status"), timeout=30_000)
    latest = page.locator('a[href^="/artifacts/artifact/"]').first
    latest.wait_for(timeout=30_000)
    seen["artifact_id"] = latest.get_attribute("href").rsplit("/", 1)[1]
    latest.click()
    page.get_by_text("Freshness over the last day").first.wait_for(timeout=30_000)  # the markdown has rendered
    seen["status"] = page.inner_text("main") if page.locator("main").count() else page.inner_text("body")
    page.screenshot(path=str(ARTIFACTS / f"dashboard-truth-{shot}-status.png"), full_page=True)
    seen["newest"] = [*newest, newest_status_id(up)]
    return seen


def newest_status_id(up: KupUp) -> str:
    """The id of the kup-status artifact created last, from the API."""
    import httpx

    query = {"artifacts": {"key": {"any_": ["kup-status"]}}, "sort": "CREATED_DESC", "limit": 1}
    [newest] = httpx.post(f"{up.api}/artifacts/filter", json=query, timeout=10).json()
    return newest["id"]


@pytest.fixture
def site(pipeline):
    """``world`` on the pipeline's feed server (the one that goes down), ``science`` on a second one that stays."""
    require_chromium()
    with FeedServer() as other:
        pipeline.publish("/world", 2)
        Pipeline(other, pipeline.data_dir, pipeline.sources_file).publish("/science", 2, start=10)
        lines = ["sources:"]
        for name, url in (("world", pipeline.server.url("/world")), ("science", other.url("/science"))):
            lines += [f"  - name: {name}", f"    url: {url}", "    allow_private_addresses: true"]
        pipeline.sources_file.write_text("\n".join(lines) + "\n")
        yield pipeline


def test_a_feed_outage_shows_in_the_dashboard_and_recovery_follows_within_two_runs(site) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    up = start_kup_up(site.env(), serving={"refresh"})
    try:
        fresh = next_run(up, datetime(2000, 1, 1, tzinfo=UTC))
        assert (fresh["state"]["type"], fresh["state"]["message"]) == ("COMPLETED", "index is fresh"), fresh["state"]

        site.server.stop()  # the world feed's site goes down: runs that start from now on find it so
        down = next_run(up, datetime.now(UTC))
        assert (down["state"]["type"], down["state"]["name"]) == ("FAILED", "Stale"), down["state"]
        assert down["state"]["message"].startswith("index is stale: world ")
        assert "science" not in down["state"]["message"]  # the other source is fine

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=require_chromium(), headless=True, args=BROWSER_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                stale = look(page, up, down, "stale")

                restart(site.server)  # back from the outage
                recovered = [next_run(up, datetime.now(UTC))]
                if recovered[0]["state"]["message"] != "index is fresh":
                    recovered.append(next_run(up, _started(recovered[0])))
                back = look(page, up, recovered[-1], "recovered")
            finally:
                browser.close()
        output = up.stop()
    finally:
        if up.process.poll() is None:
            up.stop()

    # While the feed is down: the run is not presented as a success, and kup-status names the failing source.
    assert stale["badge"] == "Stale" and "state--failed" in stale["badge_class"], stale
    red, green, blue = stale["colour"]
    assert red > green and red > blue, f"the Stale badge is not red: rgb{stale['colour']}"
    assert stale["artifact_id"] in stale["newest"]  # the Artifacts page leads to the latest kup-status
    assert "STALE" in stale["status"] and "index is fresh" not in stale["status"]
    assert re.search(r"world\s+(FAILED x\d+|backing off)", stale["status"]), stale["status"]
    assert re.search(r"science\s+ok", stale["status"]), stale["status"]

    # Back within two runs: a green Completed badge and a fresh kup-status.
    assert [r["state"]["type"] for r in recovered][-1] == "COMPLETED" and len(recovered) <= 2
    assert recovered[-1]["state"]["message"] == "index is fresh"
    assert back["badge"] == "Completed" and "state--completed" in back["badge_class"], back
    red, green, blue = back["colour"]
    assert green > red and green > blue, f"the Completed badge is not green: rgb{back['colour']}"
    assert back["artifact_id"] in back["newest"] and back["artifact_id"] != stale["artifact_id"]
    assert "Fresh: index is fresh" in back["status"] and re.search(r"world\s+ok", back["status"]), back["status"]

    assert "Traceback" not in output and "Unexpected result for failed state" not in output
    assert "flow run ended Stale: index is stale: world" in output
    for shot in ("stale-runs", "stale-status", "recovered-runs", "recovered-status"):
        assert (ARTIFACTS / f"dashboard-truth-{shot}.png").stat().st_size > 10_000

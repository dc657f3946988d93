"""End to end, as a user runs it: `kup up`, a refresh and a backfill triggered by hand, both seen in the
Prefect dashboard by a real headless Chromium. The screenshot lands in test-artifacts/."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fixtures import ROOT, start_kup_up
from fixtures.kup_up import BROWSER_ARGS, require_chromium

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts"


def _wait_for_state(api: str, run_id: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = httpx.get(f"{api}/flow_runs/{run_id}", timeout=5).json()["state"]["type"]
        if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state
        time.sleep(1)
    raise AssertionError(f"flow run {run_id} did not finish within {timeout:.0f}s")


@pytest.fixture
def served(pipeline, tmp_path):
    require_chromium()
    pipeline.publish("/world", 3)
    pipeline.write_sources({"world": "/world"})
    up = start_kup_up(pipeline.env(), serving={"refresh", "backfill"})
    yield up.api, up.env
    up.stop()


def test_runs_triggered_by_hand_show_in_the_dashboard(served) -> None:
    from playwright.sync_api import sync_playwright

    api, env = served
    client_env = {**env, "PREFECT_API_URL": api}
    # A refresh the Prefect way (README), retried if the every-minute schedule happened to be running.
    for _ in range(3):
        out = subprocess.run(
            [str(Path(sys.executable).parent / "prefect"), "deployment", "run", "refresh/refresh"],
            env=client_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        refresh_id = re.search(r"UUID: ([0-9a-f-]{36})", out.stdout).group(1)
        if _wait_for_state(api, refresh_id) != "CANCELLED":
            break
    assert _wait_for_state(api, refresh_id) == "COMPLETED"

    out = subprocess.run(
        [sys.executable, "-m", "cli.main", "backfill", "--source", "world", "--since", "30d", "--wait"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    backfill_id = re.search(r"\(([0-9a-f-]{36})\)", out.stdout).group(1)
    assert _wait_for_state(api, backfill_id) == "COMPLETED"
    names = {i: httpx.get(f"{api}/flow_runs/{i}", timeout=5).json()["name"] for i in (refresh_id, backfill_id)}

    ARTIFACTS.mkdir(exist_ok=True)
    dashboard = api.removesuffix("/api")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=require_chromium(), headless=True, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{dashboard}/runs", wait_until="networkidle")
            for name in names.values():
                page.get_by_text(name, exact=True).first.wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard-runs.png"))
            body = page.inner_text("body")
            page.goto(f"{dashboard}/runs/flow-run/{refresh_id}", wait_until="networkidle")
            page.get_by_text("Artifacts").first.wait_for(timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "dashboard-refresh-run.png"))
        finally:
            browser.close()
    assert "refresh" in body and "backfill" in body
    assert "Can't connect to Server API" not in body
    assert (ARTIFACTS / "dashboard-runs.png").stat().st_size > 10_000

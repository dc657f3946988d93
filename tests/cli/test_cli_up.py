"""`kup up` says what it is doing before the first refresh: server, flows, dashboard, and when the first run starts."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

import pytest

from cli.up_progress import schedule_words
from fixtures import start_kup_up
from flows.deployments import DeploymentSpec

pytestmark = pytest.mark.slow


def test_kup_up_announces_the_first_refresh(tmp_path) -> None:
    (tmp_path / "sources.yaml").write_text("sources: []\n")
    settings = {"KUP_DATA_DIR": str(tmp_path / "data"), "KUP_SOURCES_FILE": str(tmp_path / "sources.yaml")}
    up = start_kup_up(settings, serving={"refresh"})
    try:
        deadline = time.monotonic() + 150
        while "First refresh started at" not in up.output() and time.monotonic() < deadline:
            time.sleep(2)
    finally:
        output = up.stop()
    assert "Starting a Prefect server" in output and re.search(r"Prefect server ready in \d+ s", output)
    assert "Loading the flows declared in prefect.yaml" in output
    scheduled = re.search(r"First refresh scheduled for (\d\d:\d\d:\d\d) UTC \(in \d+ s; .*\), then every 60 s", output)
    started = re.search(r"First refresh started at (\d\d:\d\d:\d\d) UTC: http\S+/runs/flow-run/[0-9a-f-]{36}", output)
    assert scheduled and started, output
    # What it says is what happened: the run starts at its schedule. Prefect's runner fetches runs due within its
    # prefetch window (10 s by default) and may start one a moment early; never earlier than that window.
    early = datetime.strptime(scheduled.group(1), "%H:%M:%S") - datetime.strptime(started.group(1), "%H:%M:%S")
    assert early <= timedelta(seconds=10), output
    assert "Traceback" not in output


def test_schedules_in_words() -> None:
    spec = DeploymentSpec("x", "flows/x.py:x", schedules=[{"interval": 60}, {"cron": "0 3 * * *", "timezone": "UTC"}])
    assert schedule_words(spec) == "every 60 s, cron 0 3 * * * (UTC)"

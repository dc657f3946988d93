"""What the terminal says when things go wrong or take long: exit codes, whole lines when piped, an unreadable
sources file, a refresh with or without a Prefect server, and a finished reindex's figures. Never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from typer.testing import CliRunner

from cli.main import _print_finished_run, app
from cli.shared import console
from fixtures import ROOT
from fixtures.kup_up import free_port
from flows.reindex import reindex  # imports Prefect here: its log handlers keep pytest's stderr, not a CliRunner's

pytestmark = pytest.mark.usefixtures("prefect_harness", "restore_environ")

LONG_NAME = "a-source-with-a-rather-long-name-that-does-not-fit-in-80-columns"  # 64 characters, the most allowed


def kup(*args: str):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result


@pytest.fixture
def offline(monkeypatch) -> str:
    """No Prefect server answers at the configured URL."""
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("KUP_PREFECT_API_URL", url)
    return url


def test_refresh_without_a_server_exit_codes_whole_lines_and_a_broken_sources_file(pipeline, offline) -> None:
    pipeline.publish("/world", 1)
    pipeline.server.set("/gone", "gone", status=404, content_type="text/plain")
    pipeline.write_sources({"world": "/world", LONG_NAME: "/gone"})

    result = kup("refresh")
    assert result.exit_code == 1, result.output  # a source failed
    assert f"No Prefect server answers at {offline}" in result.output
    assert "not recorded in a dashboard" in result.output
    assert "index is stale" in result.stdout and "404" in result.stdout

    # Piped through a real process: the long name and its whole error stay on one line, not cut to 80 columns.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLUMNS")}
    piped = subprocess.run(
        [sys.executable, "-m", "cli.main", "status"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert piped.returncode == 1, piped.stdout + piped.stderr  # a source is failing: exit 1, as `kup refresh`
    assert piped.stdout.startswith(f"kup: stale: {LONG_NAME} failing or backing off; the last refresh completed")
    [note] = [line for line in piped.stdout.splitlines() if line.strip().startswith(f"{LONG_NAME}: failing x1: ")]
    error = json.loads(kup("status", "--json").stdout)
    [row] = [r for r in error["sources"] if r["source"] == LONG_NAME]
    assert note.strip() == f"{LONG_NAME}: failing x1: {row['last_error']}"
    assert len(note) > 80 and "Traceback" not in piped.stdout + piped.stderr
    assert any(line.startswith(f"│ {LONG_NAME} ") for line in piped.stdout.splitlines())  # the table row, whole

    again = kup("refresh")  # still failing: still not fresh
    assert again.exit_code == 1 and "404" in again.stdout and "index is fresh" not in again.stdout

    pipeline.write_sources({"world": "/world"})
    assert kup("refresh").exit_code == 0  # fresh

    pipeline.sources_file.write_text("sources:\n  - name: world\n   url: [\n")
    broken = kup("status")
    assert broken.exit_code == 0, broken.output
    assert broken.output.count("not valid YAML") == 1 and "cannot be read" in broken.output
    assert "no longer in the sources file" not in broken.output
    assert "world" in broken.output  # what the catalog holds is still shown
    refused = kup("refresh")
    assert refused.exit_code == 2 and "not valid YAML" in refused.output  # a user mistake


def test_refresh_with_a_server_is_a_recorded_flow_run(pipeline) -> None:
    from prefect.settings import PREFECT_API_URL

    pipeline.publish("/world", 1)
    pipeline.write_sources({"world": "/world"})
    os.environ["KUP_PREFECT_API_URL"] = PREFECT_API_URL.value()  # the test harness's server answers
    with get_client(sync_client=True) as client:
        before = {run.id for run in client.read_flow_runs()}
    result = kup("refresh", "--json")
    assert result.exit_code == 0, result.output
    assert "not recorded" not in result.output
    summary = json.loads(result.stdout)
    assert summary["totals"]["new"] == 1 and summary["verdict"]["message"] == "index is fresh"
    with get_client(sync_client=True) as client:
        [run] = [run for run in client.read_flow_runs() if run.id not in before]
    assert run.state_name == "Completed" and run.state.message == "index is fresh"


def test_a_finished_reindex_prints_its_figures(pipeline, offline) -> None:
    pipeline.publish("/world", 2)
    pipeline.write_sources({"world": "/world"})
    assert kup("refresh").exit_code == 0
    state = reindex(return_state=True)
    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    with console.capture() as captured:
        _print_finished_run("reindex", run)  # what `kup reindex --wait` prints once the served run is done
    text = captured.get()
    assert "2 document(s)" in text and "chunk(s)" in text, text
    assert state.result()["collection"] in text

"""A kind of source from another package: registered through the ``kup.sources`` entry point group, read from the
sources file, pulled, probed while it backs off, backfilled, and refreshed end to end by `kup` itself, without a
line of kup naming it (the kind lives in ``tests/plugins/kup_folder_source.py``)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors import load_sources
from connectors.sources import plugin_kinds
from errors import ConfigError
from fixtures.kup_up import free_port
from indexing import Catalog
from indexing.ingest import backfill_source, ingest_source, source_kinds

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def install_plugin(site: Path, target: str = "tests.plugins.kup_folder_source:FolderKind") -> Path:
    """What `pip install` of a package declaring ``[project.entry-points."kup.sources"] folder = ...`` leaves."""
    info = site / "kup_folder_source-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kup-folder-source\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[kup.sources]\nfolder = {target}\n")
    return site


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path / "site")))
    plugin_kinds.cache_clear()
    yield
    plugin_kinds.cache_clear()


def notes(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "harbour.md").write_text(
        "# Harbour reopens\n\nThe Veltmark harbour reopened on 14 March, three months after a winter storm destroyed "
        "its northern pier. Ferries to the islands run on the summer timetable again from Monday.\n"
    )
    (folder / "mayor.md").write_text(
        "# Brask elected\n\nMayor Odile Brask won the Veltmark election with 61 percent of the vote, the largest "
        "margin since the town merged with its two neighbours. She promised a new bridge over the estuary.\n"
    )
    return folder


def sources_file(tmp_path: Path, folder: Path) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(
        f"sources:\n  - name: notes\n    type: folder\n    path: {folder}\n    base_url: https://wiki.example.com\n"
    )
    return path


def test_a_registered_kind_is_read_pulled_probed_and_backfilled(plugin, tmp_path) -> None:
    folder = notes(tmp_path / "notes")
    [source] = load_sources(sources_file(tmp_path, folder))
    assert source.type == "folder" and type(source).__name__ == "FolderSource"
    assert set(source_kinds()) == {"feed", "sql", "folder"}
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")

    report = ingest_source(source, catalog, fetcher=None, now=NOW)
    assert report.ok and report.new == 2 and catalog.count(source="notes") == 2
    again = ingest_source(source, catalog, fetcher=None, now=NOW + timedelta(minutes=1))
    assert again.ok and again.new == 0  # its own cursor: nothing changed, nothing read

    (folder / "mayor.md").write_text("# Brask re-elected\n\nMayor Odile Brask won a second term.\n" * 3)
    os.utime(folder / "mayor.md", (NOW.timestamp() + 120, NOW.timestamp() + 120))
    assert ingest_source(source, catalog, fetcher=None, now=NOW + timedelta(minutes=2)).updated == 1

    # Backing off after failures: the kind's probe decides, and a folder that is back is pulled at once.
    moved = folder.rename(tmp_path / "away")
    for minute in (3, 4):
        assert not ingest_source(source, catalog, fetcher=None, now=NOW + timedelta(minutes=minute)).ok
    skipped = ingest_source(source, catalog, fetcher=None, now=NOW + timedelta(minutes=5))
    assert skipped.skipped and "probe: folder" in skipped.skipped and "is not there" in skipped.skipped
    moved.rename(folder)
    back = ingest_source(source, catalog, fetcher=None, now=NOW + timedelta(minutes=5, seconds=10))
    assert back.ok and not back.skipped

    window = backfill_source(source, catalog, None, NOW - timedelta(days=1), NOW + timedelta(hours=1))
    assert window.ok and window.unchanged + window.updated + window.new == 1  # only mayor.md lies in the window
    catalog.close()


def test_an_unknown_type_names_the_installed_kinds_and_a_broken_plugin_is_left_out(tmp_path, monkeypatch, caplog):
    monkeypatch.syspath_prepend(str(install_plugin(tmp_path / "site", "no_such_package.kind:Kind")))
    plugin_kinds.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="connectors.sources"), pytest.raises(ConfigError) as caught:
            load_sources(sources_file(tmp_path, tmp_path / "notes"))
        assert "sources.0.type: type must be one of feed, sql" in str(caught.value)
        [warning] = [r.getMessage() for r in caplog.records]
        assert "'folder'" in warning and "no_such_package.kind:Kind" in warning and "left out" in warning
    finally:
        plugin_kinds.cache_clear()


@pytest.mark.slow
def test_kup_refreshes_searches_and_reports_a_plugin_source_end_to_end(tmp_path) -> None:
    site = install_plugin(tmp_path / "site")
    folder = notes(tmp_path / "notes")
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUP_", "PREFECT_"))}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]),
        "KUP_DATA_DIR": str(data),
        "KUP_SOURCES_FILE": str(sources_file(tmp_path, folder)),
        "KUP_PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api",  # no server: the refresh runs here
        "KUP_API_URL": "off",
        "HF_HUB_OFFLINE": "1",
    }

    def kup(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )

    refreshed = kup("refresh")
    assert refreshed.returncode == 0, refreshed.stdout[-2000:] + refreshed.stderr[-2000:]
    found = kup("search", "Who won the Veltmark election?", "--json")
    assert found.returncode == 0, found.stderr[-2000:]
    top = json.loads(found.stdout)["hits"][0]
    assert top["title"] == "Brask elected" and top["url"] == "https://wiki.example.com/mayor.md"
    status = kup("status", "--json")
    [notes_status] = json.loads(status.stdout)["sources"]
    assert notes_status["source"] == "notes" and notes_status["by_status"] == {"indexed": 2}

"""Settings: every field says why, problems are reported together, and the concurrency settings change what a
refresh does (counted as simultaneous requests at a local news site whose answers are slow)."""

from __future__ import annotations

import importlib
import os
import threading
import time

import pytest

import flows.refresh
from errors import ConfigError
from fixtures.news_site import FeedServer, Route
from flows.settings import Settings, load_settings, settings_in_force

SLOW = 0.4  # seconds each counted request takes: long enough for parallel requests to overlap


class Gauge:
    """Counts requests in progress at once, and the most there ever were."""

    def __init__(self) -> None:
        self.active = self.peak = self.seen = 0
        self._lock = threading.Lock()

    def slow(self, route: Route):
        def handle(_request) -> Route:
            with self._lock:
                self.active += 1
                self.seen += 1
                self.peak = max(self.peak, self.active)
            time.sleep(SLOW)
            with self._lock:
                self.active -= 1
            return route

        return handle


def slow_down(server: FeedServer, paths: list[str], gauge: Gauge) -> None:
    for path in paths:
        server.set(path, handler=gauge.slow(server.routes[path]))


@pytest.fixture
def refresh_flow(monkeypatch):
    """The refresh flow as a served deployment loads it: its task runner is built from the settings at import."""

    def load(**env: str):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return importlib.reload(flows.refresh).refresh

    yield load
    monkeypatch.undo()
    importlib.reload(flows.refresh)  # back to the defaults for the tests that follow


def test_every_setting_says_why_and_problems_come_together() -> None:
    assert all(field.description for field in Settings.model_fields.values())
    with pytest.raises(ConfigError) as caught:
        load_settings(source_concurrency=0, article_workers="many")
    assert "KUP_SOURCE_CONCURRENCY" in str(caught.value) and "KUP_ARTICLE_WORKERS" in str(caught.value)


def test_settings_in_force_are_what_flows_in_this_process_load_and_only_within_the_block(tmp_path, monkeypatch) -> None:
    """A command hands its settings (flags included) to the flows it runs here as a Settings object, not through
    the environment: inside the block ``load_settings()`` is that object, outside it the environment's again."""
    monkeypatch.setenv("KUP_DATA_DIR", str(tmp_path / "from-env"))
    chosen = Settings(data_dir=tmp_path / "chosen")
    with settings_in_force(chosen) as s:
        assert s is chosen and load_settings() is chosen
        assert load_settings(collection="other").data_dir == tmp_path / "from-env"  # explicit overrides: the env's
        assert os.environ["KUP_DATA_DIR"] == str(tmp_path / "from-env")  # nothing written there
    assert load_settings().data_dir == tmp_path / "from-env"


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(("workers", "expected_peak"), [(1, 1), (4, 4)])
def test_article_workers_bound_the_pages_fetched_at_once(pipeline, monkeypatch, workers, expected_peak) -> None:
    items = pipeline.publish("/world", 6)
    pipeline.write_sources({"world": "/world"})
    gauge = Gauge()
    slow_down(pipeline.server, [item.link.removeprefix(pipeline.server.base) for item in items], gauge)
    monkeypatch.setenv("KUP_PER_HOST_CONCURRENCY", "8")  # the per-host limit (2) must not be what bounds them
    monkeypatch.setenv("KUP_ARTICLE_WORKERS", str(workers))

    state = flows.refresh.refresh(return_state=True)

    assert state.name == "Completed", state.message
    assert gauge.seen == 6 and gauge.peak == expected_peak


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.parametrize(("concurrency", "expected_peak"), [(1, 1), (4, 4)])
def test_source_concurrency_bounds_the_sources_pulled_at_once(
    pipeline, refresh_flow, concurrency, expected_peak
) -> None:
    feeds = {f"feed{i}": f"/feed{i}" for i in range(4)}
    for path in feeds.values():
        pipeline.publish(path, 1)
    pipeline.write_sources(feeds)
    gauge = Gauge()
    slow_down(pipeline.server, list(feeds.values()), gauge)

    refresh = refresh_flow(KUP_SOURCE_CONCURRENCY=str(concurrency), KUP_PER_HOST_CONCURRENCY="8")
    state = refresh(return_state=True)

    assert state.name == "Completed", state.message
    assert gauge.seen == 4 and gauge.peak == expected_peak


def test_invalid_settings_do_not_stop_the_flow_module_loading(refresh_flow) -> None:
    refresh = refresh_flow(KUP_SOURCE_CONCURRENCY="lots")  # the run reports it; a served module must still load
    assert refresh.name == "refresh"

"""Hand-over between two listeners on a real PostgreSQL: the newer one takes the `listen` role once it is connected,
the older one stops within a couple of seconds saying who took over, and at no moment is nobody connected."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import text

from connectors import pg_events
from connectors.sources import SqlSource
from flows.handover import Role, slot_end
from flows.listen import listen_here
from flows.settings import load_settings
from indexing import Catalog
from tests.conftest import _postgres_source
from tests.flows.test_listen_flow import _declare_event_source

pytestmark = pytest.mark.usefixtures("prefect_harness")


@pytest.fixture
def pg():
    yield from _postgres_source(f"kup_ho_{uuid.uuid4().hex[:10]}")


def test_roles_go_to_the_newest_holder_and_the_replaced_one_learns_who(tmp_path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    try:
        assert catalog.take_role("listen", "run a") is None
        assert catalog.renew_role("listen", "run a") is None
        assert catalog.take_role("listen", "run b") == "run a"
        assert catalog.renew_role("listen", "run a") == "run b"  # a learns it was replaced, and by whom
        catalog.release_role("listen", "run a")  # a no longer holds it: b keeps it
        assert catalog.role_holder("listen")["holder"] == "run b"
        catalog.release_role("listen", "run b")
        assert catalog.role_holder("listen") is None
    finally:
        catalog.close()


def test_a_slot_ends_with_a_grace_for_its_successor() -> None:
    assert 600 + 290 < slot_end(10, None) <= 600 + 300
    assert 15 - 1 < slot_end(0.25, None) <= 15 + 7.5


def _listeners(pg) -> int:
    with pg.engine.connect() as conn:
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = :app AND datname = current_database()"
        return conn.execute(text(query), {"app": pg_events.APP_NAME}).scalar()


def test_the_newer_listener_takes_over_with_no_gap_and_the_older_stops(tmp_path, pg, monkeypatch) -> None:
    with pg.engine.begin() as conn:
        conn.execute(text("CREATE TABLE notes (id int PRIMARY KEY, body text, updated_at timestamptz DEFAULT now())"))
    _declare_event_source(tmp_path, pg, monkeypatch, "notes")
    source = SqlSource.model_validate(
        {"type": "sql", "name": "notes", "url_env": "X", "table": "notes", "id_columns": ["id"]}
        | {"text": "{body}", "updated_column": "updated_at"}
    )
    pg_events.apply(source, pg_events.install_sql(source), pg_events.conninfo(source, {"X": pg.url}))
    settings = load_settings()
    heard: dict[str, object] = {}

    def run(label: str, seconds: float) -> None:
        heard[label] = listen_here(settings, seconds, refresh_here=False, label=label)

    samples: list[tuple[float, int]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            samples.append((time.monotonic(), _listeners(pg)))
            time.sleep(0.1)

    older = threading.Thread(target=run, args=("older", 120))
    older.start()
    catalog = Catalog(settings.resolved_catalog_url)
    try:
        deadline = time.monotonic() + 60
        while not ((holder := catalog.role_holder("listen")) and holder["holder"].startswith("older")):
            assert time.monotonic() < deadline, "the first listener never took the role"
            time.sleep(0.2)
        sampler = threading.Thread(target=sample)
        sampler.start()
        newer = threading.Thread(target=run, args=("newer", 8))
        started = time.monotonic()
        newer.start()
        older.join(timeout=60)
        assert not older.is_alive(), "the older listener did not stop when replaced"
        stopped = time.monotonic()
        newer.join(timeout=60)
        sampling.set()
        sampler.join()
    finally:
        catalog.close()
    assert heard["older"].replaced_by.startswith("newer")
    assert stopped - started < 30  # the newer one connected, took the role, and the older one noticed
    during = [n for t, n in samples if t <= stopped - 0.5]  # until the older one let go
    assert during and min(during) >= 1, samples  # someone was listening at every sample: no gap
    overlap = sum(1 for t, n in samples if n >= 2) * 0.1
    assert overlap <= 3.0, samples  # both connected only while the newer one took over


def test_a_role_that_is_never_ready_is_taken_anyway_and_released_at_the_end(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KUP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("flows.handover.READY_TIMEOUT", 0.5)
    settings = load_settings()
    stopped = threading.Event()
    role = Role(settings, "watch", "slow starter").hold(threading.Event(), stopped.set)
    time.sleep(1.5)
    catalog = Catalog(settings.resolved_catalog_url)
    try:
        assert catalog.role_holder("watch")["holder"].startswith("slow starter")
        role.release()
        assert catalog.role_holder("watch") is None and not stopped.is_set()
    finally:
        catalog.close()


def test_a_scheduled_run_leaves_its_slot_to_a_listener_started_by_hand(tmp_path, monkeypatch) -> None:
    """`kup events listen` beside `kup up`: the listen deployment's run finds it alive, stops at once and leaves
    the role to it; a newer one by hand would take over as usual."""
    monkeypatch.setenv("KUP_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    by_hand_stopped, scheduled_stopped = threading.Event(), threading.Event()
    by_hand = Role(settings, "listen", "kup events listen", by_hand=True).hold(None, by_hand_stopped.set)
    catalog = Catalog(settings.resolved_catalog_url)
    try:
        deadline = time.monotonic() + 10
        while catalog.role_holder("listen") is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        scheduled = Role(settings, "listen", "listen run calm-otter").hold(None, scheduled_stopped.set)
        assert scheduled_stopped.wait(10) and scheduled.left_to.startswith("kup events listen")
        time.sleep(1.5)  # a renewal later, the one by hand still holds the role and was never stopped
        assert catalog.role_holder("listen")["holder"].endswith("[by hand]") and not by_hand_stopped.is_set()
        scheduled.release()
        assert catalog.role_holder("listen") is not None  # releasing a role it never took gives nothing up
    finally:
        by_hand.release()
        catalog.close()

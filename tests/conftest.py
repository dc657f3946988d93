"""Shared fixtures: offline models, a local feed server, real databases, Prefect's test harness."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Before anything imports Prefect or transformers: no network, no telemetry, a private Prefect home.
_PREFECT_HOME = tempfile.mkdtemp(prefix="kup-test-prefect-")
os.environ.update(
    {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_HOME": _PREFECT_HOME,
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "TOKENIZERS_PARALLELISM": "false",
    }
)
for key in [k for k in os.environ if k.startswith("KUP_") and k != "KUP_CI"]:
    del os.environ[key]  # a developer's own settings must not leak into tests

import pytest  # noqa: E402

from tests.support.feedserver import FeedServer  # noqa: E402

IN_CI = os.environ.get("KUP_CI") == "1"
POSTGRES_ADMIN_URL = os.environ.get("KUP_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def require_server(name: str, error: Exception) -> None:
    """Skip when a database server is absent on a developer's machine; fail under CI."""
    message = f"{name} is not reachable ({error})"
    if IN_CI:
        pytest.fail(f"{message}; CI must run these tests against the real server")
    pytest.skip(message)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture(scope="session")
def dense():
    from indexing import DenseEncoder

    encoder = DenseEncoder()
    encoder.encode(["warm up"])
    return encoder


@pytest.fixture(scope="session")
def sparse():
    from indexing import SparseEncoder

    return SparseEncoder()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalog.db'}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server for this test session; dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"kup_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server here"
        require_server("PostgreSQL", exc)
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """The session database, emptied for each test."""
    from sqlalchemy import create_engine, text

    yield postgres_server
    engine = create_engine(postgres_server)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request) -> str:
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield

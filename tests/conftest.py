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
# Where the real servers for tests are (kept): PostgreSQL, MariaDB, and a Qdrant server for the store contract.
_TEST_SERVERS = ("KUP_CI", "KUP_TEST_POSTGRES_URL", "KUP_TEST_MARIADB_URL", "KUP_TEST_QDRANT_URL")
for key in [k for k in os.environ if k.startswith("KUP_") and k not in _TEST_SERVERS]:
    del os.environ[key]  # a developer's own settings must not leak into tests

import prefect.main  # noqa: E402, F401 - sets up Prefect's logging now (see below)
import pytest  # noqa: E402

from fixtures import FeedServer, Pipeline  # noqa: E402

# Prefect is imported here, once, while pytest's own streams are in place: Prefect's console log handler keeps the
# stderr it sees at first import. If a test file's first import of Prefect happened inside a CliRunner call, the
# handler would keep that call's stderr, closed when the call returns, and later tests would print
# "--- Logging error --- ... ValueError: I/O operation on closed file".

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


@pytest.fixture
def pipeline(tmp_path, feed_server, monkeypatch) -> Pipeline:
    p = Pipeline(feed_server, tmp_path / "data", tmp_path / "sources.yaml")
    for key, value in p.env().items():
        monkeypatch.setenv(key, value)
    return p


@pytest.fixture(scope="session")
def dense():
    from indexing import DenseEncoder

    encoder = DenseEncoder()
    encoder.encode(["warm up"])
    return encoder


def tiny_llama(seed: int = 0):
    """A 2-layer, 32-wide Llama with SmolLM2's tokenizer, freshly initialised under ``seed``: (model, tokenizer)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from training.base_model import packaged_gguf

    gguf = packaged_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config), tokenizer


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    model, tokenizer = tiny_llama()
    pretrain(model, tokenizer)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def pretrain(model, tokenizer, steps: int = 150) -> None:
    """A few seconds of full training on English text, so the tiny model is a (weak) language model."""
    import torch

    from training.corpus import python_text

    ids = tokenizer("\n\n".join(python_text(120)), add_special_tokens=False)["input_ids"]
    windows = torch.tensor([ids[i : i + 64] for i in range(0, len(ids) - 64, 64)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        batch = windows[torch.randint(len(windows), (8,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


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


@pytest.fixture
def restore_environ():
    """The CLI exports its settings for child processes; put the test process's environment back."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


# -- SQL source databases: the same tests run on SQLite, PostgreSQL and MariaDB --------------------

MARIADB_ADMIN_URL = os.environ.get("KUP_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


class SourceDatabase:
    """A fresh database holding a source's tables, with a way to cut connections off and restore them.

    ``url`` is what a pipeline reads it with (a dedicated, read-capable account where the server
    has accounts); ``engine`` is the test's own read-write connection.
    """

    def __init__(self, kind: str, url: str, admin_url: str | None, name: str, tmp: Path | None = None) -> None:
        from sqlalchemy import create_engine

        self.kind, self.url, self.admin_url, self.name, self.tmp = kind, url, admin_url, name, tmp
        owner_url = url if kind != "mariadb" else admin_url.rsplit("/", 1)[0] + f"/{name}?charset=utf8mb4"
        self.engine = create_engine(owner_url)

    def env(self, var: str = "KUP_TEST_SOURCE_URL") -> dict[str, str]:
        return {var: self.url}

    def break_connections(self) -> None:
        """Make the database unreachable for the pipeline, as a network or server failure would."""
        from sqlalchemy import create_engine, text

        if self.kind == "sqlite":
            path = Path(self.url.removeprefix("sqlite:///"))
            path.rename(path.with_suffix(".away"))
            return
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if self.kind == "postgresql":
                conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false'))
                conn.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": self.name}
                )
            else:
                conn.execute(text(f"ALTER USER '{self.name}'@'%' ACCOUNT LOCK"))
                for (pid,) in conn.execute(
                    text("SELECT id FROM information_schema.processlist WHERE user = :u"), {"u": self.name}
                ):
                    conn.execute(text(f"KILL {int(pid)}"))
        admin.dispose()

    def restore_connections(self) -> None:
        from sqlalchemy import create_engine, text

        self.engine.dispose()  # its pooled connections were cut off too (PostgreSQL ends them all)
        if self.kind == "sqlite":
            path = Path(self.url.removeprefix("sqlite:///"))
            path.unlink(missing_ok=True)  # an empty file a connection attempt may have created
            path.with_suffix(".away").rename(path)
            return
        admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            if self.kind == "postgresql":
                conn.execute(text(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true'))
            else:
                conn.execute(text(f"ALTER USER '{self.name}'@'%' ACCOUNT UNLOCK"))
        admin.dispose()


def _postgres_source(name: str):
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        require_server("PostgreSQL", exc)
    db = SourceDatabase("postgresql", POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", POSTGRES_ADMIN_URL, name)
    yield db
    db.engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _mariadb_source(name: str):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(MARIADB_ADMIN_URL, isolation_level="AUTOCOMMIT")
    password = "reader-" + uuid.uuid4().hex[:12]
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
            conn.execute(text(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'"))
            conn.execute(text(f"GRANT SELECT ON `{name}`.* TO '{name}'@'%'"))
    except Exception as exc:  # noqa: BLE001
        require_server("MariaDB", exc)
    base = make_url(MARIADB_ADMIN_URL)
    url = base.set(username=name, password=password, database=name, query={"charset": "utf8mb4"})
    db = SourceDatabase("mariadb", url.render_as_string(hide_password=False), MARIADB_ADMIN_URL, name)
    yield db
    db.engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"DROP USER IF EXISTS '{name}'@'%'"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def source_db(request, tmp_path) -> Iterator[SourceDatabase]:
    name = f"kup_src_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        db = SourceDatabase("sqlite", f"sqlite:///{tmp_path / 'source.db'}", None, name)
        yield db
        db.engine.dispose()
    elif request.param == "postgresql":
        yield from _postgres_source(name)
    else:
        yield from _mariadb_source(name)


@pytest.fixture
def db(source_db) -> SourceDatabase:
    """A source database holding the (empty) tables of tests/source_tables.py."""
    from tests.source_tables import metadata

    metadata.create_all(source_db.engine)
    return source_db

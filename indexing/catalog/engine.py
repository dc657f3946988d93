"""The catalog's database: engine creation, SQLite tuning, schema migrations and transactions."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from errors import ConfigError
from errors.redact import mask_text, mask_url

logger = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent.parent / "migrations"
_IN_CHUNK = 500  # ids per IN (...) clause


def now_utc() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class CatalogEngine:
    """Opens the catalog database (SQLite or PostgreSQL), brings its schema to head and hands out transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=True)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ConfigError(
                f"catalog URL {mask_url(url)} is not usable ({mask_text(str(exc))}); check KUP_CATALOG_URL"
            ) from exc
        self.dialect = self.engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise ConfigError(f"catalog must be SQLite or PostgreSQL, not {self.dialect}; check KUP_CATALOG_URL")
        if self.dialect == "sqlite":
            self._tune_sqlite()
        try:
            self._migrate()
        except DBAPIError as exc:  # a refused connection, a bad option in the URL, a missing database
            first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]
            reason = mask_text(first)
            raise ConfigError(f"cannot open the catalog at {mask_url(url)}: {reason}; check KUP_CATALOG_URL") from exc

    def _tune_sqlite(self) -> None:
        database = self.engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(self.engine, "connect")
        def _on_connect(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(self.engine, "begin")
        def _on_begin(connection) -> None:
            # A write transaction takes the write lock up front, so two processes never
            # deadlock upgrading a read lock (SQLite would fail one of them at once).
            connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.info.get("write") else "BEGIN")

    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        head = ScriptDirectory.from_config(config).get_current_head()
        with self.engine.connect() as conn:
            current = MigrationContext.configure(
                conn, opts={"version_table": "kup_schema_version"}
            ).get_current_revision()
        if current == head:
            return
        database = self.engine.url.database
        lock = FileLock(f"{database}.migrate.lock") if self.dialect == "sqlite" and database else nullcontext()
        with lock, self._write() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(72707)")  # one migrator at a time
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        logger.info("catalog schema migrated %s -> %s", current, head)

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.info["write"] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("write", None)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _insert(self):
        """The dialect's INSERT, which knows ON CONFLICT."""
        return (sqlite if self.dialect == "sqlite" else postgresql).insert

    def close(self) -> None:
        self.engine.dispose()

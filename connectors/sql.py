"""SQL databases as sources: rows become Documents, read incrementally with a compound keyset cursor.

The cursor is ``(updated, id...)``: rows are read ordered by that key, in batches, each batch
starting strictly after the last row of the previous one, so rows sharing a timestamp are never
skipped or read twice. Every identifier from the configuration is checked against the database
and quoted; sessions are read-only where the database supports it; the URL (and so the password)
comes from the environment and is masked wherever it is shown.

One concept, ~420 lines: ``SqlReader``, the one object that opens, checks and reads a configured table or query;
its keyset paging, value comparisons across three databases and row rendering share its checked metadata.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    DateTime,
    and_,
    column,
    create_engine,
    event,
    inspect,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, NoSuchTableError, SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import quoted_name

from connectors.document import Document, ItemFailure
from connectors.language import detect_language
from connectors.sources import SqlSource, template_fields
from connectors.sql_cursor import SqlBatch, SqlCursor, jsonable
from errors import ConfigError, SourceError
from errors.redact import mask_text, mask_url

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 1_000_000  # longer texts are cut (and say so in their metadata)


def _passwords(url: str, decoded: str | None, query: Mapping[str, Any]) -> list[str]:
    """The password as written in the URL (maybe %-encoded) and as decoded, and the values of credential
    query parameters (``?password=``, ``sslpassword``, tokens): none may reach a message."""
    userinfo = url.partition("://")[2].partition("/")[0].rpartition("@")[0]
    found = {decoded, userinfo.partition(":")[2]}
    for name, values in query.items():
        probe = f"x://h/?{name}=v"
        if mask_url(probe) != probe:  # a credential by the masker's own rule (password, sslpassword, token...)
            found.update([values] if isinstance(values, str) else values)
    return sorted((p for p in found if p), key=len, reverse=True)  # longest first: no half-masked secret


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def _like_text(value: datetime, sample: str) -> str:
    """``value`` spelled like ``sample``, a timestamp stored as text (SQLite), so they compare as text."""
    timespec = "microseconds" if "." in sample else "seconds"
    return value.isoformat(sep="T" if "T" in sample else " ", timespec=timespec)


def _key_after(columns: list, values: list) -> Any:
    """``(c1, c2, ...) > (v1, v2, ...)`` spelled out portably.

    The leading ``c1 >= v1`` is implied by the rest, but it is what lets every database start an
    index range scan at the cursor instead of filtering (and sorting) the whole table per page.
    """
    clauses = []
    for i, col in enumerate(columns):
        clauses.append(and_(*[columns[j] == values[j] for j in range(i)], col > values[i]))
    return and_(columns[0] >= values[0], or_(*clauses))


def _read_only(engine: Engine) -> None:
    name = engine.dialect.name
    statement = {
        "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        "mysql": "SET SESSION TRANSACTION READ ONLY",
        "mariadb": "SET SESSION TRANSACTION READ ONLY",
        "sqlite": "PRAGMA query_only = ON",
    }.get(name)
    if statement is None:
        logger.info("no read-only session mode known for %s; relying on the account's rights", name)
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
        if name == "postgresql":
            dbapi_connection.commit()


class SqlReader:
    """Reads one SQL source; open it, ``check()`` it, then read changes, windows or ids."""

    def __init__(self, source: SqlSource, env: Mapping[str, str] | None = None) -> None:
        self.source = source
        env = os.environ if env is None else env
        url = env.get(source.url_env)
        if not url:
            raise ConfigError(
                f"source {source.name}: environment variable {source.url_env} (its url_env) is not set; "
                "it must hold the database URL"
            )
        try:
            parsed = make_url(url)
            dialect = parsed.get_dialect().name
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise ConfigError(
                f"source {source.name}: {source.url_env} is not a usable database URL ({type(exc).__name__}); "
                "expected e.g. postgresql+psycopg://user:password@host/db"
            ) from exc
        self._secrets = _passwords(url, parsed.password, parsed.query)
        self.display_url = mask_url(url)
        try:
            self.tz = ZoneInfo(source.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"source {source.name}: timezone {source.timezone!r} is unknown") from exc
        self._sqlite_file = None
        options: dict[str, Any] = {"pool_pre_ping": True}
        if dialect == "postgresql":
            options["connect_args"] = {"connect_timeout": 10}
        elif dialect in ("mysql", "mariadb"):
            options["connect_args"] = {"connect_timeout": 10, "read_timeout": 300}
        elif dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
                self._sqlite_file = Path(parsed.database)
            # Every read opens the file afresh: a file that was replaced or removed is noticed at the
            # next batch, instead of a pooled handle reading the old inode for the rest of the sync.
            options = {"poolclass": NullPool}
        self.engine = create_engine(url, **options)
        _read_only(self.engine)
        self._from = None
        self._cols: dict[str, Any] = {}
        self._types: dict[str, Any] = {}
        self._sample: Any = None  # an ordering value as the database returns it (query sources)

    # -- errors ---------------------------------------------------------------------------------

    def _scrub(self, message: str) -> str:
        """The message with this source's passwords, and any credential in any URL it quotes, masked."""
        return mask_text(message, self._secrets)

    def _fail(self, what: str, exc: Exception) -> SourceError:
        detail = getattr(exc, "orig", None) or exc
        first_line = str(detail).strip().splitlines()[0] if str(detail).strip() else type(exc).__name__
        # display_url is masked already; masking it again would eat the ')' after a masked query value
        return SourceError(f"source {self.source.name} ({self.display_url}): {what}: {self._scrub(first_line)}")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SqlReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checking the configuration against the database ---------------------------------------------

    def _connect_check(self) -> None:
        """Connecting is the URL's business: a failure here names ``url_env``, not the table."""
        s = self.source
        if self._sqlite_file is not None and not self._sqlite_file.is_file():
            # SQLite would create an empty database there; a reader must not write anything.
            raise SourceError(
                f"source {s.name} ({self.display_url}): database file {str(self._sqlite_file)!r} does not exist; "
                f"check the URL in {s.url_env}"
            )
        try:
            with self.engine.connect():
                pass
        except SQLAlchemyError as exc:
            raise self._fail(f"cannot connect (check the URL in {s.url_env})", exc) from exc

    def probe(self) -> None:
        """Connect and let go, reading nothing: a backing-off source's cheap check that its database answers."""
        self._connect_check()

    def check(self) -> None:
        """Connect and make sure the table or query and every configured column exist."""
        s = self.source
        self._connect_check()
        try:
            if s.table is not None:
                try:
                    reflected = inspect(self.engine).get_columns(s.table, schema=s.db_schema)
                except NoSuchTableError as exc:
                    where = f"{s.db_schema}.{s.table}" if s.db_schema else s.table
                    raise SourceError(
                        f"source {s.name}: table {where!r} (its table setting) does not exist or is not visible"
                    ) from exc
                types = {c["name"]: c["type"] for c in reflected}
                schema = quoted_name(s.db_schema, quote=True) if s.db_schema else None
                self._from = table(quoted_name(s.table, quote=True), schema=schema)
            else:
                # The query is SQL as written: a ":name" in it is text, not a bind parameter.
                query = s.query.replace(":", "\\:")
                probe = select(literal_column("*")).select_from(text(f"({query}) AS kup_probe")).limit(0)
                with self.engine.connect() as conn:
                    types = dict.fromkeys(conn.execute(probe).keys())
                self._from = text(f"({query}) AS kup_source")
        except SourceError:
            raise
        except SQLAlchemyError as exc:
            what = (
                "cannot read the table (its table setting)" if s.table else "cannot run the query (its query setting)"
            )
            raise self._fail(what, exc) from exc
        missing = {col: setting for col, setting in s.columns().items() if col not in types}
        if missing:
            listed = ", ".join(f"{col!r} (named by {setting})" for col, setting in missing.items())
            raise SourceError(
                f"source {s.name}: column(s) {listed} do not exist; available: {', '.join(types) or 'none'}"
            )
        self._types = {name: types[name] for name in s.columns()}
        self._cols = {name: column(quoted_name(name, quote=True), types[name]) for name in s.columns()}

    # -- reading ----------------------------------------------------------------------------------

    def _select(self, where: Any, limit: int | None):
        s = self.source
        order = [self._cols[s.updated_column], *(self._cols[c] for c in s.id_columns)]
        query = select(*self._cols.values()).select_from(self._from)
        if where is not None:
            query = query.where(where)
        query = query.order_by(*order)
        return query.limit(limit) if limit else query

    def _external_id(self, row: Mapping[str, Any]) -> str:
        values = [row[c] for c in self.source.id_columns]
        if len(values) == 1:
            return _text(values[0])
        return json.dumps([jsonable(v) for v in values], ensure_ascii=False)

    def _aware(self, value: Any) -> datetime | None:
        if isinstance(value, str):  # a query on SQLite returns timestamps as text
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return None
        if isinstance(value, datetime):
            return (value.replace(tzinfo=self.tz) if value.tzinfo is None else value).astimezone(UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=self.tz).astimezone(UTC)
        return None

    def _render(self, template: str | None, row: Mapping[str, Any]) -> str:
        if not template:
            return ""
        return template.format_map({name: _text(row[name]) for name in template_fields(template)}).strip()

    def to_document(self, row: Mapping[str, Any]) -> Document | ItemFailure:
        s = self.source
        external_id = self._external_id(row)
        body = self._render(s.text, row)
        title = self._render(s.title, row)
        url = self._render(s.url, row) or None
        if not body:
            columns = ", ".join(template_fields(s.text))
            reason = f"the text template's columns ({columns}) are empty or NULL"
            return ItemFailure(external_id, reason, url=url, title=title)
        metadata = {name: jsonable(row[name]) for name in s.metadata_columns}
        if len(body) > MAX_TEXT_CHARS:
            body = body[:MAX_TEXT_CHARS]
            metadata["truncated_to_chars"] = MAX_TEXT_CHARS
        published = self._aware(row[s.published_column]) if s.published_column else self._aware(row[s.updated_column])
        return Document(
            source=s.name,
            external_id=external_id,
            text=body,
            title=title,
            url=url,
            published_at=published,
            extraction="row",
            language=detect_language(body),
            metadata=metadata,
        )

    def _batch(self, rows: list[Mapping[str, Any]]) -> SqlBatch:
        s = self.source
        batch = SqlBatch(rows=len(rows))
        for row in rows:
            if s.deleted_column and row[s.deleted_column]:
                batch.deleted.append(self._external_id(row))
                continue
            outcome = self.to_document(row)
            (batch.failures if isinstance(outcome, ItemFailure) else batch.documents).append(outcome)
        if rows:
            last = rows[-1]
            batch.cursor = SqlCursor(last[s.updated_column], [last[c] for c in s.id_columns])
        return batch

    def _pages(self, start: Any, until: Any = None) -> Iterator[SqlBatch]:
        """Batches in key order. Rows whose ordering value is NULL cannot be placed after a cursor
        (and sort first or last depending on the database), so they are not read at all."""
        s = self.source
        updated = self._cols[s.updated_column]
        ordering = [updated, *(self._cols[c] for c in s.id_columns)]
        upper = updated < until if until is not None else None
        after = None
        while True:
            conditions = [c for c in (updated.is_not(None), start, upper, after) if c is not None]
            query = self._select(and_(*conditions), s.batch_size)
            try:
                with self.engine.connect() as conn:
                    rows = [dict(r._mapping) for r in conn.execute(query)]
            except SQLAlchemyError as exc:
                raise self._fail("reading rows failed", exc) from exc
            if not rows:
                return
            batch = self._batch(rows)
            yield batch
            if len(rows) < s.batch_size:
                return
            after = _key_after(ordering, list(batch.cursor.key()))

    def _bound(self, value: Any) -> Any:
        """A datetime given from outside (a backfill's window) as the updated column compares with it.

        An aware value becomes the source's wall-clock time for a column without a time zone, and
        text for timestamps stored as text (SQLite), so the window means the same on every database.
        """
        if not isinstance(value, datetime):
            return value
        sample = self._ordering_sample()
        column_type = self._types.get(self.source.updated_column)
        naive = not getattr(column_type, "timezone", False) if column_type is not None else None
        if sample is not None and not isinstance(column_type, DateTime):
            naive = not (isinstance(sample, datetime) and sample.tzinfo is not None)
        if value.tzinfo is not None and naive:
            value = value.astimezone(self.tz).replace(tzinfo=None)
        elif value.tzinfo is None and naive is False:
            value = value.replace(tzinfo=self.tz)
        if isinstance(sample, str):
            value = _like_text(value, sample)
        return value

    def _ordering_sample(self) -> Any:
        """One ordering value as the database returns it, for a column whose type is not declared."""
        updated = self.source.updated_column
        if self._sample is None and not isinstance(self._types.get(updated), DateTime):
            query = select(self._cols[updated]).select_from(self._from).where(self._cols[updated].is_not(None))
            try:
                with self.engine.connect() as conn:
                    self._sample = conn.execute(query.limit(1)).scalar()
            except SQLAlchemyError as exc:
                raise self._fail("reading rows failed", exc) from exc
        return self._sample

    def _minus_lookback(self, value: Any) -> Any:
        lookback = self.source.lookback
        if isinstance(value, datetime | date):
            return value - timedelta(seconds=lookback)
        if isinstance(value, int | float | Decimal):
            return value - type(value)(lookback)
        if isinstance(value, str):  # a timestamp stored as text (SQLite)
            try:
                return _like_text(datetime.fromisoformat(value) - timedelta(seconds=lookback), value)
            except ValueError:
                pass
        logger.warning("source %s: cannot look back from %r; reading from the cursor", self.source.name, value)
        return value

    def read_changes(self, cursor: SqlCursor | None) -> Iterator[SqlBatch]:
        """Rows changed since ``cursor`` (re-reading ``lookback`` before it, for late commits)."""
        if cursor is None:
            yield from self._pages(None)
            return
        updated = self._cols[self.source.updated_column]
        if self.source.lookback:
            start = updated >= self._minus_lookback(cursor.value)
        else:
            start = _key_after([updated, *(self._cols[c] for c in self.source.id_columns)], list(cursor.key()))
        yield from self._pages(start)

    def read_window(self, since: Any, until: Any = None) -> Iterator[SqlBatch]:
        """Rows whose ordering value lies in ``[since, until)``: a backfill that ignores the cursor."""
        until = self._bound(until) if until is not None else None
        yield from self._pages(self._cols[self.source.updated_column] >= self._bound(since), until)

    def live_ids(self) -> Iterator[str]:
        """External ids of every row that is not soft-deleted (for finding hard deletes)."""
        s = self.source
        cols = [self._cols[c] for c in s.id_columns]
        query = select(*cols, *([self._cols[s.deleted_column]] if s.deleted_column else [])).select_from(self._from)
        try:
            with self.engine.connect() as conn:
                result = conn.execution_options(stream_results=True, yield_per=10_000).execute(query)
                for row in result.mappings():
                    if s.deleted_column and row[s.deleted_column]:
                        continue
                    yield self._external_id(row)
        except SQLAlchemyError as exc:
            raise self._fail("listing ids failed", exc) from exc

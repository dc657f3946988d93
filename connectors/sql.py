"""SQL databases as sources: rows become Documents, read incrementally with a compound keyset cursor.

The cursor is ``(updated, id...)``: rows are read ordered by that key, in batches, each batch
starting strictly after the last row of the previous one, so rows sharing a timestamp are never
skipped or read twice. Every identifier from the configuration is checked against the database
and quoted; sessions are read-only where the database supports it; the URL (and so the password)
comes from the environment and is masked wherever it is shown.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
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
from sqlalchemy.sql import quoted_name

from connectors.articles import detect_language
from connectors.document import Document, ItemFailure
from connectors.errors import ConfigError, SourceError
from connectors.sources import SqlSource, template_fields

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 1_000_000  # longer texts are cut (and say so in their metadata)


def mask(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


@dataclass
class SqlCursor:
    """Position after the last committed row: its ordering value and id values."""

    value: Any = None
    ids: list[Any] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> SqlCursor | None:
        if not data or data.get("value") is None:
            return None
        value = data["value"]
        if data.get("kind") == "datetime":
            value = datetime.fromisoformat(value)
        elif data.get("kind") == "date":
            value = date.fromisoformat(value)
        elif data.get("kind") == "decimal":
            value = Decimal(value)
        return cls(value, list(data.get("ids", [])))

    def to_json(self) -> dict[str, Any]:
        value, kind = self.value, "number"
        if isinstance(value, datetime):
            value, kind = value.isoformat(), "datetime"
        elif isinstance(value, date):
            value, kind = value.isoformat(), "date"
        elif isinstance(value, Decimal):
            value, kind = str(value), "decimal"
        elif isinstance(value, str):
            kind = "string"
        return {"value": value, "kind": kind, "ids": [_jsonable(v) for v in self.ids]}

    def key(self) -> tuple:
        return (self.value, *self.ids)


@dataclass
class SqlBatch:
    documents: list[Document] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # external ids of soft-deleted rows
    failures: list[ItemFailure] = field(default_factory=list)
    cursor: SqlCursor | None = None  # the key of the batch's last row
    rows: int = 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value) if value == value.to_integral_value() or abs(value) < 1e15 else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


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
        self._secret = make_url(url).password if "://" in url else None
        self.display_url = mask(url)
        try:
            tz = ZoneInfo(source.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"source {source.name}: timezone {source.timezone!r} is unknown") from exc
        self.tz = tz
        connect_args: dict[str, Any] = {}
        try:
            dialect = make_url(url).get_dialect().name
        except (ArgumentError, NoSuchModuleError) as exc:
            raise ConfigError(f"source {source.name}: {source.url_env} is not a usable database URL ({exc})") from exc
        if dialect == "postgresql":
            connect_args["connect_timeout"] = 10
        elif dialect in ("mysql", "mariadb"):
            connect_args.update(connect_timeout=10, read_timeout=300)
        self.engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args)
        _read_only(self.engine)
        self._from = None
        self._cols: dict[str, Any] = {}

    # -- errors ---------------------------------------------------------------------------------

    def _scrub(self, message: str) -> str:
        if self._secret:
            message = message.replace(self._secret, "***")
        return message

    def _fail(self, what: str, exc: Exception) -> SourceError:
        detail = getattr(exc, "orig", None) or exc
        first_line = str(detail).strip().splitlines()[0] if str(detail).strip() else type(exc).__name__
        return SourceError(self._scrub(f"source {self.source.name} ({self.display_url}): {what}: {first_line}"))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> SqlReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- checking the configuration against the database ---------------------------------------------

    def check(self) -> None:
        """Connect and make sure the table or query and every configured column exist."""
        s = self.source
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
                probe = select(literal_column("*")).select_from(text(f"({s.query}) AS kup_probe")).limit(0)
                with self.engine.connect() as conn:
                    types = dict.fromkeys(conn.execute(probe).keys())
                self._from = text(f"({s.query}) AS kup_source")
        except SourceError:
            raise
        except SQLAlchemyError as exc:
            raise self._fail("cannot read the table or query", exc) from exc
        missing = {col: setting for col, setting in s.columns().items() if col not in types}
        if missing:
            listed = ", ".join(f"{col!r} (named by {setting})" for col, setting in missing.items())
            raise SourceError(
                f"source {s.name}: column(s) {listed} do not exist; available: {', '.join(types) or 'none'}"
            )
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
        return json.dumps([_jsonable(v) for v in values], ensure_ascii=False)

    def _aware(self, value: Any) -> datetime | None:
        if isinstance(value, str):  # a query on SQLite returns timestamps as text
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=self.tz) if value.tzinfo is None else value
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=self.tz)
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
            return ItemFailure(external_id, "text columns are empty or NULL", url=url, title=title)
        metadata = {name: _jsonable(row[name]) for name in s.metadata_columns}
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
        s = self.source
        ordering = [self._cols[s.updated_column], *(self._cols[c] for c in s.id_columns)]
        upper = self._cols[s.updated_column] < until if until is not None else None
        after = None
        while True:
            conditions = [c for c in (start, upper, after) if c is not None]
            query = self._select(and_(*conditions) if conditions else None, s.batch_size)
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

    def read_changes(self, cursor: SqlCursor | None) -> Iterator[SqlBatch]:
        """Rows changed since ``cursor`` (re-reading ``lookback`` before it, for late commits)."""
        if cursor is None:
            yield from self._pages(None)
            return
        updated = self._cols[self.source.updated_column]
        value = cursor.value
        if self.source.lookback:
            if isinstance(value, datetime | date):
                value = value - timedelta(seconds=self.source.lookback)
            elif isinstance(value, int | float | Decimal):
                value = value - type(value)(self.source.lookback)
            start = updated >= value
        else:
            start = _key_after([updated, *(self._cols[c] for c in self.source.id_columns)], list(cursor.key()))
        yield from self._pages(start)

    def read_window(self, since: Any, until: Any = None) -> Iterator[SqlBatch]:
        """Rows whose ordering value lies in ``[since, until)``: a backfill that ignores the cursor."""
        yield from self._pages(self._cols[self.source.updated_column] >= since, until)

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

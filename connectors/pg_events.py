"""PostgreSQL change notifications for SQL sources declared ``events: notify``: the trigger SQL, and a listener.

The trigger sends only the changed row's key (its ``id_columns``) on the source's channel; the row itself is read
later through the normal cursor path (``indexing.sql_sync``), so every check still applies and a lost notification
costs latency, never data. The listener reconnects with backoff; after every (re)connect it reports each source as
changed, because notifications sent while it was away are gone and the cursor path must catch up. Bursts are
coalesced per source (a short quiet period, a longest delay, a smallest spacing) and hold a bounded number of keys.

One concept, ~390 lines: the trigger and its listener share the channel and payload format they agree on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from connectors.sources import SqlSource
from errors import ConfigError, SourceError
from errors.redact import mask_text, mask_url

logger = logging.getLogger(__name__)

MAX_KEYS = 100  # row keys kept per pending change; a storm beyond this is only counted
MAX_PAYLOAD_CHARS = 8000  # PostgreSQL's own NOTIFY payload limit
MAX_SENT_KEY_BYTES = 7000  # a longer payload goes out as a marker without its key
_IDENT_MAX = 63  # PostgreSQL truncates longer identifiers
APP_NAME = "kup-listen"  # the listener's sessions in pg_stat_activity


def _ident(prefix: str, name: str) -> str:
    """``prefix + name`` within PostgreSQL's 63-character identifiers, unique even when cut short."""
    full = f"{prefix}{name}"
    if len(full) <= _IDENT_MAX:
        return full
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{full[: _IDENT_MAX - 9]}_{digest}"


def channel(source: SqlSource | str) -> str:
    """The NOTIFY channel of a source."""
    return _ident("kup_", source if isinstance(source, str) else source.name)


def _names(source: SqlSource) -> tuple[str, str]:
    """The row trigger's and the TRUNCATE trigger's names; each trigger's function has its name."""
    return _ident("kup_notify_", source.name), _ident("kup_truncate_", source.name)


def _require_table(source: SqlSource) -> str:
    if source.table is None:
        raise ConfigError(f"source {source.name}: events need a table, not a query")
    return source.table


def install_sql(source: SqlSource):
    """The statements (psycopg ``Composed``) creating the trigger function and the row and TRUNCATE triggers."""
    from psycopg import sql

    table = _require_table(source)
    schema = source.db_schema or "public"
    row, truncate = _names(source)
    target = sql.Identifier(schema, table)
    key = sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in source.id_columns)
    # The writer's statement never fails because of us: a key too long for NOTIFY (8,000 bytes) is sent as a
    # marker without a key (the listener then catches up through the cursor), and any error sending it is dropped.
    body = sql.SQL(
        "DECLARE r record; payload text;\n"
        "BEGIN\n"
        "  IF TG_OP = 'DELETE' THEN r := OLD; ELSE r := NEW; END IF;\n"
        "  payload := json_build_object('op', TG_OP, 'key', json_build_array({key}))::text;\n"
        "  IF octet_length(payload) > {limit} THEN\n"
        "    payload := json_build_object('op', TG_OP, 'key', NULL)::text;\n"
        "  END IF;\n"
        "  PERFORM pg_notify({channel}, payload);\n"
        "  RETURN NULL;\n"
        "EXCEPTION WHEN OTHERS THEN\n"
        "  RETURN NULL;\n"
        "END"
    ).format(channel=sql.Literal(channel(source)), key=key, limit=sql.Literal(MAX_SENT_KEY_BYTES))
    truncate_body = sql.SQL(
        "BEGIN\n  PERFORM pg_notify({channel}, json_build_object('op', TG_OP)::text);\n  RETURN NULL;\nEND"
    ).format(channel=sql.Literal(channel(source)))
    function = "CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS {}"
    return [
        sql.SQL(function).format(sql.Identifier(schema, row), sql.Literal(body.as_string(None))),
        sql.SQL(function).format(sql.Identifier(schema, truncate), sql.Literal(truncate_body.as_string(None))),
        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(row), target),
        sql.SQL("CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {} FOR EACH ROW EXECUTE FUNCTION {}()").format(
            sql.Identifier(row), target, sql.Identifier(schema, row)
        ),
        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(truncate), target),
        sql.SQL("CREATE TRIGGER {} AFTER TRUNCATE ON {} FOR EACH STATEMENT EXECUTE FUNCTION {}()").format(
            sql.Identifier(truncate), target, sql.Identifier(schema, truncate)
        ),
    ]


def remove_sql(source: SqlSource):
    """The statements removing what ``install_sql`` created (nothing else; missing parts are fine)."""
    from psycopg import sql

    table = _require_table(source)
    schema = source.db_schema or "public"
    target = sql.Identifier(schema, table)
    names = _names(source)
    return [
        *(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(sql.Identifier(n), target) for n in names),
        *(sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(schema, n)) for n in names),
    ]


def script(statements: Sequence[Any]) -> str:
    """The statements as one SQL script a person can read (and run by hand)."""
    return "".join(s.as_string(None) + ";\n" for s in statements)


def conninfo(source: SqlSource, env: Mapping[str, str], url_env: str | None = None) -> str:
    """The libpq connection string for a source's database (from ``url_env``, default the source's own)."""
    var = url_env or source.url_env
    url = env.get(var)
    if not url:
        raise ConfigError(f"source {source.name}: environment variable {var} is not set; it must hold the database URL")
    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect().name
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise ConfigError(f"source {source.name}: {var} is not a usable database URL ({type(exc).__name__})") from exc
    if dialect != "postgresql":
        raise ConfigError(
            f"source {source.name}: events: notify needs PostgreSQL, but {var} points at {dialect}; "
            "remove events from this source (the minute refresh still reads it)"
        )
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def apply(source: SqlSource, statements: Sequence[Any], dsn: str) -> None:
    """Run ``statements`` in one transaction; a refusal (rights, a missing table) is one sentence."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn, conn.transaction():
            for statement in statements:
                conn.execute(statement)
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SourceError(
            f"source {source.name} ({mask_url(dsn)}): the database refused the trigger SQL: {mask_text(first)}"
        ) from exc


def installed(source: SqlSource, dsn: str) -> bool:
    """Whether the source's row trigger exists on its table."""
    import psycopg

    trigger, _ = _names(source)
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname = %s AND c.relname = %s AND n.nspname = %s",
            (trigger, source.table, source.db_schema or "public"),
        ).fetchone()
    return row is not None


# -- coalescing bursts -------------------------------------------------------------------------------


@dataclass
class Change:
    """What a source's notifications said since the last report: a bounded sample of keys and a count."""

    source: str
    reason: str = "notify"  # "notify", or "connect": the listener (re)connected and the cursor path must catch up
    count: int = 0
    keys: list[Any] = field(default_factory=list)
    ops: dict[str, int] = field(default_factory=dict)
    first_at: float = 0.0
    last_at: float = 0.0

    def add(self, op: str, key: Any, now: float) -> None:
        self.count += 1
        self.ops[op] = self.ops.get(op, 0) + 1
        if key is not None and len(self.keys) < MAX_KEYS and key not in self.keys:
            self.keys.append(key)
        self.first_at = self.first_at or now
        self.last_at = now

    def payload(self) -> dict[str, Any]:
        return {"source": self.source, "reason": self.reason, "count": self.count, "keys": self.keys, "ops": self.ops}


class Debouncer:
    """Per source: report after ``quiet`` seconds without news, or ``max_delay`` after the first, and never two
    reports within ``spacing`` seconds. Memory per source is bounded (``MAX_KEYS`` keys and counters)."""

    def __init__(self, quiet: float = 0.3, max_delay: float = 2.0, spacing: float = 2.0) -> None:
        self.quiet, self.max_delay, self.spacing = quiet, max_delay, spacing
        self._pending: dict[str, Change] = {}
        self._last_report: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, source: str, op: str, key: Any, now: float | None = None, reason: str = "notify") -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            change = self._pending.get(source)
            if change is None:
                change = self._pending[source] = Change(source, reason=reason)
            elif reason == "connect":
                change.reason = "connect"
            change.add(op, key, now)

    def due(self, now: float | None = None) -> list[Change]:
        """The changes to report now (removed from the pending set)."""
        now = time.monotonic() if now is None else now
        out = []
        with self._lock:
            for source, change in list(self._pending.items()):
                settled = now - change.last_at >= self.quiet or now - change.first_at >= self.max_delay
                spaced = now - self._last_report.get(source, -1e9) >= self.spacing
                if settled and spaced:
                    out.append(self._pending.pop(source))
                    self._last_report[source] = now
        return out

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)


# -- listening ------------------------------------------------------------------------------------------


MAX_KEY_PARTS = 16  # a row key has as many parts as the source's id columns
MAX_KEY_PART_CHARS = 200


def _key(value: Any) -> Any:
    """A row key as the trigger sends it: a scalar or a short flat list of scalars; anything else is no key (the
    change is still counted, and the cursor path reads what changed)."""
    scalar = (str, int, float, bool, type(None))
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, str):
        return value[:MAX_KEY_PART_CHARS]
    if isinstance(value, scalar):
        return value
    if isinstance(value, list) and len(value) <= MAX_KEY_PARTS and all(isinstance(v, scalar) for v in value):
        return [v[:MAX_KEY_PART_CHARS] if isinstance(v, str) else v for v in value]
    return None


def parse_payload(payload: str) -> tuple[str, Any]:
    """``(op, key)`` from a trigger's payload; anything else (not JSON, nested too deep for the parser, a key that is
    no row key) is counted as a change without a key, for any role may NOTIFY on the channel."""
    try:
        data = json.loads(payload[:MAX_PAYLOAD_CHARS])
    except (ValueError, RecursionError):
        return "UNKNOWN", None
    if not isinstance(data, dict):
        return "UNKNOWN", None
    return str(data.get("op", "UNKNOWN"))[:16], _key(data.get("key"))


class Listener:
    """LISTENs on the channels of ``sources`` (one connection per database) and hands coalesced changes to
    ``report`` from one thread. Connections that drop are opened again with capped exponential backoff."""

    def __init__(
        self,
        sources: Sequence[SqlSource],
        env: Mapping[str, str],
        report: Callable[[Change], None],
        *,
        debouncer: Debouncer | None = None,
        backoff_cap: float = 30.0,
        keepalive: float = 30.0,
    ) -> None:
        self.report = report
        self.debouncer = debouncer or Debouncer()
        self.backoff_cap = backoff_cap
        self.keepalive = keepalive
        self.stopping = threading.Event()
        self.connects = 0  # successful connections so far (a reconnect counts too)
        self.by_dsn: dict[str, list[SqlSource]] = {}
        for source in sources:
            self.by_dsn.setdefault(conninfo(source, env), []).append(source)
        self._threads: list[threading.Thread] = []
        self.connected = threading.Event()
        self.replaced_by: str | None = None  # set by whoever runs it when another listener took over

    def start(self) -> Listener:
        for dsn, sources in self.by_dsn.items():
            thread = threading.Thread(target=self._listen_forever, args=(dsn, sources), name="pg-listen", daemon=True)
            thread.start()
            self._threads.append(thread)
        thread = threading.Thread(target=self._report_forever, name="pg-report", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for change in self.debouncer.due(now=time.monotonic() + 3600):  # what is left goes out before we leave
            self._report(change)

    def run(self, seconds: float | None = None) -> None:
        """Listen until ``seconds`` pass (forever when None) or ``stop()`` is called."""
        self.start()
        try:
            self.stopping.wait(seconds)
        finally:
            self.stop()

    def _report(self, change: Change) -> None:
        try:
            self.report(change)
        except Exception as exc:  # noqa: BLE001 - a failed report must not stop listening; the minute refresh covers it
            logger.warning(
                "could not report the change of source %s (%s: %s); the scheduled refresh will read it",
                change.source,
                type(exc).__name__,
                mask_text(str(exc).strip().splitlines()[0] if str(exc).strip() else ""),
            )

    def _report_forever(self) -> None:
        while not self.stopping.wait(0.05):
            for change in self.debouncer.due():
                self._report(change)

    def _listen_forever(self, dsn: str, sources: list[SqlSource]) -> None:
        import psycopg
        from psycopg import sql

        channels = {channel(s): s.name for s in sources}
        attempt = 0
        while not self.stopping.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True, connect_timeout=10, application_name=APP_NAME) as conn:
                    for name in channels:
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(name)))
                    self.connects += 1
                    self.connected.set()
                    if attempt:
                        logger.warning("listening again on %s after %d failed attempt(s)", mask_url(dsn), attempt)
                    attempt = 0
                    now = time.monotonic()
                    for name in channels.values():  # whatever changed while we were away: the cursor path catches up
                        self.debouncer.add(name, "CONNECT", None, now, reason="connect")
                    self._drain(conn, channels)
            except Exception as exc:  # noqa: BLE001 - lost, refused, broken, or a bug: back off, connect again
                attempt += 1
                wait = min(self.backoff_cap, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                kind = "" if isinstance(exc, psycopg.Error) else f"{type(exc).__name__}: "
                logger.warning(
                    "lost the notification connection to %s (%s%s); connecting again in %.1f s",
                    mask_url(dsn),
                    kind,
                    mask_text(first[:300]),
                    wait,
                )
                self.connected.clear()
                self.stopping.wait(wait)

    def _drain(self, conn, channels: Mapping[str, str]) -> None:
        last_ping = time.monotonic()
        while not self.stopping.is_set():
            for note in conn.notifies(timeout=0.2, stop_after=1000):
                source = channels.get(note.channel)
                if source is not None:
                    op, key = parse_payload(note.payload)
                    self.debouncer.add(source, op, key)
            if time.monotonic() - last_ping >= self.keepalive:  # a silent network failure shows up here
                conn.execute("SELECT 1")
                last_ping = time.monotonic()

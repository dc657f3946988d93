"""Sync an SQL source into the catalog: changed rows in batches, soft and hard deletes, backfills.

The cursor moves only after a batch's documents are committed, so a crash or a lost connection
between reading and committing re-reads rows; it never loses them. Reconciliation (finding hard
deletes) refuses to delete more than ``max_delete_fraction`` of a source at once: a broken query
or a revoked permission that returns nothing must not empty the index.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from connectors import FetchPolicy
from connectors.sources import SqlSource
from connectors.sql import SqlReader
from connectors.sql_cursor import SqlBatch, SqlCursor
from errors import ConfigError, SourceError
from indexing.catalog import Catalog, now_utc
from indexing.reports import SourceReport
from indexing.source_kind import PULL_TIMEOUT_CAP, PullContext, still_down

logger = logging.getLogger(__name__)


def _commit(
    catalog: Catalog, source: SqlSource, batch: SqlBatch, report: SourceReport, now: datetime
) -> dict[str, str]:
    """Commit one batch; returns each document's outcome (``new``, ``updated``, ``unchanged``)."""
    outcomes = catalog.upsert_documents(batch.documents, now)
    report.count(outcomes.values())
    report.deleted += catalog.mark_deleted(source.name, batch.deleted, now)
    report.failed += catalog.quarantine(source.name, batch.failures, now)
    return outcomes


def _ahead(new: SqlCursor, old: SqlCursor | None) -> bool:
    """Whether ``new`` lies past ``old`` (a look-back re-reads rows behind the saved cursor).

    Compared as saved: a cursor read back from the catalog holds JSON values (a UUID id as text).
    """
    if old is None:
        return True
    return SqlCursor.from_json(new.to_json()).key() > SqlCursor.from_json(old.to_json()).key()


def _reconcile(
    reader: SqlReader, catalog: Catalog, source: SqlSource, report: SourceReport, now: datetime
) -> str | None:
    """Mark documents whose rows are gone; returns a warning when the mass-deletion guard held."""
    present = set(reader.live_ids())
    known = 0
    missing = []
    for external_id in catalog.live_external_ids(source.name):
        known += 1
        if external_id not in present:
            missing.append(external_id)
    if known and len(missing) > source.max_delete_fraction * known:
        warning = (
            f"reconciliation would delete {len(missing)} of {known} documents "
            f"({len(missing) / known:.0%}), more than max_delete_fraction {source.max_delete_fraction:.0%}; "
            "nothing was deleted (check the query and the account's permissions; if those rows are really "
            "gone, raise max_delete_fraction for one run)"
        )
        logger.warning("source %s: %s", source.name, warning)
        return warning
    report.deleted += catalog.mark_deleted(source.name, missing, now)
    return None


def probe_sql(source: SqlSource, env: Mapping[str, str] | None = None) -> str | None:
    """Connect to a backing-off source's database (its connect timeout, nothing read): None when it answers,
    else why not. A database back from an outage is read by the next run instead of after its backoff."""
    try:
        with SqlReader(source, env) as reader:
            reader.probe()
    except (ConfigError, SourceError) as exc:
        return str(exc)
    return None


def ingest_sql(
    source: SqlSource,
    catalog: Catalog,
    *,
    now: datetime | None = None,
    force: bool = False,
    env: Mapping[str, str] | None = None,
    on_batch: Callable[[SqlBatch], None] | None = None,
) -> SourceReport:
    """Read what changed since the cursor, commit it batch by batch, and find hard deletes when due; while the
    source backs off after failures, only a probe of its database (a pull as soon as it answers)."""
    now = now or now_utc()
    kind = SqlKind(env)
    if skipped := still_down(kind, source, PullContext(catalog, None, now, force)):
        return skipped
    return read_changes(source, catalog, now=now, env=env, on_batch=on_batch)


def read_changes(
    source: SqlSource,
    catalog: Catalog,
    *,
    now: datetime,
    env: Mapping[str, str] | None = None,
    on_batch: Callable[[SqlBatch], None] | None = None,
) -> SourceReport:
    """Commit the rows changed since the cursor, batch by batch, and find hard deletes when due."""
    started = time.perf_counter()
    report = SourceReport(source=source.name, kind="sql")
    state: dict[str, Any] = dict(catalog.source_cursor(source.name) or {})
    try:
        with SqlReader(source, env) as reader:
            reader.check()
            cursor = SqlCursor.from_json(state.get("position"))
            for batch in reader.read_changes(cursor):
                _commit(catalog, source, batch, report, now)
                if batch.cursor and _ahead(batch.cursor, cursor):
                    cursor = batch.cursor
                    state["position"] = cursor.to_json()
                    catalog.save_cursor(source.name, "sql", state)  # only after the batch is committed
                if on_batch:
                    on_batch(batch)
            state["read_to_end_at"] = now.isoformat()  # every change up to this read is in: caught up then
            last = state.get("reconciled_at")
            due = source.reconcile_minutes is not None and (
                last is None or datetime.fromisoformat(last) + timedelta(minutes=source.reconcile_minutes) <= now
            )
            if due:
                state["guard_warning"] = _reconcile(reader, catalog, source, report, now)
                state["reconciled_at"] = now.isoformat()
    except (SourceError, ConfigError) as exc:
        report.error = str(exc)
        catalog.record_source_failure(source.name, "sql", str(exc), now)
        logger.warning("%s", exc)
    else:
        catalog.record_source_success(source.name, "sql", state, now, warning=state.get("guard_warning"))
    report.warnings = [w for w in [state.get("guard_warning")] if w]
    report.seconds = time.perf_counter() - started
    return report


def backfill_sql(
    source: SqlSource,
    catalog: Catalog,
    since: datetime | int | float,
    until: datetime | int | float | None = None,
    *,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> SourceReport:
    """Re-read the rows whose ordering value lies in ``[since, until)``; the cursor is left alone.

    Changed and missed rows are committed; unchanged ones (same content hash) go back to the
    indexer as well, which rewrites only what differs from the store, so a backfill also repairs
    an index that lost points (as a feed's backfill does).
    """
    started = time.perf_counter()
    now = now or now_utc()
    report = SourceReport(source=source.name, kind="sql")
    try:
        with SqlReader(source, env) as reader:
            reader.check()
            for batch in reader.read_window(since, until):
                outcomes = _commit(catalog, source, batch, report, now)
                catalog.requeue([doc_id for doc_id, outcome in outcomes.items() if outcome == "unchanged"])
    except (SourceError, ConfigError) as exc:
        report.error = str(exc)
    report.seconds = time.perf_counter() - started
    return report


class SqlKind:
    """``type: sql`` in the sources file: a table or a read-only query, its URL in the environment (``url_env``;
    ``env`` replaces the process's environment, for tests and tools)."""

    type = "sql"
    config = SqlSource

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = env

    def pull(self, source: SqlSource, context: PullContext) -> SourceReport:
        return read_changes(source, context.catalog, now=context.now, env=self.env)

    def backfill(
        self, source: SqlSource, context: PullContext, since: datetime, until: datetime | None
    ) -> SourceReport:
        return backfill_sql(source, context.catalog, since, until, env=self.env, now=context.now)

    def probe(self, source: SqlSource, context: PullContext) -> str | None:
        return probe_sql(source, self.env)

    def pull_timeout(self, source: SqlSource, policy: FetchPolicy, article_workers: int) -> float:
        return PULL_TIMEOUT_CAP  # batches of rows: the cap, however many there are

    def describe(self, source: SqlSource) -> str:
        what = f"table {source.table}" if source.table else "query"
        return f"database {what} (URL in ${source.url_env})"


SQL = SqlKind()

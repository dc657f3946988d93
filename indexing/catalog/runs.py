"""The refresh run log and what the catalog reports about itself: freshness lags and status."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from indexing.catalog.engine import CatalogEngine
from indexing.reports import RefreshSummary
from indexing.schema import documents, failures, refresh_runs, roles, source_state


@dataclass(frozen=True)
class RefreshRun:
    """A recorded refresh run: when it started and finished, and its summary."""

    started_at: datetime
    finished_at: datetime
    summary: RefreshSummary


class Runs(CatalogEngine):
    """One row per refresh run, and the read-only views the dashboard and the CLI show."""

    def record_refresh(self, started_at: datetime, finished_at: datetime, summary: RefreshSummary) -> None:
        row = {"started_at": started_at, "finished_at": finished_at, "summary": summary.to_dict()}
        with self._write() as conn:
            conn.execute(refresh_runs.insert().values(**row))

    def last_refresh(self) -> RefreshRun | None:
        """The latest run, its summary read back whichever version of kup wrote it."""
        with self._read() as conn:
            row = conn.execute(select(refresh_runs).order_by(refresh_runs.c.id.desc()).limit(1)).first()
        if row is None:
            return None
        return RefreshRun(row.started_at, row.finished_at, RefreshSummary.from_dict(row.summary or {}))

    def searchable_lags(self, since: datetime, limit: int = 10_000) -> dict[str, list[float]]:
        """Seconds to searchable for documents first seen since ``since`` and indexed, measured two ways.

        ``first_seen``: from the moment the pipeline first saw the document, for every document.
        ``published``: from its publication, only for documents published after their source's first document was
        seen (an old article a new feed still carries says nothing about how fresh the index is).
        """
        samples = self.searchable_samples(since, limit)
        return {
            "published": [s["published_lag"] for s in samples if s["published_lag"] is not None],
            "first_seen": [s["first_seen_lag"] for s in samples],
        }

    def searchable_samples(self, since: datetime, limit: int = 10_000) -> list[dict[str, Any]]:
        """Per document version first seen since ``since`` and now searchable (newest first): its ``source``,
        ``indexed_at`` (when it first became searchable), ``first_seen_lag`` (from when this version was first seen)
        and ``published_lag`` (from its publication: first versions only, and None when undated or published before
        its source's first document was seen), in seconds. Re-indexing (a reindex, a backfill) moves neither: a
        version is measured to the moment it first became searchable. What ``searchable_lags``, ``kup status`` and
        each refresh run's summary report."""
        added = (
            select(documents.c.source, func.min(documents.c.first_seen_at).label("added_at"))
            .group_by(documents.c.source)
            .subquery()
        )
        with self._read() as conn:
            rows = conn.execute(
                select(
                    documents.c.source,
                    documents.c.published_at,
                    documents.c.published_estimated,
                    documents.c.first_seen_at,
                    documents.c.updated_at,
                    documents.c.searchable_at,
                    added.c.added_at,
                )
                .join(added, added.c.source == documents.c.source)
                .where(
                    documents.c.updated_at >= since,
                    documents.c.searchable_at.is_not(None),
                    documents.c.status == "indexed",
                )
                .order_by(documents.c.updated_at.desc())
                .limit(limit)
            ).all()
        samples = []
        for r in rows:
            first_version = r.updated_at <= r.first_seen_at
            dated = r.published_at is not None and not r.published_estimated and r.published_at >= r.added_at
            samples.append(
                {
                    "source": r.source,
                    "indexed_at": r.searchable_at,
                    "first_seen_lag": max(0.0, (r.searchable_at - r.updated_at).total_seconds()),
                    "published_lag": (
                        max(0.0, (r.searchable_at - r.published_at).total_seconds())
                        if dated and first_version
                        else None
                    ),
                }
            )
        return samples

    def status(self) -> dict[str, Any]:
        """Counts per source and status, source health, and open failures (newest first)."""
        with self._read() as conn:
            counts = conn.execute(
                select(documents.c.source, documents.c.status, func.count()).group_by(
                    documents.c.source, documents.c.status
                )
            ).all()
            states = conn.execute(select(source_state)).all()
            open_failures = conn.execute(
                select(failures).where(failures.c.resolved_at.is_(None)).order_by(failures.c.last_at.desc()).limit(50)
            ).all()
            quarantined = conn.execute(
                select(documents.c.source, documents.c.external_id, documents.c.last_error)
                .where(documents.c.status == "quarantined")
                .order_by(documents.c.updated_at.desc())
                .limit(50)
            ).all()
        per_source: dict[str, Counter] = {}
        for source, status, n in counts:
            per_source.setdefault(source, Counter())[status] = n
        return {
            "documents": {s: dict(c) for s, c in sorted(per_source.items())},
            "sources": [dict(r._mapping) for r in states],
            "failures": [dict(r._mapping) for r in open_failures],
            "quarantined": [dict(r._mapping) for r in quarantined],
        }

    def metric_rows(self, queued: Sequence[str]) -> dict[str, list[tuple]]:
        """What a metrics scrape reads, in one transaction: ``counts`` (source, status, documents), ``oldest_queued``
        (source, oldest ``updated_at`` among documents in a ``queued`` status), ``states`` (source, kind, last
        success, last attempt, failures in a row), ``roles`` (name, renewed at) and ``failures`` (source, stage,
        open failures)."""
        queries = {
            "counts": select(documents.c.source, documents.c.status, func.count()).group_by(
                documents.c.source, documents.c.status
            ),
            "oldest_queued": select(documents.c.source, func.min(documents.c.updated_at))
            .where(documents.c.status.in_(queued))
            .group_by(documents.c.source),
            "states": select(
                source_state.c.source,
                source_state.c.kind,
                source_state.c.last_success_at,
                source_state.c.last_attempt_at,
                source_state.c.consecutive_failures,
            ),
            "roles": select(roles.c.name, roles.c.renewed_at),
            "failures": select(failures.c.source, failures.c.stage, func.count())
            .where(failures.c.resolved_at.is_(None))
            .group_by(failures.c.source, failures.c.stage),
        }
        with self._read() as conn:
            return {name: [tuple(row) for row in conn.execute(query)] for name, query in queries.items()}

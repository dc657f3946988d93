"""What ``kup status`` shows: each source's documents and health, pending work, the last refresh, freshness and
the champion's drift, for people and as plain data for ``--json``."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from connectors import load_sources
from errors import ConfigError
from errors.durations import human_duration
from errors.redact import mask_url
from flows.drift_check import drift_status
from indexing.reports import percentiles

if TYPE_CHECKING:
    from flows.runtime import Runtime


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = int((now - when).total_seconds())
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago" if seconds < 172800 else f"{when:%Y-%m-%d %H:%M} UTC"


FRESHNESS_WINDOW_HOURS = 24


def _lag_figures(values: list[float]) -> dict[str, Any]:
    return {**asdict(percentiles(values)), "count": len(values)}


def freshness_data(catalog, now: datetime) -> dict[str, Any]:
    """Time to searchable for documents first seen in the last day: from first seen (all) and from publication
    (items published after their source was added), in seconds."""
    lags = catalog.searchable_lags(now - timedelta(hours=FRESHNESS_WINDOW_HOURS))
    return {
        "window_hours": FRESHNESS_WINDOW_HOURS,
        "first_seen_to_searchable_seconds": _lag_figures(lags["first_seen"]),
        "published_to_searchable_seconds": _lag_figures(lags["published"]),
    }


def freshness_lines(freshness: dict[str, Any]) -> list[str]:
    """The two lags in words; "n/a" with the reason when there is nothing to measure."""
    hours = freshness["window_hours"]
    seen, published = freshness["first_seen_to_searchable_seconds"], freshness["published_to_searchable_seconds"]
    if not seen["count"]:
        return [f"freshness: n/a (nothing indexed in {hours} h)"]
    lines = [
        f"freshness ({seen['count']} document(s) first seen in the last {hours} h):",
        f"  first seen to searchable: p50 {human_duration(seen['p50'])}, p95 {human_duration(seen['p95'])}",
    ]
    if published["count"]:
        lines.append(
            f"  published to searchable:  p50 {human_duration(published['p50'])}, "
            f"p95 {human_duration(published['p95'])} ({published['count']} published after their source was added)"
        )
    else:
        lines.append("  published to searchable:  n/a (nothing published since its source was added)")
    return lines


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None


def drift_line(report: dict[str, Any]) -> str:
    """One measurement (a recorded ``DriftReport``) in words: the ratio against its threshold, or why none."""
    if report.get("ratio") is None:
        return f"drift: not measured, {report.get('skipped')}"
    due = ": a fine-tune is due (`kup finetune`)" if report.get("exceeded") else ""
    return (
        f"drift: champion {report.get('champion')} reads recent documents at {report['ratio']:.3f}x the perplexity "
        f"of its training period (threshold {report.get('threshold')}){due}"
    )


def drift_lines(drift: dict[str, Any], now: datetime) -> list[str]:
    """The champion's drift for ``kup status``: off, not measured yet, or the last ratio and when it was measured
    (and the last check's reason when it measured nothing since)."""
    if not drift["enabled"]:
        return ["drift: off (KUP_DRIFT_CHECK=true has a refresh measure it)"]
    last, skip = drift["last_measured"], drift["last_skip"]
    lines = []
    if last is None:
        lines.append(
            f"drift: not measured yet (threshold {drift['threshold']}; a refresh measures it, "
            f"at most every {drift['every_hours']:g} h)"
        )
    else:
        lines.append(f"{drift_line(last)}; measured {_ago(_when(last['measured_at']), now)}")
    if skip is not None:
        lines.append(f"  last check {_ago(_when(skip['measured_at']), now)}: not measured, {skip['reason']}")
    return lines


def _cursor_position(state: dict[str, Any], now: datetime) -> tuple[Any, float | None]:
    """An SQL source's cursor (the last committed change) and how far behind now it is."""
    if not state.get("cursor"):  # a feed: no need to load the SQL connector (SQLAlchemy, trafilatura)
        return None, None
    from connectors.sql_cursor import SqlCursor

    cursor = SqlCursor.from_json((state.get("cursor") or {}).get("position"))
    return cursor.position(now) if cursor else (None, None)


def _describe(source) -> str | None:
    """A source in its kind's own words; None when its kind cannot say (a plugin's bug stays out of `kup status`)."""
    from indexing.ingest import kind_of

    try:
        return kind_of(source).describe(source)
    except Exception:  # noqa: BLE001 - someone else's code describing itself must not break the status
        return None


def status_data(runtime: Runtime) -> dict[str, Any]:
    settings = runtime.settings
    catalog = runtime.catalog
    now = datetime.now(UTC)
    raw = catalog.status()
    configured: list[str] | None
    reads: dict[str, str] = {}
    try:
        loaded = load_sources(settings.sources_file)
        configured = [s.name for s in loaded]
        sources_error = None
        reads = {s.name: _describe(s) for s in loaded}
    except ConfigError as exc:  # unreadable: which sources are configured is unknown, not "none"
        configured, sources_error = None, str(exc)
    states = {s["source"]: s for s in raw["sources"]}
    rows = []
    for name in sorted(set(configured or ()) | set(raw["documents"]) | set(states)):
        counts = raw["documents"].get(name, {})
        state = states.get(name, {})
        position, lag = _cursor_position(state, now)
        rows.append(
            {
                "source": name,
                "configured": None if configured is None else name in configured,
                "kind": state.get("kind", "feed"),
                "reads": reads.get(name),  # what its kind says it reads (None: not in the sources file)
                "documents": sum(n for s, n in counts.items() if s != "deleted"),
                "by_status": counts,
                "last_success_at": state.get("last_success_at"),
                "last_error": state.get("last_error"),
                "consecutive_failures": state.get("consecutive_failures", 0),
                "next_attempt_at": state.get("next_attempt_at"),
                "warning": state.get("warning"),
                "cursor": position,
                "cursor_lag_seconds": lag,
                "read_to_end_at": _when((state.get("cursor") or {}).get("read_to_end_at")),
            }
        )
    totals: dict[str, int] = {}
    for counts in raw["documents"].values():
        for status, n in counts.items():
            totals[status] = totals.get(status, 0) + n
    last = catalog.last_refresh()
    return {
        "data_dir": str(settings.data_path),
        "sources_file": str(settings.sources_file),
        "sources_file_error": sources_error,
        "catalog": mask_url(settings.resolved_catalog_url),
        "index": mask_url(settings.qdrant_url) if settings.qdrant_url else str(settings.index_path),
        "points": runtime.store.count(),
        "totals": totals,
        "pending": totals.get("pending", 0) + totals.get("failed", 0),
        "sources": rows,
        "last_refresh": None
        if last is None
        else {
            "started_at": last.started_at,
            "finished_at": last.finished_at,
            "seconds": last.summary.seconds,
            "totals": asdict(last.summary.totals),
            "failed_sources": last.summary.failed_sources,
        },
        "freshness": freshness_data(catalog, now),
        "drift": drift_status(settings),
        "failures": raw["failures"],
        "quarantined": raw["quarantined"],
        "as_of": now,
    }


def print_status(data: dict[str, Any], console: Console) -> None:
    now = data["as_of"]
    console.print(f"data dir  {data['data_dir']}")
    console.print(f"catalog   {data['catalog']}")
    console.print(f"index     {data['index']} ({data['points']} points)")
    if data["sources_file_error"]:
        console.print(
            f"sources   cannot be read, so below is what the catalog holds: {data['sources_file_error']}",
            style="yellow",
            markup=False,
        )
    table = Table(title="Sources")
    for column in ("source", "reads", "docs", "indexed", "pending", "failed", "quarantined", "deleted", "last success"):
        table.add_column(column)
    notes = []
    for row in data["sources"]:
        counts = row["by_status"]
        table.add_row(
            row["source"],
            row["reads"] or row["kind"],
            str(row["documents"]),
            str(counts.get("indexed", 0)),
            str(counts.get("pending", 0)),
            str(counts.get("failed", 0)),
            str(counts.get("quarantined", 0)),
            str(counts.get("deleted", 0)),
            _ago(row["last_success_at"], now),
        )
        if row["last_error"]:
            notes.append(f"{row['source']}: failing x{row['consecutive_failures']}: {row['last_error']}")
        if row["warning"]:
            notes.append(f"{row['source']}: warning: {row['warning']}")
        if row["configured"] is False:
            notes.append(f"{row['source']}: no longer in the sources file")
        if row["cursor"] is not None:
            lag = row["cursor_lag_seconds"]
            if row.get("read_to_end_at") is not None:  # the newest change is old because nothing changed since
                newest = f", newest change {human_duration(lag)} old" if lag is not None else ""
                notes.append(
                    f"{row['source']}: up to date as of its last read {_ago(row['read_to_end_at'], now)} "
                    f"(cursor {row['cursor']}{newest})"
                )
            else:
                behind = f" (lag {human_duration(lag)})" if lag is not None else ""
                notes.append(f"{row['source']}: cursor {row['cursor']}{behind}")
    console.print(table)
    for note in notes:
        console.print(f"  {note}", markup=False)
    last = data["last_refresh"]
    console.print(
        f"pending work: {data['pending']} document(s)   "
        f"last refresh: {_ago(last['finished_at'], now) if last else 'never'}",
        markup=False,
    )
    for line in freshness_lines(data["freshness"]):
        console.print(line, markup=False)
    for line in drift_lines(data["drift"], now):
        console.print(line, markup=False)
    if data["failures"]:
        console.print(f"\nOpen failures ({len(data['failures'])}, newest first):")
        for f in data["failures"][:10]:
            console.print(f"  {f['source']} ({f['stage']}) {f['item']}: {f['reason']} (x{f['attempts']})", markup=False)
    if data["quarantined"]:
        console.print(f"\nQuarantined ({len(data['quarantined'])}):")
        for q in data["quarantined"][:10]:
            console.print(f"  {q['source']} {q['external_id']}: {q['last_error']}", markup=False)

"""What the CLI prints: status, search results, refreshes and answers for people, plain data for ``--json``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from connectors import load_sources
from errors import ConfigError
from errors.redact import mask_url
from flows.drift_check import drift_status
from indexing.reports import human_duration, percentiles

if TYPE_CHECKING:  # answering loads the language model's libraries: only the types are needed here
    from answering import Answer
    from flows.runtime import Runtime
    from indexing import SearchResult


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


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
    return {**percentiles(values), "count": len(values)}


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
    from connectors.sql import SqlCursor

    cursor = SqlCursor.from_json((state.get("cursor") or {}).get("position"))
    return cursor.position(now) if cursor else (None, None)


def status_data(runtime: Runtime) -> dict[str, Any]:
    settings = runtime.settings
    catalog = runtime.catalog
    now = datetime.now(UTC)
    raw = catalog.status()
    configured: list[str] | None
    try:
        configured = [s.name for s in load_sources(settings.sources_file)]
        sources_error = None
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
            "started_at": last["started_at"],
            "finished_at": last["finished_at"],
            "seconds": last["summary"].get("seconds"),
            "totals": last["summary"].get("totals"),
            "failed_sources": last["summary"].get("failed_sources", []),
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
    for column in ("source", "kind", "docs", "indexed", "pending", "failed", "quarantined", "deleted", "last success"):
        table.add_column(column)
    notes = []
    for row in data["sources"]:
        counts = row["by_status"]
        table.add_row(
            row["source"],
            row["kind"],
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


def search_data(result: SearchResult) -> dict[str, Any]:
    return {
        "query": result.query,
        "embed_ms": round(result.embed_ms, 2),
        "search_ms": round(result.search_ms, 2),
        "hits": [
            {
                "score": round(h.score, 4),
                "title": h.payload.get("title"),
                "url": h.payload.get("url"),
                "published": h.payload.get("published"),
                "source": h.payload.get("source"),
                "doc_id": h.payload.get("doc_id"),
                "chunk_index": h.payload.get("chunk_index"),
                "text": h.payload.get("text"),
                **_story(h.payload),
            }
            for h in result.hits
        ],
    }


def _story(payload: dict[str, Any]) -> dict[str, Any]:
    """The hit's syndicated story: its id, every outlet's URL, and the other outlets that carry it."""
    urls = payload.get("story_urls") or ([payload["url"]] if payload.get("url") else [])
    return {
        "story_id": payload.get("story_id") or payload.get("doc_id"),
        "story_urls": urls,
        "also_in": [s for s in payload.get("story_sources") or () if s != payload.get("source")],
    }


def print_search(data: dict[str, Any], console: Console) -> None:
    if not data["hits"]:
        console.print("No passages found. Is the index empty? Run `kup refresh` first.")
        return
    for rank, hit in enumerate(data["hits"], 1):
        console.print(f"[bold]{rank}. {hit['title'] or '(untitled)'}[/bold]  score {hit['score']}", highlight=False)
        console.print(
            f"   {hit['url'] or '(no URL)'}  published {hit['published'] or 'unknown'}  [{hit['source']}]",
            highlight=False,
            markup=False,
        )
        if hit.get("also_in"):
            console.print(f"   also in: {', '.join(hit['also_in'])}", highlight=False, markup=False)
        snippet = " ".join((hit["text"] or "").split())
        console.print(f"   {snippet[:300]}{'...' if len(snippet) > 300 else ''}\n", highlight=False, markup=False)


def print_refresh(summary: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Refresh ({human_duration(summary['seconds'])})")
    for column in ("source", "new", "updated", "unchanged", "failed", "note"):
        table.add_column(column)
    for row in summary["sources"]:
        note = row["error"] or row["skipped"] or ("not modified" if row["not_modified"] else "")
        if row["fallbacks"]:
            note = (note + f"; {row['fallbacks']} from feed text").lstrip("; ")
        table.add_row(
            row["source"], str(row["new"]), str(row["updated"]), str(row["unchanged"]), str(row["failed"]), Text(note)
        )
    console.print(table)
    index = summary["index"]
    lag = summary["freshness_lag_seconds"]
    console.print(
        f"indexed {index['documents']} document(s): {index['embedded']} chunk(s) embedded, {index['reused']} reused, "
        f"{index['unchanged']} unchanged, {index['deleted']} deleted, {index['failed']} failed",
        markup=False,
    )
    seen = summary.get("first_seen_lag_seconds") or {}
    if seen.get("p50") is not None:  # the same figures `kup status` shows, by the same rule
        console.print(
            f"first seen to searchable: p50 {human_duration(seen['p50'])}, p95 {human_duration(seen['p95'])}",
            markup=False,
        )
    if lag["p50"] is not None:
        console.print(
            f"published to searchable: p50 {human_duration(lag['p50'])}, p95 {human_duration(lag['p95'])}",
            markup=False,
        )
    if summary.get("drift"):
        console.print(drift_line(summary["drift"]), markup=False)
    if verdict := summary.get("verdict"):
        console.print(verdict["message"], style=None if verdict["status"] == "healthy" else "yellow", markup=False)


def print_run_figures(flow: str, result: dict[str, Any], console: Console) -> None:
    """A finished reindex's or backfill's figures in one line."""
    if flow == "reindex":
        line = (
            f"rebuilt {result['documents']} document(s) into {result['chunks']} chunk(s) in "
            f"{human_duration(result['seconds'])}; searches now use collection {result['collection']}; "
            f"{result['requeued']} document(s) changed meanwhile and go to the next refresh"
        )
    elif flow == "backfill":
        line = (
            f"backfill of {result['source']} ({result['window']}): {result['new']} new, {result['updated']} updated, "
            f"{result['unchanged']} unchanged; {result['indexed']} document(s) indexed, "
            f"{result['embedded']} chunk(s) embedded" + (f"; failed: {result['error']}" if result.get("error") else "")
        )
    else:
        line = ", ".join(f"{key} {value}" for key, value in result.items())
    console.print(line, markup=False)


def print_answer_end(answer: Answer, console: Console, err_console: Console) -> None:
    """After the streamed text: the cited sources, then (on stderr) the mode, adapter and speed."""
    console.print()
    if answer.citations:
        console.print("\nSources:")
        for c in answer.citations:
            console.print(
                f"  [{c.number}] {c.title or '(untitled)'} — {c.url or 'no URL'} ({c.published or 'undated'})"
                + (" (matched by content; the answer gave no [n])" if c.inferred else ""),
                markup=False,
            )
            others = [u for u in getattr(c, "urls", []) if u != c.url]
            if others:  # a syndicated story: every other outlet that carried it
                console.print(f"      also in: {', '.join(others)}", markup=False)
    elif answer.mode != "closed-book":
        console.print("\n(no passage cited)")
    for note in getattr(answer, "notes", None) or []:
        console.print(f"\nNote: {note}", markup=False)
    t = answer.timings
    err_console.print(
        f"{answer.mode}, adapter {answer.adapter or 'none (base model)'}; "
        f"first token {t.get('first_token_ms', '-')} ms, {t.get('tokens_per_s', '-')} tokens/s",
        markup=False,
    )

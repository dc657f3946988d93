"""What the CLI prints: search results, refreshes, run figures and answers for people, plain data for ``--json``
(``kup status`` in ``cli.views_status``, the training commands in ``cli.views_training``)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cli.views_status import drift_line
from errors.durations import human_duration

if TYPE_CHECKING:  # answering loads the language model's libraries: only the types are needed here
    from answering import Answer
    from indexing import SearchResult
    from indexing.reports import RefreshSummary


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))


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


def print_refresh(summary: RefreshSummary, console: Console) -> None:
    table = Table(title=f"Refresh ({human_duration(summary.seconds)})")
    for column in ("source", "new", "updated", "unchanged", "failed", "note"):
        table.add_column(column)
    for row in summary.sources:
        note = row.error or row.skipped or ("not modified" if row.not_modified else "")
        if row.fallbacks:
            note = (note + f"; {row.fallbacks} from feed text").lstrip("; ")
        table.add_row(row.source, str(row.new), str(row.updated), str(row.unchanged), str(row.failed), Text(note))
    console.print(table)
    index, lag, seen = summary.index, summary.freshness_lag_seconds, summary.first_seen_lag_seconds
    console.print(
        f"indexed {index.documents} document(s): {index.embedded} chunk(s) embedded, {index.reused} reused, "
        f"{index.unchanged} unchanged, {index.deleted} deleted, {index.failed} failed",
        markup=False,
    )
    if seen.p50 is not None:  # the same figures `kup status` shows, by the same rule
        console.print(
            f"first seen to searchable: p50 {human_duration(seen.p50)}, p95 {human_duration(seen.p95)}", markup=False
        )
    if lag.p50 is not None:
        console.print(
            f"published to searchable: p50 {human_duration(lag.p50)}, p95 {human_duration(lag.p95)}", markup=False
        )
    if summary.drift:
        console.print(drift_line(summary.drift), markup=False)
    if verdict := summary.verdict:
        console.print(verdict.message, style=None if verdict.status == "healthy" else "yellow", markup=False)


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

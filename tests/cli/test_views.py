"""What the CLI prints: an SQL cursor's position and lag, answers with their sources, fine-tunes and adapters."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

from rich.console import Console

from answering import Answer, Citation
from cli.views import print_answer_end, print_refresh, print_run_figures
from cli.views_status import _cursor_position, freshness_lines
from cli.views_training import adapters_data, print_adapters, print_finetune
from connectors.sql_cursor import SqlCursor
from indexing.reports import IndexReport, SourceReport, refresh_verdict, summarize
from training.registry import AdapterRegistry

NOW = datetime(2026, 11, 20, 9, 10, tzinfo=UTC)


def recording() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, highlight=False), out


def test_a_cursor_tells_its_position_and_lag() -> None:
    aware = SqlCursor(datetime(2026, 11, 20, 9, 3, tzinfo=UTC), [7])
    assert aware.position(NOW) == ("2026-11-20T09:03:00+00:00", 420.0)
    assert SqlCursor(datetime(2026, 11, 20, 9, 9, 30), [1]).position(NOW) == ("2026-11-20T09:09:30", 30.0)  # naive: UTC
    assert SqlCursor(1234, [1]).position(NOW) == (1234, None)
    assert SqlCursor(date(2026, 11, 1), []).position(NOW) == ("2026-11-01", None)
    assert SqlCursor(Decimal("1.50"), []).position(NOW) == ("1.50", None)


def test_status_reads_the_cursor_the_sync_saved() -> None:
    saved = SqlCursor(datetime(2026, 11, 20, 9, 0, tzinfo=UTC), ["a"]).to_json()
    assert _cursor_position({"cursor": {"position": saved}}, NOW) == ("2026-11-20T09:00:00+00:00", 600.0)
    assert _cursor_position({"cursor": {}}, NOW) == (None, None)
    assert _cursor_position({}, NOW) == (None, None)


def test_an_answer_ends_with_its_sources_and_speed() -> None:
    console, out = recording()
    errors, err = recording()
    answer = Answer(
        question="Who won?",
        mode="prompt",
        text="Brask won [1].",
        citations=[
            Citation(1, "Brask elected", "https://news.example.com/1", "2026-11-02"),
            Citation(2, "", None, None, inferred=True),
        ],
        adapter=None,
        timings={"first_token_ms": 12.5, "tokens_per_s": 40.0},
    )
    print_answer_end(answer, console, errors)
    assert "[1] Brask elected — https://news.example.com/1 (2026-11-02)" in out.getvalue()
    assert "[2] (untitled) — no URL (undated) (matched by content; the answer gave no [n])" in out.getvalue()
    assert err.getvalue().strip() == "prompt, adapter none (base model); first token 12.5 ms, 40.0 tokens/s"

    console, out = recording()
    print_answer_end(Answer("Who?", "prompt", "I do not know."), console, errors)
    assert "(no passage cited)" in out.getvalue()
    console, out = recording()
    print_answer_end(Answer("Who?", "closed-book", "Brask."), console, errors)
    assert out.getvalue().strip() == ""


def test_a_finetune_outcome_in_words() -> None:
    console, out = recording()
    print_finetune({"status": "nothing-new"}, console)
    assert "nothing was trained" in out.getvalue()
    console, out = recording()
    rejected = {
        "status": "rejected",
        "adapter": "20261120-091000-abc123",
        "summary": {"new_gain": 0.015, "general_forgetting": -0.0199, "probe_new_accuracy": 0.25, "fuar": "inf"}
        | {"probe_new_change": 0.0, "general_probe_change": -0.02, "probes_gained": 0, "probes_forgotten": 3},
        "reasons": ["new-document NLL falls by at least 5%, but it fell by 1.5%"],
    }
    print_finetune(rejected, console)
    assert out.getvalue().splitlines() == [  # one sign convention, in words; FUAR undefined said as counts
        "adapter 20261120-091000-abc123: REJECTED (new-document loss fell 1.50%; general-text loss fell 1.99%)",
        "  closed-book accuracy on its held-out questions 25.0% (+0.0 pts), probes: 0 gained, 3 forgotten (FUAR), "
        "general probes -2.0 pts",
        "  rejected: new-document NLL falls by at least 5%, but it fell by 1.5%",
    ]


def test_the_adapter_list_marks_the_champion(tmp_path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    console, out = recording()
    print_adapters(adapters_data(registry), console)
    assert "No adapters yet" in out.getvalue()

    def add(passed: bool, **figures):
        verdict = {"passed": passed, "reasons": [] if passed else ["too much forgetting"]}
        return registry.add(lambda d: None, {"method": "mix_review", "summary": figures, "verdict": verdict})

    first = add(True, new_gain=0.2, general_forgetting=0.01)
    second = add(False)
    registry.promote(first.id)
    rows = adapters_data(registry)
    assert [(r["id"], r["champion"], r["passed"]) for r in rows] == [(first.id, True, True), (second.id, False, False)]
    assert rows[1]["reasons"] == ["too much forgetting"]
    console, out = recording()
    print_adapters(rows, console)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"* {first.id}  mix_review passed") and "gain +20.00%  general +1.00%" in lines[0]
    assert lines[1].startswith(f"  {second.id}  mix_review rejected") and "gain -  general -  parent -" in lines[1]
    assert lines[2] == "(* = champion, used to answer questions)"


def _freshness(seen: list[float | None], published: list[float | None]) -> dict:
    def figures(values):
        p50, p95, count = values
        return {"p50": p50, "p95": p95, "count": count}

    return {
        "window_hours": 24,
        "first_seen_to_searchable_seconds": figures(seen),
        "published_to_searchable_seconds": figures(published),
    }


def test_freshness_reads_in_human_units() -> None:
    assert freshness_lines(_freshness([None, None, 0], [None, None, 0])) == ["freshness: n/a (nothing indexed in 24 h)"]
    lines = freshness_lines(_freshness([106.0, 10_800.0, 40], [75_355.038, 187_200.0, 12]))
    assert lines == [
        "freshness (40 document(s) first seen in the last 24 h):",
        "  first seen to searchable: p50 1 min 46 s, p95 3 h",
        "  published to searchable:  p50 20 h 55 min, p95 2 d 4 h (12 published after their source was added)",
    ]
    only_old = freshness_lines(_freshness([5.0, 9.5, 3], [None, None, 0]))
    assert only_old[-1] == "  published to searchable:  n/a (nothing published since its source was added)"


def test_a_finished_reindex_and_backfill_in_one_line() -> None:
    console, out = recording()
    reindex = {"documents": 12, "chunks": 240, "seconds": 95.2, "collection": "kup_v2", "requeued": 1}
    print_run_figures("reindex", reindex, console)
    assert out.getvalue().strip() == (
        "rebuilt 12 document(s) into 240 chunk(s) in 1 min 35 s; searches now use collection kup_v2; "
        "1 document(s) changed meanwhile and go to the next refresh"
    )
    console, out = recording()
    backfill = {"source": "world", "window": "2026-11-01 00:00 to now", "new": 2, "updated": 1, "unchanged": 3}
    print_run_figures("backfill", {**backfill, "indexed": 3, "embedded": 30, "error": None}, console)
    assert out.getvalue().strip() == (
        "backfill of world (2026-11-01 00:00 to now): 2 new, 1 updated, 3 unchanged; "
        "3 document(s) indexed, 30 chunk(s) embedded"
    )


def test_a_refresh_reads_as_a_table_figures_and_its_verdict() -> None:
    world = SourceReport(source="world", kind="feed", new=2, fallbacks=1, not_modified=True)
    gone = SourceReport(source="gone", kind="feed", error="HTTP 404")
    summary = summarize([world, gone], IndexReport(documents=2, embedded=5, lags={"world": [4.0, 6.0]}), 106)
    summary.verdict = refresh_verdict(summary, {"gone": 1})
    console, out = recording()
    print_refresh(summary, console)
    text = out.getvalue()
    assert "Refresh (1 min 46 s)" in text and "not modified; 1 from feed text" in text and "HTTP 404" in text
    assert "indexed 2 document(s): 5 chunk(s) embedded, 0 reused, 0 unchanged, 0 deleted, 0 failed" in text
    assert "published to searchable: p50 5 s, p95 5.9 s" in text
    assert text.rstrip().endswith("index is stale: gone failed: HTTP 404")

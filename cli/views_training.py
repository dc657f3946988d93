"""What the training commands print: a fine-tune's outcome and the adapter list, for people and for ``--json``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:  # the training package loads torch: only the type is needed here
    from training.registry import AdapterRegistry


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2%}"


def _points(value: float | None) -> str:
    """An accuracy change (a share) in points: +0.25 -> "+25.0 pts"."""
    return "-" if not isinstance(value, int | float) else f"{value * 100:+.1f} pts"


def _fuar(value: float | str | None, summary: dict[str, Any] | None = None) -> str:
    """FUAR, or when it is undefined what happened instead ("0 gained, 3 forgotten")."""
    summary = summary or {}
    gained, forgotten = summary.get("probes_gained"), summary.get("probes_forgotten")
    if isinstance(value, int | float):
        return f"{value:.2f}"
    if gained is not None and forgotten is not None:
        return f"{gained} gained, {forgotten} forgotten"
    return "inf (none gained)" if value == "inf" else "-"


def _loss(value: float | None, what: str) -> str:
    """An NLL change in words: "new-document loss fell 1.5%"."""
    if not isinstance(value, int | float):
        return f"{what} loss not measured"
    if round(abs(value) * 100, 2) == 0:
        return f"{what} loss did not change"
    return f"{what} loss {'fell' if value < 0 else 'rose'} {abs(value):.2%}"


def _probe_count(manifest: dict[str, Any], name: str) -> int | None:
    table = (manifest.get("probes") or {}).get("table") or []
    return next((r.get("count") for r in table if isinstance(r, dict) and r.get("set") == name), None)


def print_finetune(result: dict[str, Any], console: Console) -> None:
    """One line with the adapter's verdict and figures, and why it was rejected if it was."""
    if result["status"] == "nothing-new":
        console.print("Nothing new since the champion's watermark; nothing was trained.")
        return
    summary = result["summary"]
    new_change = -summary["new_gain"] if isinstance(summary.get("new_gain"), int | float) else None
    console.print(
        f"adapter {result['adapter']}: {result['status'].upper()} ({_loss(new_change, 'new-document')}; "
        f"{_loss(summary.get('general_forgetting'), 'general-text')})",
        markup=False,
    )
    if summary.get("probe_new_accuracy") is not None:
        console.print(
            f"  closed-book accuracy on its held-out questions {summary['probe_new_accuracy']:.1%} "
            f"({_points(summary.get('probe_new_change'))}), probes: {_fuar(summary.get('fuar'), summary)} (FUAR), "
            f"general probes {_points(summary.get('general_probe_change'))}",
            markup=False,
        )
    for reason in result["reasons"]:
        console.print(f"  rejected: {reason}", markup=False)
    synthesis = (result.get("data") or {}).get("synthesis") or {}
    skipped = synthesis.get("skipped") or []
    if skipped:
        console.print(
            f"  note: synthesis skipped {len(skipped)} of {synthesis.get('documents')} document(s): "
            "no extractable facts (no dates, quantities or named people)",
            markup=False,
        )
    for warning in synthesis.get("warnings") or []:
        console.print(f"  note: synthesis: {warning}", markup=False)


def adapters_data(registry: AdapterRegistry) -> list[dict[str, Any]]:
    """Every adapter, oldest first, with its gate figures and whether it is the champion: NLL gain and forgetting,
    closed-book accuracy on its own probes (and its change against the champion it started from), FUAR, and the
    change in general-probe accuracy. A figure the manifest lacks (an adapter trained before probes) is None."""
    champion = registry.champion()
    rows = []
    for a in registry.list():
        summary = a.manifest.get("summary") or {}
        rows.append(
            {
                "id": a.id,
                "champion": champion is not None and a.id == champion.id,
                "created_at": a.manifest["created_at"],
                "method": a.manifest.get("method"),
                "parent": a.manifest.get("parent"),
                "passed": a.passed,
                "summary": summary,
                "closed_book": {
                    "accuracy": summary.get("probe_new_accuracy"),
                    "change": summary.get("probe_new_change"),
                    "probes": _probe_count(a.manifest, "new"),
                },
                "fuar": summary.get("fuar"),
                "general_probe_change": summary.get("general_probe_change"),
                "reasons": (a.manifest.get("verdict") or {}).get("reasons", []),
            }
        )
    return rows


def print_adapters(rows: list[dict[str, Any]], console: Console) -> None:
    if not rows:
        console.print("No adapters yet; `kup finetune` trains the first one.")
        return
    for r in rows:
        mark = "*" if r["champion"] else " "
        closed = r["closed_book"]
        accuracy = "-" if not isinstance(closed["accuracy"], int | float) else f"{closed['accuracy']:.1%}"
        probes = f", {closed['probes']} probes" if closed["probes"] is not None else ""
        console.print(
            f"{mark} {r['id']}  {r['method'] or '-':<10} {'passed' if r['passed'] else 'rejected':<8} "
            f"gain {_pct(r['summary'].get('new_gain'))}  "
            f"general {_pct(r['summary'].get('general_forgetting'))}  parent {r['parent'] or '-'}  "
            f"closed-book {accuracy} ({_points(closed['change'])}{probes})  FUAR {_fuar(r['fuar'], r['summary'])}  "
            f"general probes {_points(r['general_probe_change'])}",
            markup=False,
        )
    console.print("(* = champion, used to answer questions)")
    console.print(
        "(gain, general: NLL change on the new documents and on general text; closed-book: accuracy on the "
        "adapter's held-out questions and its change against the parent; FUAR: forgotten / (updated + acquired) "
        "probes; general probes: change in general-knowledge accuracy)",
        markup=False,
    )

"""What the training commands print: a fine-tune's outcome and the adapter list, for people and for ``--json``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:  # the training package loads torch: only the type is needed here
    from training.registry import AdapterRegistry


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2%}"


def print_finetune(result: dict[str, Any], console: Console) -> None:
    """One line with the adapter's verdict and figures, and why it was rejected if it was."""
    if result["status"] == "nothing-new":
        console.print("Nothing new since the champion's watermark; nothing was trained.")
        return
    summary = result["summary"]
    console.print(
        f"adapter {result['adapter']}: {result['status']} "
        f"(new-knowledge gain {summary['new_gain']:+.2%}, general forgetting "
        f"{(summary['general_forgetting'] or 0):+.2%})"
    )
    for reason in result["reasons"]:
        console.print(f"  rejected: {reason}")


def adapters_data(registry: AdapterRegistry) -> list[dict[str, Any]]:
    """Every adapter, oldest first, with its gate figures and whether it is the champion."""
    champion = registry.champion()
    return [
        {
            "id": a.id,
            "champion": champion is not None and a.id == champion.id,
            "created_at": a.manifest["created_at"],
            "method": a.manifest.get("method"),
            "parent": a.manifest.get("parent"),
            "passed": a.passed,
            "summary": a.manifest.get("summary", {}),
            "reasons": a.manifest.get("verdict", {}).get("reasons", []),
        }
        for a in registry.list()
    ]


def print_adapters(rows: list[dict[str, Any]], console: Console) -> None:
    if not rows:
        console.print("No adapters yet; `kup finetune` trains the first one.")
        return
    for r in rows:
        mark = "*" if r["champion"] else " "
        console.print(
            f"{mark} {r['id']}  {r['method'] or '-':<10} {'passed' if r['passed'] else 'rejected':<8} "
            f"gain {_pct(r['summary'].get('new_gain'))}  "
            f"general {_pct(r['summary'].get('general_forgetting'))}  parent {r['parent'] or '-'}",
            markup=False,
        )
    console.print("(* = champion, used to answer questions)")

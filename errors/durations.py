"""Durations in the words people read, for the messages every layer writes (a source backing off, a pull's time
limit, a training budget) and for every view of a run."""

from __future__ import annotations


def human_duration(seconds: float | None) -> str:
    """A duration as people read it: ``45 s``, ``1 min 46 s``, ``3 h``, ``2 d 4 h``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    seconds = max(0.0, float(seconds))
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    total = round(seconds)
    units = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))
    parts = []
    for name, size in units:
        if total >= size:
            parts.append(f"{total // size} {name}")
            total %= size
        if len(parts) == 2 or (parts and not total):
            break
    return " ".join(parts[:2])

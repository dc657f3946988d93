"""Intervals for figures that rest on a few hundred questions: the percentile bootstrap over questions."""

from __future__ import annotations

import random
from collections.abc import Sequence

RESAMPLES = 2000


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def interval(values: Sequence[float], *, seed: int = 0, resamples: int = RESAMPLES) -> list[float]:
    """95% percentile-bootstrap interval of the mean of per-question ``values`` (0/1 or any number)."""
    if not values:
        return [0.0, 0.0]
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return [round(means[int(0.025 * resamples)], 3), round(means[int(0.975 * resamples) - 1], 3)]


def figure(values: Sequence[float]) -> dict:
    """A mean with its 95% interval and the number of questions it rests on."""
    return {"value": round(mean(values), 3), "ci95": interval(values), "n": len(values)}


def paired(a: Sequence[float], b: Sequence[float]) -> dict:
    """The mean of ``a - b`` per question, with its interval: a difference between two ways of answering the
    same questions, whose interval is narrower than the two figures' own."""
    return figure([x - y for x, y in zip(a, b, strict=True)])

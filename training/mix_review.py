"""Mix-review (He et al., EACL 2021): each epoch mixes a decaying share of review data into the new data.

In epoch ``e`` (counting from 0) the amount of review is ``mix_ratio x |new| x mix_decay^e``, drawn afresh
from the review pool each epoch and trained with the same language-modelling loss. Amounts are counted in
samples, or in what ``size`` measures (the trainer counts tokens: a short question-answer pair then buys a short
review, not a full window). Draws are deterministic under a seed, and differ from epoch to epoch.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def review_count(new_count: int, epoch: int, mix_ratio: float, mix_decay: float) -> int:
    return round(mix_ratio * new_count * mix_decay**epoch)


@dataclass(frozen=True)
class EpochPlan:
    epoch: int
    items: list  # new and review samples, shuffled together
    new: int
    review: int


class MixReviewSampler:
    """The samples of each epoch: all new samples plus that epoch's review draw, shuffled. ``size`` measures a
    sample (default: each counts 1); the review amount is then ``mix_ratio`` times the new samples' total size."""

    def __init__(
        self,
        new: Sequence[T],
        review: Sequence[T],
        *,
        mix_ratio: float,
        mix_decay: float,
        seed: int = 0,
        size: Callable[[T], int] | None = None,
    ) -> None:
        self.new = list(new)
        self.review = list(review)
        self.mix_ratio = mix_ratio
        self.mix_decay = mix_decay
        self.seed = seed
        self.size = size or (lambda _: 1)

    def review_draw(self, epoch: int) -> list[T]:
        """Fresh draws for ``epoch``, until their size reaches the epoch's review amount: without replacement while
        the pool lasts, then again from the top."""
        wanted = review_count(sum(self.size(s) for s in self.new), epoch, self.mix_ratio, self.mix_decay)
        if not wanted or not self.review:
            return []
        rng = random.Random(f"{self.seed}:review:{epoch}")
        drawn: list[T] = []
        total = 0
        while total < wanted:
            for item in rng.sample(self.review, len(self.review)):
                drawn.append(item)
                total += max(1, self.size(item))
                if total >= wanted:
                    break
        return drawn

    def epoch(self, epoch: int) -> EpochPlan:
        review = self.review_draw(epoch)
        items = self.new + review
        random.Random(f"{self.seed}:shuffle:{epoch}").shuffle(items)
        return EpochPlan(epoch=epoch, items=items, new=len(self.new), review=len(review))

    def plan(self, epochs: int) -> list[EpochPlan]:
        return [self.epoch(e) for e in range(epochs)]


class PlainSampler(MixReviewSampler):
    """No review at all: plain fine-tuning on the new samples (for comparison)."""

    def __init__(self, new: Sequence[T], *, seed: int = 0) -> None:
        super().__init__(new, [], mix_ratio=0.0, mix_decay=1.0, seed=seed)

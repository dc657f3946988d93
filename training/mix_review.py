"""Mix-review (He et al., EACL 2021): each epoch mixes a decaying share of review data into the new data.

In epoch ``e`` (counting from 0) the number of review samples is ``mix_ratio x |new| x mix_decay^e``,
drawn afresh from the review pool each epoch and trained with the same language-modelling loss.
Draws are deterministic under a seed, and differ from epoch to epoch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
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
    """The samples of each epoch: all new samples plus that epoch's review draw, shuffled."""

    def __init__(
        self, new: Sequence[T], review: Sequence[T], *, mix_ratio: float, mix_decay: float, seed: int = 0
    ) -> None:
        self.new = list(new)
        self.review = list(review)
        self.mix_ratio = mix_ratio
        self.mix_decay = mix_decay
        self.seed = seed

    def review_draw(self, epoch: int) -> list[T]:
        """Fresh draws for ``epoch``: without replacement while the pool lasts, then again from the top."""
        wanted = review_count(len(self.new), epoch, self.mix_ratio, self.mix_decay)
        if not wanted or not self.review:
            return []
        rng = random.Random(f"{self.seed}:review:{epoch}")
        drawn: list[T] = []
        while len(drawn) < wanted:
            drawn.extend(rng.sample(self.review, min(len(self.review), wanted - len(drawn))))
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

"""The Mix-review sampler: counts per epoch, decay, fresh draws, determinism."""

from __future__ import annotations

from training.mix_review import MixReviewSampler, PlainSampler, review_count


def make(seed: int = 7, pool: int = 1000, new: int = 10, **kwargs) -> MixReviewSampler:
    options = {"mix_ratio": 4.0, "mix_decay": 0.7, **kwargs}
    return MixReviewSampler([f"new-{i}" for i in range(new)], [f"old-{i}" for i in range(pool)], seed=seed, **options)


def test_review_counts_follow_the_paper() -> None:
    assert [review_count(10, e, 4.0, 0.7) for e in range(4)] == [40, 28, 20, 14]  # 4 x 10 x 0.7^e
    plans = make().plan(4)
    assert [p.review for p in plans] == [40, 28, 20, 14]
    assert all(p.new == 10 and len(p.items) == 10 + p.review for p in plans)
    assert all(sum(item.startswith("new-") for item in p.items) == 10 for p in plans)  # every new sample, every epoch


def test_draws_are_fresh_each_epoch_and_without_repeats_within_one() -> None:
    sampler = make()
    first, second = sampler.review_draw(0), sampler.review_draw(1)
    assert len(set(first)) == len(first) == 40
    assert set(first) != set(second[: len(first)]) and len(set(first) & set(second)) < 20


def test_deterministic_under_a_seed_and_different_across_seeds() -> None:
    assert make(seed=1).plan(3) == make(seed=1).plan(3)
    assert make(seed=1).plan(3) != make(seed=2).plan(3)


def test_small_pools_are_drawn_again_and_empty_pools_give_nothing() -> None:
    draw = make(pool=15).review_draw(0)
    assert len(draw) == 40 and set(draw) == {f"old-{i}" for i in range(15)}
    assert make(pool=0).review_draw(0) == []
    plain = PlainSampler(["a", "b", "c"], seed=3).plan(2)
    assert [p.review for p in plain] == [0, 0] and sorted(plain[0].items) == ["a", "b", "c"]


def test_custom_ratio_and_decay() -> None:
    plans = make(mix_ratio=1.0, mix_decay=0.5, new=8).plan(3)
    assert [p.review for p in plans] == [8, 4, 2]


def test_review_is_measured_in_what_size_counts() -> None:
    # new: two samples of 10 tokens; review pool: windows of 50 tokens. Ratio 5 asks for 100 tokens of review:
    # two windows, not ten (a count of samples would draw 5 x 2 = 10 windows, 500 tokens).
    new = [("n", 10), ("m", 10)]
    pool = [(f"old-{i}", 50) for i in range(20)]
    sampler = MixReviewSampler(new, pool, mix_ratio=5.0, mix_decay=0.5, seed=3, size=lambda s: s[1])
    assert [len(sampler.review_draw(e)) for e in range(3)] == [2, 1, 1]  # 100, 50, 25 tokens wanted
    unsized = MixReviewSampler(new, pool, mix_ratio=5.0, mix_decay=0.5, seed=3)
    assert len(unsized.review_draw(0)) == 10

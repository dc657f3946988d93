"""Durations read in the units people use."""

from __future__ import annotations

import pytest

from errors.durations import human_duration


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (None, "-"),
        (0, "0 s"),
        (3.5, "3.5 s"),
        (45, "45 s"),
        (106, "1 min 46 s"),
        (3600, "1 h"),
        (10_800, "3 h"),
        (3725, "1 h 2 min"),
        (75_355.038, "20 h 55 min"),
        (200_000, "2 d 7 h"),
        (-5, "0 s"),
    ],
)
def test_durations_read_in_human_units(seconds, words) -> None:
    assert human_duration(seconds) == words

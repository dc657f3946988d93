"""Syndicated stories: near-duplicate detection of one story told by several outlets.

A document's fingerprint is a MinHash of its word 5-shingles, cut into LSH bands whose keys the
catalog stores and looks up in SQL: documents sharing a band key are candidates. A candidate is
confirmed as the same story only if, measured on the hard news set (``bench/story_detection.py``):

- it was published within ``WINDOW`` of the document (syndicated copies appear within about a
  day; follow-ups that change a fact come days later), unless the two are near-identical
  (a verbatim copy, or the same article with only a new date);
- the shingle Jaccard similarity reaches ``MIN_JACCARD`` (paraphrases with reordered paragraphs
  stay above it, unrelated articles from the same town mostly fall below);
- the numbers and dates mentioned agree (Jaccard of the sets of numbers reaches ``MIN_NUMBERS``):
  a distractor event in the same town quotes other figures, a follow-up changes one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from datasketch import MinHash

SHINGLE_WORDS = 5
NUM_PERM = 128
BAND_ROWS = 2  # 64 bands of 2 rows: a pair at Jaccard 0.15 shares a band with probability 0.77, at 0.03 with 0.06
BANDS = NUM_PERM // BAND_ROWS
WINDOW = timedelta(hours=48)
MIN_JACCARD = 0.15
MIN_NUMBERS = 0.25
NEAR_IDENTICAL = 0.8  # this similar, the same story whatever the dates say
_SEED = 20260907
_SCHEME = "affine32"

_WORD = re.compile(r"\w+(?:[.,]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class Fingerprint:
    """What the detector compares: shingles, numbers, and the LSH band keys that find candidates."""

    shingles: frozenset[str]
    numbers: frozenset[str]
    band_keys: tuple[int, ...]


@lru_cache(maxsize=1)
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    return _minhash().permutations


def _minhash(permutations: tuple[np.ndarray, np.ndarray] | None = None) -> MinHash:
    from datasketch import MinHash  # scipy and more behind it: loaded only when a fingerprint is made

    # The scheme is named, not defaulted: band keys are stored, and a library default that changed
    # between versions would silently stop old and new documents from meeting.
    return MinHash(num_perm=NUM_PERM, seed=_SEED, permutations=permutations, scheme=_SCHEME)


def _shingles(text: str) -> frozenset[str]:
    words = _WORD.findall(text.lower())
    if len(words) < SHINGLE_WORDS:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1))


def _band_key(band: int, values: np.ndarray) -> int:
    """A signed 64-bit key (fits BIGINT everywhere) naming one band's rows; the band number is part of it."""
    digest = hashlib.blake2b(band.to_bytes(2, "big") + values.astype(">u8").tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def fingerprint(text: str, *, bands: bool = True) -> Fingerprint:
    """The fingerprint of a document's text (the title is left out: outlets rewrite headlines).

    ``bands=False`` skips the MinHash: enough to confirm a candidate, which needs no band keys.
    """
    shingles = _shingles(text)
    if shingles and bands:
        minhash = _minhash(_permutations())
        minhash.update_batch([s.encode() for s in sorted(shingles)])
        values = minhash.hashvalues
        keys = tuple(_band_key(b, values[b * BAND_ROWS : (b + 1) * BAND_ROWS]) for b in range(BANDS))
    else:
        keys = ()  # an empty text has no candidates
    return Fingerprint(shingles, frozenset(_NUMBER.findall(text)), keys)


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def same_story(a: Fingerprint, a_at: datetime | None, b: Fingerprint, b_at: datetime | None) -> float | None:
    """The similarity of two documents if they tell the same story, else None."""
    similarity = _jaccard(a.shingles, b.shingles)
    if similarity >= NEAR_IDENTICAL:
        return similarity
    if a_at is None or b_at is None or abs(a_at - b_at) > WINDOW:
        return None
    if similarity < MIN_JACCARD or _jaccard(a.numbers, b.numbers) < MIN_NUMBERS:
        return None
    return similarity

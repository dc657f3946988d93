"""The vector store interface: one small contract that Qdrant Edge and a Qdrant server both satisfy."""

from __future__ import annotations

import functools
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from errors import KupError, StoreError
from indexing.embedding import SparseVector

_NAMESPACE = uuid.UUID("6f1c1a52-3d5e-4c36-9a35-7d4e1c0b8a11")

DENSE = "dense"
SPARSE = "sparse"
# Payload fields with an index: filters on them stay fast as the collection grows.
KEYWORD_FIELDS = ("source", "doc_id")
DATETIME_FIELDS = ("published",)


def point_id(doc_id: str, chunk_index: int) -> str:
    """Deterministic point id: the same chunk of the same document always lands on the same point."""
    return str(uuid.uuid5(_NAMESPACE, f"{doc_id}#{chunk_index}"))


def rfc3339(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def store_errors(what: str) -> Callable:
    """Decorator: engine errors (Qdrant Edge raises bare ``Exception``) become ``StoreError``."""

    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def inner(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except KupError:
                raise
            except Exception as exc:
                raise StoreError(f"{what} {self}: {method.__name__} failed: {exc}") from exc

        return inner

    return wrap


@dataclass(frozen=True)
class Fusion:
    """Weighted reciprocal rank fusion as Qdrant computes it: a hit at 0-based position p of a list with weight
    w scores ``1 / ((p + 1) / w + k - 1)``; a weight of 3 counts a position as if it were a third as deep."""

    k: int = 60  # the original paper's 60: flat, so the lists' ranks matter more than their weights
    weights: tuple[float, float] = (1.0, 1.0)  # dense, sparse


RRF = Fusion()


@dataclass
class Vectors:
    dense: list[float]
    sparse: SparseVector


@dataclass
class ChunkPoint:
    id: str
    vectors: Vectors
    payload: dict[str, Any]


@dataclass
class StoredPoint:
    id: str
    payload: dict[str, Any]


@dataclass
class Hit:
    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Changes:
    """One batch of writes, applied together: new/changed points, payload-only updates, deletions."""

    upserts: list[ChunkPoint] = field(default_factory=list)
    payloads: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.upserts or self.payloads or self.deletes)


class VectorStore(ABC):
    """A collection of chunk points with a dense and a sparse vector each, and a payload."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the points live: the collection name on a server, the directory of an embedded index."""

    @abstractmethod
    def session(self) -> AbstractContextManager[VectorStore]:
        """Keep the store open for several operations (Edge opens its shard once)."""

    @abstractmethod
    def points_of(self, doc_ids: Sequence[str]) -> dict[str, list[StoredPoint]]:
        """The points currently stored for each document (payloads only)."""

    @abstractmethod
    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        """The stored vectors of the given points, to reuse them instead of embedding again."""

    @abstractmethod
    def apply(self, changes: Changes) -> None:
        """Write a batch durably (flushed before returning)."""

    @abstractmethod
    def search(
        self,
        dense: list[float],
        sparse: SparseVector,
        *,
        limit: int = 10,
        sources: Sequence[str] | None = None,
        published_after: datetime | None = None,
        prefetch: int | None = None,
        published_before: datetime | None = None,
        fusion: Fusion | None = None,
    ) -> list[Hit]:
        """Hybrid query: dense and sparse candidates fused with reciprocal rank fusion; ``published_after`` and
        ``published_before`` bound the publication time (inclusive; undated points fall outside any bound);
        ``fusion`` sets the rank fusion's k and the (dense, sparse) weights (default ``RRF``)."""

    @abstractmethod
    def count(self, *, source: str | None = None) -> int:
        """Number of points, optionally of one source."""

    @abstractmethod
    def scan(self, *, batch: int = 1000) -> Iterator[StoredPoint]:
        """Every point with its payload (for checks and rebuilds)."""

    @abstractmethod
    def staging(self, *, dense_size: int | None = None) -> VectorStore:
        """A new, empty collection beside the live one, to rebuild the index into."""

    @abstractmethod
    def promote(self, staging: VectorStore) -> None:
        """Make ``staging`` the live collection in one atomic switch, then drop the old one.

        Searches see either the old index or the new one, never a half-built one.
        """

    def optimize(self) -> bool:
        """Build indexes (HNSW) for segments that outgrew brute force; cheap when nothing is due.

        A Qdrant server does this in the background; the embedded engine does it when asked.
        """
        return False

    def keep_open(self, *, background: bool = False) -> VectorStore:
        """For long-lived processes: keep connections (Edge: the shard) open between operations. A ``background``
        process (the listener, the hot-feed watcher) gives way to a serving one (``kup api``)."""
        return self

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""

    def __str__(self) -> str:
        return self.location

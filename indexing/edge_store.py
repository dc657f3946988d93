"""Qdrant Edge: the Qdrant engine in-process (HNSW, WAL), the embedded default store.

An open shard holds an exclusive lock on its WAL, so one process at a time has it open, under an inter-process file
lock. Opening is not free (it grows with the index; ``bench/query_latency.py`` reports it), so a long-lived process
(``kup api``, ``kup mcp``; in the background the listener and the hot-feed watcher) calls ``keep_open()``: it holds
the shard between operations and serves it to the other processes of its user (``indexing.shard_service``): a
refresh sends its reads and writes there instead of opening the shard, and the holder runs them beside its own
searches. A process that needs the shard itself (a rebuild's switch) announces it by touching ``<index>.want``
while it waits for the lock; the holder's watcher sees the mark within a few milliseconds, closes the shard and
releases the lock, and takes them back once no one has asked for ``_LEASE`` seconds. A rebuild swaps the index
under the same lock, so the holder reopens the new one. Without a holder, each operation (or ``session()``) opens
the shard under the lock and closes it promptly.

One concept: one implementation of ``indexing.store.VectorStore``, with what makes it usable from several
processes.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import qdrant_edge as qe
from filelock import FileLock

from errors import StoreError
from indexing.embedding import DENSE_SIZE, SparseVector
from indexing.shard_service import ShardClient, ShardService
from indexing.store import (
    DATETIME_FIELDS,
    DENSE,
    KEYWORD_FIELDS,
    RRF,
    SPARSE,
    Changes,
    Fusion,
    Hit,
    StoredPoint,
    Vectors,
    VectorStore,
    rfc3339,
    store_errors,
)

_errors = store_errors("Qdrant Edge index")

logger = logging.getLogger(__name__)

_LOCK_TIMEOUT = 120.0
_LEASE = 2.0  # seconds a "want" mark keeps a holding searcher away after the last announced operation
_WATCH_EVERY = 0.01  # how often a holding searcher looks for a "want" mark


def _filter(
    sources: Sequence[str] | None = None,
    published_after: datetime | None = None,
    doc_ids: Sequence[str] | None = None,
    published_before: datetime | None = None,
) -> qe.Filter | None:
    must = []
    if sources:
        must.append(qe.FieldCondition(key="source", match=qe.MatchAny(any=list(sources))))
    if doc_ids:
        must.append(qe.FieldCondition(key="doc_id", match=qe.MatchAny(any=list(doc_ids))))
    if published_after is not None or published_before is not None:
        window = qe.RangeDateTime(gte=rfc3339(published_after), lte=rfc3339(published_before))
        must.append(qe.FieldCondition(key="published", range=window))
    return qe.Filter(must=must) if must else None


def _sparse(vec: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(indices=vec.indices, values=vec.values)


# What the store's operations do on an open shard, as plain functions of keyword arguments: run here on a shard
# this process opened or holds, or in the holding process for another (indexing.shard_service).


def _points_of(shard: qe.EdgeShard, doc_ids: list[str]) -> dict[str, list[StoredPoint]]:
    found: dict[str, list[StoredPoint]] = {}
    offset = None
    while True:
        records, offset = shard.scroll(
            qe.ScrollRequest(offset=offset, limit=1000, filter=_filter(doc_ids=doc_ids), with_payload=True)
        )
        for r in records:
            found.setdefault(r.payload["doc_id"], []).append(StoredPoint(str(r.id), r.payload))
        if offset is None:
            return found


def _vectors(shard: qe.EdgeShard, ids: list[str]) -> dict[str, Vectors]:
    out = {}
    for r in shard.retrieve(ids, with_payload=False, with_vector=True):
        sparse = r.vector[SPARSE]
        out[str(r.id)] = Vectors(list(r.vector[DENSE]), SparseVector(list(sparse.indices), list(sparse.values)))
    return out


def _apply(shard: qe.EdgeShard, changes: Changes) -> None:
    if changes.upserts:
        shard.update(
            qe.UpdateOperation.upsert_points(
                [
                    qe.Point(p.id, {DENSE: p.vectors.dense, SPARSE: _sparse(p.vectors.sparse)}, p.payload)
                    for p in changes.upserts
                ]
            )
        )
    for pid, payload in changes.payloads:
        shard.update(qe.UpdateOperation.overwrite_payload([pid], payload))
    if changes.deletes:
        shard.update(qe.UpdateOperation.delete_points(list(changes.deletes)))
    shard.flush()


def _search(
    shard: qe.EdgeShard,
    dense: list[float],
    sparse: SparseVector,
    limit: int,
    sources: list[str] | None,
    published_after: datetime | None,
    prefetch: int | None,
    published_before: datetime | None,
    fusion: Fusion | None,
) -> list[Hit]:
    depth = prefetch or max(4 * limit, 20)
    flt = _filter(sources, published_after, published_before=published_before)
    request = qe.QueryRequest(
        limit=limit,
        prefetches=[
            qe.Prefetch(limit=depth, query=qe.Query.Nearest(dense, using=DENSE), filter=flt),
            qe.Prefetch(limit=depth, query=qe.Query.Nearest(_sparse(sparse), using=SPARSE), filter=flt),
        ],
        query=qe.Fusion.Rrf(k=(fusion or RRF).k, weights=list((fusion or RRF).weights)),
        filter=flt,
        with_payload=True,
    )
    return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in shard.query(request)]


def _count(shard: qe.EdgeShard, source: str | None) -> int:
    return shard.count(qe.CountRequest(exact=True, filter=_filter(sources=[source] if source else None)))


def _scroll(shard: qe.EdgeShard, offset: str | int | None, batch: int) -> tuple[list[StoredPoint], str | int | None]:
    records, offset = shard.scroll(qe.ScrollRequest(offset=offset, limit=batch, with_payload=True))
    return [StoredPoint(str(r.id), dict(r.payload or {})) for r in records], offset


OPS = {
    "points_of": _points_of,
    "vectors": _vectors,
    "apply": _apply,
    "optimize": lambda shard: bool(shard.optimize()),
    "search": _search,
    "count": _count,
    "scroll": _scroll,
}
WRITES = {"apply", "optimize"}  # run one at a time in a holder; reads run beside them and beside each other
NOTHING = {"optimize": False, "search": [], "count": 0, "scroll": ([], None)}  # on an index that does not exist


class EdgeStore(VectorStore):
    """A shard at ``path``. After a rebuild, ``path`` is a symlink to the live shard directory: the
    Edge equivalent of a collection alias, swapped atomically by ``promote``."""

    def __init__(self, path: Path | str, *, dense_size: int = DENSE_SIZE) -> None:
        self.path = Path(path)
        self.dense_size = dense_size
        self._lock = FileLock(str(self.path) + ".lock", timeout=_LOCK_TIMEOUT)
        self._want = Path(str(self.path) + ".want")  # a process wants the shard itself
        self._foreground = Path(str(self.path) + ".foreground")  # a foreground holder wants to hold it
        self._local = threading.local()
        self._holder: _Holder | None = None
        self._client = ShardClient(self.path)

    @property
    def location(self) -> str:
        return str(self.path)

    def _config(self) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=self.dense_size, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )

    def _open(self, create: bool) -> qe.EdgeShard | None:
        if (self.path / "edge_config.json").exists():
            return qe.EdgeShard.load(str(self.path))
        if not create:
            return None
        self.path.mkdir(parents=True, exist_ok=True)
        shard = qe.EdgeShard.create(str(self.path), self._config())
        for name in KEYWORD_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
        for name in DATETIME_FIELDS:
            shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Datetime))
        return shard

    def _run(self, op: str, *, create: bool = True, **args: Any) -> Any:
        """One operation on the shard: this thread's session's, the one this process holds, the holding process's
        (sent there), or else opened now under the lock. ``NOTHING[op]`` when the index does not exist and
        ``create`` is off. Existence is checked under the lock too: ``promote`` swaps the path while holding it."""
        shard = getattr(self._local, "shard", None)
        if shard is not None:
            return OPS[op](shard, **args)
        if self._holder is not None:
            done, result = self._holder.run(op, create, args)
            if done:
                return result
        done, result = self._client.call(op, args, create)
        if done:
            return result
        with self._exclusive(announce=self._holder is None):
            shard = self._open(create)
            if shard is None:
                return NOTHING[op]
            try:
                return OPS[op](shard, **args)
            finally:
                shard.close()

    @contextmanager
    def _exclusive(self, *, announce: bool = True) -> Iterator[None]:
        """The inter-process lock; while waiting, ``announce`` keeps the "want" mark fresh so a holder yields."""
        deadline = time.monotonic() + _LOCK_TIMEOUT
        while True:
            if announce:
                self._announce()
            try:
                self._lock.acquire(timeout=min(0.25, _LEASE / 4))
                break
            except TimeoutError as exc:
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"index at {self.path} is busy (lock not free after {_LOCK_TIMEOUT:.0f}s)"
                    ) from exc
        try:
            yield
        finally:
            if announce:
                self._announce()  # the lease runs from the end of the operation
            self._lock.release()

    def _announce(self) -> None:
        with suppress(OSError):  # a read-only directory: holders then only yield at their own pace
            self._want.touch()

    def keep_open(self, *, background: bool = False) -> EdgeStore:
        """Hold the shard open between operations (for long-lived processes) and serve it to other processes
        (``indexing.shard_service``); yield it to a process that asks for the shard itself (a rebuild's switch).
        A ``background`` holder (the listener, the hot-feed watcher) also gives it up to a foreground one (``kup
        api``, ``kup mcp``), so searches run in the process that answers them; ``close()`` releases it."""
        if self._holder is None:
            self._holder = _Holder(self, background=background)
        return self

    @contextmanager
    def session(self) -> Iterator[EdgeStore]:
        """Several operations on one opening of the shard; where a process holds the shard (``kup api``), each is
        sent to it instead, so its searches never wait for this session to end."""
        if getattr(self._local, "shard", None) is not None or self._holder is not None or self._client.reachable():
            yield self
            return
        with self._exclusive():
            shard = self._open(True)
            self._local.shard = shard
            try:
                yield self
            finally:
                self._local.shard = None
                shard.close()

    @_errors
    def points_of(self, doc_ids: Sequence[str]) -> dict[str, list[StoredPoint]]:
        found: dict[str, list[StoredPoint]] = {d: [] for d in doc_ids}
        if doc_ids:
            for doc, pts in self._run("points_of", doc_ids=list(doc_ids)).items():
                found.setdefault(doc, []).extend(pts)
        return found

    @_errors
    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        return self._run("vectors", ids=list(ids)) if ids else {}

    @_errors
    def apply(self, changes: Changes) -> None:
        if changes:
            self._run("apply", changes=changes)

    def staging(self, *, dense_size: int | None = None) -> EdgeStore:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        return EdgeStore(self.path.with_name(f"{self.path.name}-{stamp}"), dense_size=dense_size or self.dense_size)

    @_errors
    def promote(self, staging: VectorStore) -> None:
        if not isinstance(staging, EdgeStore) or staging.path.parent != self.path.parent:
            raise ValueError("promote takes a staging store made by this store's staging()")
        staging.optimize()  # searchable at full speed from the first query
        if self._holder is not None:
            self._holder.release()
        with self._exclusive():  # no operation on the live index runs during the switch (holders yield)
            old = self.path.resolve() if self.path.exists() or self.path.is_symlink() else None
            if self.path.exists() and not self.path.is_symlink():  # a first-generation real directory
                moved = self.path.with_name(f"{self.path.name}-retired")
                self.path.rename(moved)
                old = moved
            link = self.path.with_name(f".{self.path.name}.next")
            link.unlink(missing_ok=True)
            link.symlink_to(staging.path.name)
            os.replace(link, self.path)  # the atomic switch
            if old is not None and old != staging.path.resolve():
                shutil.rmtree(old, ignore_errors=True)
                Path(str(old) + ".lock").unlink(missing_ok=True)

    @_errors
    def optimize(self) -> bool:
        return self._run("optimize", create=False)

    @_errors
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
        return self._run(
            "search", create=False, dense=list(dense), sparse=sparse, limit=limit,
            sources=list(sources) if sources else None, published_after=published_after, prefetch=prefetch,
            published_before=published_before, fusion=fusion,
        )  # fmt: skip

    @_errors
    def count(self, *, source: str | None = None) -> int:
        return self._run("count", create=False, source=source)

    def scan(self, *, batch: int = 1000) -> Iterator[StoredPoint]:
        offset = None
        while True:
            records, offset = self._scroll(offset, batch)
            yield from records
            if offset is None:
                return

    @_errors
    def _scroll(self, offset: str | int | None, batch: int) -> tuple[list[StoredPoint], str | int | None]:
        return self._run("scroll", create=False, offset=offset, batch=batch)

    def close(self) -> None:
        if self._holder is not None:
            self._holder.stop()
            self._holder = None


def _recent(mark: Path) -> bool:
    try:
        return time.time() - mark.stat().st_mtime < _LEASE
    except OSError:
        return False


class _Holder:
    """Keeps one store's shard open under the inter-process lock, serves it to other processes
    (``indexing.shard_service``), and lets go when a process asks for the shard itself (a rebuild's switch)."""

    def __init__(self, store: EdgeStore, *, background: bool = False) -> None:
        self.store, self.background = store, background
        self.shard: qe.EdgeShard | None = None
        self.lock = FileLock(str(store.path) + ".lock", timeout=0, thread_local=False)
        self.state = threading.Condition()  # guards shard, users and yielding
        self.users = 0  # operations running on the held shard: reads run together, and beside one write
        self.yielding = False  # closing the shard: new operations go elsewhere meanwhile
        self.writing = threading.Lock()  # one write at a time
        self.stopped = threading.Event()
        self.reopens = 0  # how often the shard was opened again after yielding (for tests and benches)
        self.service = ShardService(store.path, set(OPS), self.run)
        self.watcher = threading.Thread(target=self._watch, name=f"edge-holder-{store.path.name}", daemon=True)
        self.watcher.start()

    def _asked(self) -> bool:
        return _recent(self.store._want) or (self.background and _recent(self.store._foreground))

    def run(self, op: str, create: bool, args: dict[str, Any]) -> tuple[bool, Any]:
        """(True, result) of ``op`` on the held shard (opened now if free and no one asked); (False, None) when not
        held: the caller then opens it itself."""
        with self.state:
            if self.shard is None and not self.yielding and not self._asked():
                self._take(create)
            shard = None if self.yielding else self.shard
            if shard is None:
                if not self.background:  # a background holder that has it gives it up
                    with suppress(OSError):
                        self.store._foreground.touch()
                return False, None
            self.users += 1
        try:
            with self.writing if op in WRITES else nullcontext():
                return True, OPS[op](shard, **args)
        finally:
            with self.state:
                self.users -= 1
                self.state.notify_all()

    def _take(self, create: bool) -> None:
        try:
            self.lock.acquire(timeout=0)
        except TimeoutError:
            return
        try:
            self.shard = self.store._open(create)
        except Exception:
            self.lock.release()
            raise
        if self.shard is None:
            self.lock.release()
            return
        self.reopens += 1
        self.service.announce()  # other processes now send their operations here

    def release(self) -> None:
        """Close the shard once the operations on it end, and free the lock."""
        with self.state:
            if self.shard is None:
                return
            self.yielding = True
            self.service.withdraw()
            self.state.wait_for(lambda: self.users == 0)
            try:
                self.shard.close()
            finally:
                self.shard, self.yielding = None, False
                self.lock.release()

    def _watch(self) -> None:
        while not self.stopped.wait(_WATCH_EVERY):
            if self.shard is not None and self._asked():
                logger.debug("yielding %s to a process that asked for it", self.store.path)
                self.release()

    def stop(self) -> None:
        self.stopped.set()
        self.service.stop()
        self.watcher.join(timeout=5)
        self.release()

"""A Qdrant server (or cluster) through qdrant-client: the store for when one machine is outgrown.

``:memory:`` gives qdrant-client's local mode, which stands in for a server in tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from qdrant_client import QdrantClient, models

from indexing.embedding import DENSE_SIZE, SparseVector
from indexing.store import (
    DATETIME_FIELDS,
    DENSE,
    KEYWORD_FIELDS,
    SPARSE,
    Changes,
    Hit,
    StoredPoint,
    Vectors,
    VectorStore,
    rfc3339,
    store_errors,
)

_errors = store_errors("Qdrant")


def _filter(
    sources: Sequence[str] | None = None,
    published_after: datetime | None = None,
    doc_ids: Sequence[str] | None = None,
) -> models.Filter | None:
    must: list[models.Condition] = []
    if sources:
        must.append(models.FieldCondition(key="source", match=models.MatchAny(any=list(sources))))
    if doc_ids:
        must.append(models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids))))
    if published_after is not None:
        must.append(models.FieldCondition(key="published", range=models.DatetimeRange(gte=rfc3339(published_after))))
    return models.Filter(must=must) if must else None


def _sparse(vec: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=vec.indices, values=vec.values)


class QdrantStore(VectorStore):
    def __init__(
        self,
        url: str,
        collection: str,
        *,
        api_key: str | None = None,
        dense_size: int = DENSE_SIZE,
        timeout: int = 30,
    ) -> None:
        self.url = url
        self.location = f"{url} collection {collection}"
        self.collection = collection
        self.dense_size = dense_size
        if url == ":memory:":
            self.client = QdrantClient(location=":memory:")
        else:
            self.client = QdrantClient(url=url, api_key=api_key, timeout=timeout)
        self._ready = False

    @_errors
    def _ensure(self) -> None:
        if self._ready:
            return
        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config={DENSE: models.VectorParams(size=self.dense_size, distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            for name in KEYWORD_FIELDS:
                self.client.create_payload_index(self.collection, name, models.PayloadSchemaType.KEYWORD)
            for name in DATETIME_FIELDS:
                self.client.create_payload_index(self.collection, name, models.PayloadSchemaType.DATETIME)
        self._ready = True

    @contextmanager
    def session(self) -> Iterator[QdrantStore]:
        self._ensure()
        yield self

    @_errors
    def points_of(self, doc_ids: Sequence[str]) -> dict[str, list[StoredPoint]]:
        found: dict[str, list[StoredPoint]] = {d: [] for d in doc_ids}
        if not doc_ids:
            return found
        self._ensure()
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection, scroll_filter=_filter(doc_ids=doc_ids), limit=1000, offset=offset, with_payload=True
            )
            for r in records:
                found.setdefault(r.payload["doc_id"], []).append(StoredPoint(str(r.id), dict(r.payload)))
            if offset is None:
                return found

    @_errors
    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        if not ids:
            return {}
        self._ensure()
        out = {}
        for r in self.client.retrieve(self.collection, list(ids), with_payload=False, with_vectors=True):
            sparse = r.vector[SPARSE]
            out[str(r.id)] = Vectors(list(r.vector[DENSE]), SparseVector(list(sparse.indices), list(sparse.values)))
        return out

    @_errors
    def apply(self, changes: Changes) -> None:
        if not changes:
            return
        self._ensure()
        if changes.upserts:
            self.client.upsert(
                self.collection,
                points=[
                    models.PointStruct(
                        id=p.id, vector={DENSE: p.vectors.dense, SPARSE: _sparse(p.vectors.sparse)}, payload=p.payload
                    )
                    for p in changes.upserts
                ],
                wait=True,
            )
        for pid, payload in changes.payloads:
            self.client.overwrite_payload(self.collection, payload=payload, points=[pid], wait=True)
        if changes.deletes:
            self.client.delete(
                self.collection, points_selector=models.PointIdsList(points=list(changes.deletes)), wait=True
            )

    @_errors
    def delete_documents(self, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        self._ensure()
        self.client.delete(
            self.collection, points_selector=models.FilterSelector(filter=_filter(doc_ids=doc_ids)), wait=True
        )

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
    ) -> list[Hit]:
        self._ensure()
        depth = prefetch or max(4 * limit, 20)
        flt = _filter(sources, published_after)
        response = self.client.query_points(
            self.collection,
            prefetch=[
                models.Prefetch(query=dense, using=DENSE, limit=depth, filter=flt),
                models.Prefetch(query=_sparse(sparse), using=SPARSE, limit=depth, filter=flt),
            ],
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            query_filter=flt,
            limit=limit,
            with_payload=True,
        )
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points]

    @_errors
    def count(self, *, source: str | None = None) -> int:
        self._ensure()
        return self.client.count(
            self.collection, count_filter=_filter(sources=[source] if source else None), exact=True
        ).count

    def scan(self, *, batch: int = 1000) -> Iterator[StoredPoint]:
        self._ensure()
        offset = None
        while True:
            records, offset = self.client.scroll(self.collection, limit=batch, offset=offset, with_payload=True)
            for r in records:
                yield StoredPoint(str(r.id), dict(r.payload or {}))
            if offset is None:
                return

    def close(self) -> None:
        self.client.close()

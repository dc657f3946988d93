"""A Qdrant server (or cluster) through qdrant-client: the store for when one machine is outgrown.

``:memory:`` gives qdrant-client's local mode, which stands in for a server in tests.

One concept, ~355 lines: one implementation of ``indexing.store.VectorStore``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from errors import ConfigError, StoreError
from errors.redact import mask_text, mask_url
from indexing.embedding import DENSE_SIZE, SparseVector
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

_engine_errors = store_errors("Qdrant")


def _errors(method: Callable) -> Callable:
    """Engine errors become ``StoreError`` with the URL's credentials and the API key masked."""
    wrapped = _engine_errors(method)

    @functools.wraps(method)
    def inner(self: QdrantStore, *args, **kwargs):
        try:
            return wrapped(self, *args, **kwargs)
        except StoreError as exc:
            raise StoreError(mask_text(str(exc), self._secrets)) from exc.__cause__

    return inner


def _secrets(url: str, api_key: str | None) -> tuple[str, ...]:
    """The API key and the URL's password, as written and decoded: none may reach a message."""
    try:
        password = urlsplit(url if "://" in url else f"//{url}").password or ""  # also host:port without a scheme
    except ValueError:
        password = ""
    return tuple(s for s in {api_key, password, unquote(password)} if s)


def _filter(
    sources: Sequence[str] | None = None,
    published_after: datetime | None = None,
    doc_ids: Sequence[str] | None = None,
    published_before: datetime | None = None,
) -> models.Filter | None:
    must: list[models.Condition] = []
    if sources:
        must.append(models.FieldCondition(key="source", match=models.MatchAny(any=list(sources))))
    if doc_ids:
        must.append(models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(doc_ids))))
    if published_after is not None or published_before is not None:
        window = models.DatetimeRange(gte=rfc3339(published_after), lte=rfc3339(published_before))
        must.append(models.FieldCondition(key="published", range=window))
    return models.Filter(must=must) if must else None


def _sparse(vec: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=vec.indices, values=vec.values)


# Cluster settings as a user sets them, and the words a server's refusal uses for each.
_SETTINGS = {
    "shard_number": ("KUP_QDRANT_SHARDS", ("shard_number", "shard number", "shards")),
    "replication_factor": ("KUP_QDRANT_REPLICATION_FACTOR", ("replication_factor", "replication factor", "replica")),
    "write_consistency_factor": (
        "KUP_QDRANT_WRITE_CONSISTENCY_FACTOR",
        ("write_consistency_factor", "write consistency", "consistency"),
    ),
}


@dataclass(frozen=True)
class Cluster:
    """How a new collection is spread over a Qdrant cluster; None leaves the server's default.

    Applied when a collection is created (the live one and every rebuild's), never to an existing one.
    """

    shard_number: int | None = None
    replication_factor: int | None = None
    write_consistency_factor: int | None = None

    def __post_init__(self) -> None:
        for name, (setting, _) in _SETTINGS.items():
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000):
                raise ConfigError(f"{setting} must be a whole number from 1 to 1000, not {value!r}")
        writes, copies = self.write_consistency_factor, self.replication_factor or 1
        if writes is not None and writes > copies:
            raise ConfigError(
                f"KUP_QDRANT_WRITE_CONSISTENCY_FACTOR ({writes}) must not exceed KUP_QDRANT_REPLICATION_FACTOR "
                f"({copies}): a write cannot wait for more copies than the collection keeps"
            )

    def options(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _SETTINGS if getattr(self, name) is not None}

    def refusal(self, exc: UnexpectedResponse, collection: str) -> ConfigError | None:
        """The server's refusal of a collection as one sentence naming the cluster setting it objects to; None
        when the refusal is about something else."""
        if exc.status_code is None or not 400 <= exc.status_code < 500 or exc.status_code == 409:
            return None
        try:
            reason = str(exc.structured().get("status", {}).get("error") or "").strip()
        except (ValueError, AttributeError):
            reason = exc.content.decode(errors="replace").strip()
        reason = " ".join(reason.split())[:300] or f"HTTP {exc.status_code}"
        lowered = reason.lower()
        named = [name for name, (_, words) in _SETTINGS.items() if any(w in lowered for w in words)]
        if not named:
            named = list(self.options())
        if not named:
            return None
        shown = ", ".join(f"{_SETTINGS[n][0]}={getattr(self, n) or 'server default'}" for n in named)
        return ConfigError(
            f"the Qdrant server refused to create collection {collection} with {shown} ({reason.rstrip('.')}); "
            f"change {' or '.join(_SETTINGS[n][0] for n in named)}"
        )


class QdrantStore(VectorStore):
    def __init__(
        self,
        url: str,
        collection: str,
        *,
        api_key: str | None = None,
        dense_size: int = DENSE_SIZE,
        timeout: int = 30,
        client: QdrantClient | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        self.url = url
        self.collection = collection
        self.dense_size = dense_size
        self.cluster = cluster or Cluster()
        self._secrets = _secrets(url, api_key)
        self._owns_client = client is None
        if client is not None:
            self.client = client  # a staging collection shares its live store's connection
        elif url == ":memory:":
            self.client = QdrantClient(location=":memory:")
        else:
            try:
                self.client = QdrantClient(url=url, api_key=api_key, timeout=timeout)
            except ValueError as exc:  # urllib3's LocationParseError is one too
                shown, reason = (mask_text(text, self._secrets) for text in (mask_url(url), str(exc)))
                raise ConfigError(f"Qdrant URL {shown} is not usable ({reason}); check KUP_QDRANT_URL") from None
        self._ready = False

    @property
    def location(self) -> str:
        return self.collection

    def __str__(self) -> str:
        return f"{mask_url(self.url)} collection {self.collection}"

    def _create(self, name: str) -> None:
        """A physical collection with the cluster settings (local mode has no cluster and ignores them)."""
        try:
            self.client.create_collection(
                name,
                vectors_config={DENSE: models.VectorParams(size=self.dense_size, distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                **self.cluster.options(),
            )
        except UnexpectedResponse as exc:
            refusal = self.cluster.refusal(exc, name)
            if refusal is None:
                raise
            raise refusal from None
        for field_name in KEYWORD_FIELDS:
            self.client.create_payload_index(name, field_name, models.PayloadSchemaType.KEYWORD)
        for field_name in DATETIME_FIELDS:
            self.client.create_payload_index(name, field_name, models.PayloadSchemaType.DATETIME)

    def _alias(self, name: str):
        return models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=name, alias_name=self.collection)
        )

    @_errors
    def _ensure(self) -> None:
        """The live name is an alias onto a physical collection, so a rebuild can switch it atomically."""
        if self._ready:
            return
        if not self.client.collection_exists(self.collection):
            physical = f"{self.collection}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
            self._create(physical)
            self.client.update_collection_aliases(change_aliases_operations=[self._alias(physical)])
        self._ready = True

    def _physical(self) -> str | None:
        for alias in self.client.get_aliases().aliases:
            if alias.alias_name == self.collection:
                return alias.collection_name
        return None

    @_errors
    def staging(self, *, dense_size: int | None = None) -> QdrantStore:
        name = f"{self.collection}-{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        staging = QdrantStore(
            self.url, name, dense_size=dense_size or self.dense_size, client=self.client, cluster=self.cluster
        )
        staging._secrets = self._secrets
        staging._create(name)
        staging._ready = True  # a physical collection, written to directly
        return staging

    @_errors
    def promote(self, staging: VectorStore) -> None:
        if not isinstance(staging, QdrantStore) or staging.client is not self.client:
            raise ValueError("promote takes a staging store made by this store's staging()")
        old = self._physical()
        operations = [self._alias(staging.collection)]
        if old is not None:
            operations.insert(
                0, models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=self.collection))
            )
        elif self.client.collection_exists(self.collection):
            # A real collection under the alias's name (made before aliases were used): it has to go first,
            # so this one switch is not atomic; later ones are.
            self.client.delete_collection(self.collection)
        self.client.update_collection_aliases(change_aliases_operations=operations)
        if old is not None and old != staging.collection:
            self.client.delete_collection(old)
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
        self._ensure()
        depth = prefetch or max(4 * limit, 20)
        flt = _filter(sources, published_after, published_before=published_before)
        response = self.client.query_points(
            self.collection,
            prefetch=[
                models.Prefetch(query=dense, using=DENSE, limit=depth, filter=flt),
                models.Prefetch(query=_sparse(sparse), using=SPARSE, limit=depth, filter=flt),
            ],
            query=models.RrfQuery(rrf=models.Rrf(k=(fusion or RRF).k, weights=list((fusion or RRF).weights))),
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
        if self._owns_client:
            self.client.close()

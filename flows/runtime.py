"""The composition root: builds the catalog, store, fetcher and encoders a command or flow needs."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from errors import ConfigError
from flows.settings import Settings

if TYPE_CHECKING:  # each part imports its libraries when first built: `kup search` never loads the catalog's
    from connectors import Fetcher, Source
    from indexing import Catalog, Chunker, DenseEncoder, Indexer, SparseEncoder, VectorStore
    from indexing.fanout import Fanout
    from indexing.validation import Requirements


class Runtime:
    """Lazily built parts; nothing heavy (models, network) is touched until it is used."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sources(self) -> list[Source]:
        from connectors import load_sources

        return load_sources(self.settings.sources_file)

    @cached_property
    def catalog(self) -> Catalog:
        from indexing import Catalog

        return Catalog(self.settings.secret("catalog_url") or self.settings.resolved_catalog_url)

    @cached_property
    def store(self) -> VectorStore:
        s = self.settings
        if s.qdrant_url:  # a URL or key may name a Prefect Secret block (prefect-secret:<block>)
            from indexing.qdrant_store import Cluster, QdrantStore

            cluster = Cluster(s.qdrant_shards, s.qdrant_replication_factor, s.qdrant_write_consistency_factor)
            return QdrantStore(
                s.secret("qdrant_url"), s.collection, api_key=s.secret("qdrant_api_key"), cluster=cluster
            )
        from indexing import EdgeStore

        return EdgeStore(s.index_path)

    @cached_property
    def fetcher(self) -> Fetcher:
        from connectors import Fetcher

        return Fetcher(self.settings.fetch_policy())

    @cached_property
    def dense(self) -> DenseEncoder:
        from indexing import DenseEncoder

        s = self.settings
        return DenseEncoder(
            s.embedding_model,
            batch_size=s.embed_batch_size,
            backend=s.encoder_backend,
            cache_dir=s.data_path / "models" / "onnx",  # exported once per model, keyed by its files' hash
        )

    @cached_property
    def sparse(self) -> SparseEncoder:
        from indexing import SparseEncoder

        return SparseEncoder()

    @cached_property
    def chunker(self) -> Chunker:
        from indexing import Chunker

        return Chunker(
            self.dense.tokenize, chunk_tokens=self.settings.chunk_tokens, overlap_tokens=self.settings.chunk_overlap
        )

    def known_sources(self) -> set[str]:
        """Sources a search may name: those configured (when the sources file reads) and those the catalog holds."""
        from errors import ConfigError

        try:
            configured = {source.name for source in self.sources()}
        except ConfigError:
            configured = set()
        return configured | self.catalog.source_names()

    def requirements(self) -> dict[str, Requirements]:
        """What each configured source's documents must carry."""
        from indexing.validation import Requirements

        return {source.name: Requirements.for_source(source) for source in self.sources()}

    @cached_property
    def indexer(self) -> Indexer:
        from indexing import Indexer
        from indexing.validation import DocumentChecks

        return Indexer(
            self.catalog,
            self.store,
            self.chunker,
            self.dense,
            self.sparse,
            batch_size=self.settings.index_batch_docs,
            checks=DocumentChecks(
                min_text_chars=self.settings.min_text_chars,
                max_text_chars=self.settings.max_text_chars,
                max_future_skew=timedelta(minutes=self.settings.future_skew_minutes),
            ),
            requirements=self.requirements(),
            fanout=self.fanout,
        )

    @cached_property
    def fanout(self) -> Fanout | None:
        """Large batches chunked and embedded on Dask (KUP_DASK_ADDRESS or KUP_DASK_WORKERS); None: in-process."""
        s = self.settings
        if not (s.dask_address or s.dask_workers):
            return None
        from indexing.fanout import Fanout, WorkerRecipe, client_security

        return Fanout(
            WorkerRecipe.of(self.chunker, self.dense),
            address=s.secret("dask_address"),
            workers=s.dask_workers,
            unreachable=s.dask_unreachable,
            security=client_security(s.secret("dask_tls_ca"), s.secret("dask_tls_cert"), s.secret("dask_tls_key")),
            allow_plaintext=s.dask_allow_plaintext,
        )

    @cached_property
    def answerer(self):
        from answering import Answerer, LanguageModel

        s = self.settings
        remote = remote_reader(s)
        lm = LanguageModel(s.data_path, s.reader, int8=s.reader_int8, remote=remote, fallback=s.reader_fallback)
        return Answerer(
            self.store,
            self.dense,
            self.sparse,
            lm,
            context_tokens=s.context_tokens,
            max_new_tokens=s.max_new_tokens,
            recency_half_life_days="profile" if s.recency_half_life_days is None else s.recency_half_life_days,
        )

    def close(self) -> None:
        for name in ("fanout", "fetcher", "store", "catalog"):
            part = self.__dict__.pop(name, None)
            if part is not None:
                part.close()


def remote_reader(s: Settings):
    """The model server that writes the answers (``KUP_READER_URL``), or None."""
    if not s.reader_url:
        return None
    from answering.remote_reader import RemoteReader

    if not s.reader_model:
        raise ConfigError("KUP_READER_URL is set without KUP_READER_MODEL: name the model that server serves")
    return RemoteReader(
        s.reader_url,
        s.reader_model,
        api_key=s.secret("reader_key"),
        context_tokens=s.reader_context_tokens,
        timeout=s.reader_timeout_seconds,
    )


def serving_servers(s: Settings) -> list:
    """The vLLM servers told of each new champion adapter (``KUP_SERVING_URLS``)."""
    from training.serving import ServingServer

    urls = [u.strip() for u in s.serving_urls.split(",") if u.strip()]
    key = s.secret("serving_key") if urls else None
    return [ServingServer(u, s.serving_adapter_name, key, s.serving_adapters_dir) for u in urls]

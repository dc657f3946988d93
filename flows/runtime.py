"""The composition root: builds the catalog, store, fetcher and encoders a command or flow needs."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

from connectors import Fetcher, Source, load_sources
from flows.settings import Settings
from indexing import (
    Catalog,
    Chunker,
    DenseEncoder,
    EdgeStore,
    Indexer,
    SparseEncoder,
    VectorStore,
)
from indexing.validation import DocumentChecks, Requirements


class Runtime:
    """Lazily built parts; nothing heavy (models, network) is touched until it is used."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sources(self) -> list[Source]:
        return load_sources(self.settings.sources_file)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.settings.resolved_catalog_url)

    @cached_property
    def store(self) -> VectorStore:
        s = self.settings
        if s.qdrant_url:
            key = s.qdrant_api_key.get_secret_value() if s.qdrant_api_key else None
            from indexing.qdrant_store import QdrantStore

            return QdrantStore(s.qdrant_url, s.collection, api_key=key)
        return EdgeStore(s.index_path)

    @cached_property
    def fetcher(self) -> Fetcher:
        return Fetcher(self.settings.fetch_policy())

    @cached_property
    def dense(self) -> DenseEncoder:
        s = self.settings
        return DenseEncoder(
            s.embedding_model,
            batch_size=s.embed_batch_size,
            backend=s.encoder_backend,
            cache_dir=s.data_path / "models" / "onnx",  # exported once per model, keyed by its files' hash
        )

    @cached_property
    def sparse(self) -> SparseEncoder:
        return SparseEncoder()

    @cached_property
    def chunker(self) -> Chunker:
        return Chunker(
            self.dense.tokenize, chunk_tokens=self.settings.chunk_tokens, overlap_tokens=self.settings.chunk_overlap
        )

    def requirements(self) -> dict[str, Requirements]:
        """What each configured source's documents must carry."""
        return {source.name: Requirements.for_source(source) for source in self.sources()}

    @cached_property
    def indexer(self) -> Indexer:
        return Indexer(
            self.catalog,
            self.store,
            self.chunker,
            self.dense,
            self.sparse,
            batch_size=self.settings.index_batch_docs,
            checks=DocumentChecks(
                min_text_chars=self.settings.min_text_chars,
                max_future_skew=timedelta(minutes=self.settings.future_skew_minutes),
            ),
            requirements=self.requirements(),
        )

    @cached_property
    def answerer(self):
        from answering import Answerer, LanguageModel

        lm = LanguageModel(self.settings.data_path, self.settings.base_model)
        return Answerer(
            self.store,
            self.dense,
            self.sparse,
            lm,
            context_tokens=self.settings.context_tokens,
            max_new_tokens=self.settings.max_new_tokens,
        )

    def close(self) -> None:
        for name in ("fetcher", "store", "catalog"):
            part = self.__dict__.pop(name, None)
            if part is not None:
                part.close()

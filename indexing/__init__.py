"""The catalog, chunking, embedding, the Qdrant stores and hybrid retrieval; never fetches from the network.

Names load on first use (PEP 562): ``kup search`` imports the Edge store and the encoders but not the
catalog's SQLAlchemy, the indexer's data checks or qdrant-client (seconds of imports, loaded only when a
Qdrant server is configured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from errors.lazy import lazy_exports

if TYPE_CHECKING:
    from indexing.catalog import Catalog, DocRow, now_utc
    from indexing.chunking import Chunk, Chunker
    from indexing.edge_store import EdgeStore
    from indexing.embedding import DENSE_SIZE, DenseEncoder, SparseEncoder, SparseVector
    from indexing.indexer import Indexer, embed_text
    from indexing.ingest import ingest_source
    from indexing.qdrant_store import QdrantStore
    from indexing.reindex import RebuildReport, rebuild_index
    from indexing.reports import IndexReport, SourceReport, percentiles, summarize
    from indexing.sql_sync import backfill_sql, ingest_sql
    from indexing.store import RRF, Changes, ChunkPoint, Fusion, Hit, StoredPoint, Vectors, VectorStore, point_id
    from indexing.validation import DocumentChecks, Requirements

# Eager: the submodule ``indexing.search`` would otherwise shadow the function of that name once imported.
from indexing.search import SearchResult, search  # noqa: E402  (light: numpy and the store protocol)

_WHERE = {
    **dict.fromkeys(("Catalog", "DocRow", "now_utc"), "indexing.catalog"),
    **dict.fromkeys(("Chunk", "Chunker"), "indexing.chunking"),
    "EdgeStore": "indexing.edge_store",
    **dict.fromkeys(("DENSE_SIZE", "DenseEncoder", "SparseEncoder", "SparseVector"), "indexing.embedding"),
    **dict.fromkeys(("Indexer", "embed_text"), "indexing.indexer"),
    "ingest_source": "indexing.ingest",
    "QdrantStore": "indexing.qdrant_store",
    **dict.fromkeys(("RebuildReport", "rebuild_index"), "indexing.reindex"),
    **dict.fromkeys(("IndexReport", "SourceReport", "percentiles", "summarize"), "indexing.reports"),
    **dict.fromkeys(("backfill_sql", "ingest_sql"), "indexing.sql_sync"),
    **dict.fromkeys(
        ("RRF", "Changes", "ChunkPoint", "Fusion", "Hit", "StoredPoint", "Vectors", "VectorStore", "point_id"),
        "indexing.store",
    ),
    **dict.fromkeys(("DocumentChecks", "Requirements"), "indexing.validation"),
}

__all__ = [
    "Catalog",
    "Changes",
    "Chunk",
    "ChunkPoint",
    "Chunker",
    "DENSE_SIZE",
    "DenseEncoder",
    "DocRow",
    "DocumentChecks",
    "EdgeStore",
    "Fusion",
    "Hit",
    "IndexReport",
    "Indexer",
    "QdrantStore",
    "RRF",
    "RebuildReport",
    "Requirements",
    "SearchResult",
    "SourceReport",
    "SparseEncoder",
    "SparseVector",
    "StoredPoint",
    "VectorStore",
    "Vectors",
    "backfill_sql",
    "embed_text",
    "ingest_source",
    "ingest_sql",
    "now_utc",
    "percentiles",
    "point_id",
    "rebuild_index",
    "search",
    "summarize",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE)

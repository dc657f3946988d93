"""The catalog, chunking, embedding, the Qdrant stores and hybrid retrieval; never fetches from the network."""

from indexing.catalog import Catalog, DocRow, now_utc
from indexing.chunking import Chunk, Chunker
from indexing.edge_store import EdgeStore
from indexing.embedding import DENSE_SIZE, DenseEncoder, SparseEncoder, SparseVector
from indexing.indexer import Indexer, embed_text
from indexing.ingest import ingest_source
from indexing.reindex import RebuildReport, rebuild_index
from indexing.reports import IndexReport, SourceReport, percentiles, summarize
from indexing.search import SearchResult, search
from indexing.sql_sync import backfill_sql, ingest_sql
from indexing.store import Changes, ChunkPoint, Hit, StoredPoint, Vectors, VectorStore, point_id
from indexing.validation import DocumentChecks, Requirements

__all__ = [
    "DENSE_SIZE",
    "Catalog",
    "Changes",
    "Chunk",
    "ChunkPoint",
    "Chunker",
    "DenseEncoder",
    "DocRow",
    "DocumentChecks",
    "EdgeStore",
    "Hit",
    "IndexReport",
    "Indexer",
    "QdrantStore",
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


def __getattr__(name: str):
    """QdrantStore loads qdrant-client (seconds of imports): only when a server is configured."""
    if name == "QdrantStore":
        from indexing.qdrant_store import QdrantStore

        return QdrantStore
    raise AttributeError(f"module 'indexing' has no attribute {name!r}")

"""The catalog's tables: documents, story bands, per-source state, failures and refresh runs (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive storage) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

# Document lifecycle: pending -> indexed; pending -> failed (retried with backoff) -> indexed;
# quarantined (bad input or failed data checks, with its reason); deleted (gone from the source,
# its points removed from the index).
STATUSES = ("pending", "indexed", "failed", "quarantined", "deleted")

documents = Table(
    "documents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("source", String(64), nullable=False),
    Column("external_id", Text, nullable=False),
    Column("url", Text),
    Column("title", Text, nullable=False, default=""),
    Column("author", Text),
    Column("language", String(16)),
    Column("published_at", UTCDateTime()),
    Column("published_estimated", Boolean, nullable=False, default=False),
    Column("text", Text, nullable=False, default=""),
    Column("content_hash", String(64), nullable=False),
    Column("entry_hash", String(64)),
    Column("extraction", String(16), nullable=False, default="article"),
    Column("extraction_note", Text),
    Column("meta", JSON, nullable=False, default=dict),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("first_seen_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("indexed_at", UTCDateTime()),  # its points last written (a reindex or a backfill moves it)
    Column("searchable_at", UTCDateTime()),  # its current content first searchable (re-indexing does not move it)
    Column("indexed_version", Integer),
    Column("chunk_count", Integer),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime()),
    Column("last_error", Text),
    Column("lease_owner", String(128)),
    Column("lease_until", UTCDateTime()),
    Column("deleted_at", UTCDateTime()),  # gone from the source: its points are removed, the row stays
    Column("story_id", String(32)),  # the syndicated story: the id of its earliest member (indexing.story_fingerprints)
    Index("ix_documents_status_next", "status", "next_attempt_at"),
    Index("ix_documents_source_status", "source", "status"),
    Index("ix_documents_indexed_at", "indexed_at"),
    Index("ix_documents_updated_at", "updated_at"),
    Index("ix_documents_lease_until", "lease_until"),
    Index("ix_documents_story_id", "story_id"),
)

# A document's MinHash LSH band keys: documents sharing a key are candidate copies of one story.
story_bands = Table(
    "story_bands",
    metadata,
    Column("doc_id", String(32), primary_key=True),
    Column("band", Integer, primary_key=True, autoincrement=False),
    Column("key", BigInteger, nullable=False),  # the band number is hashed into the key
    Index("ix_story_bands_key", "key"),
)

source_state = Table(
    "source_state",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("cursor", JSON, nullable=False, default=dict),
    Column("last_attempt_at", UTCDateTime()),
    Column("last_success_at", UTCDateTime()),
    Column("last_error", Text),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime()),
    Column("warning", Text),
)

failures = Table(
    "failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False),
    # The failed article's document id, or "(source)" (catalog.SOURCE_ITEM) for a source failing as a whole.
    Column("item", Text, nullable=False),
    # "fetch": a source failing as a whole (its feed or database); "article": an article page that failed.
    # Indexing failures and quarantines are kept on the document row (status, last_error), not here.
    Column("stage", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    Column("next_retry_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()),
    UniqueConstraint("source", "item", "stage", name="uq_failures_item"),
    Index("ix_failures_open", "resolved_at", "source"),
)

refresh_runs = Table(
    "refresh_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("summary", JSON, nullable=False),
)

# Long-lived jobs that must run once at a time (the database listener, the hot-feed watcher): who holds each now.
# The newest run takes the role when it is ready; the one it replaces sees that at its next renewal and stops.
roles = Table(
    "roles",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("since", UTCDateTime(), nullable=False),
    Column("renewed_at", UTCDateTime(), nullable=False),
)

"""Initial catalog: documents, source state, failures, refresh runs.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from indexing.schema import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("url", sa.Text),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("author", sa.Text),
        sa.Column("language", sa.String(16)),
        sa.Column("published_at", UTCDateTime()),
        sa.Column("published_estimated", sa.Boolean, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("entry_hash", sa.String(64)),
        sa.Column("extraction", sa.String(16), nullable=False),
        sa.Column("extraction_note", sa.Text),
        sa.Column("meta", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("indexed_at", UTCDateTime()),
        sa.Column("indexed_version", sa.Integer),
        sa.Column("chunk_count", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_until", UTCDateTime()),
    )
    op.create_index("ix_documents_status_next", "documents", ["status", "next_attempt_at"])
    op.create_index("ix_documents_source_status", "documents", ["source", "status"])
    op.create_index("ix_documents_indexed_at", "documents", ["indexed_at"])
    op.create_index("ix_documents_lease_until", "documents", ["lease_until"])
    op.create_table(
        "source_state",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("cursor", sa.JSON, nullable=False),
        sa.Column("last_attempt_at", UTCDateTime()),
        sa.Column("last_success_at", UTCDateTime()),
        sa.Column("last_error", sa.Text),
        sa.Column("consecutive_failures", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("warning", sa.Text),
    )
    op.create_table(
        "failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("item", sa.Text, nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.Column("next_retry_at", UTCDateTime()),
        sa.Column("resolved_at", UTCDateTime()),
        sa.UniqueConstraint("source", "item", "stage", name="uq_failures_item"),
    )
    op.create_index("ix_failures_open", "failures", ["resolved_at", "source"])
    op.create_table(
        "refresh_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("refresh_runs", "failures", "source_state", "documents"):
        op.drop_table(table)

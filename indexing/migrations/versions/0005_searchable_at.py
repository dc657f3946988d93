"""searchable_at: when a document's current content first became searchable, kept through re-indexes.

``indexed_at`` is the last time its points were written (a reindex or a backfill moves it); the freshness lag is
measured from when a version was first seen to ``searchable_at``, so re-indexing does not count as lateness.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

from indexing.schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("searchable_at", UTCDateTime()))
    op.execute("UPDATE documents SET searchable_at = indexed_at WHERE indexed_at IS NOT NULL")
    op.create_index("ix_documents_updated_at", "documents", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_documents_updated_at", "documents")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("searchable_at")

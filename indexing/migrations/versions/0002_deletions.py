"""Deletions: documents gone from their source keep their row, marked with when they went.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from indexing.schema import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("deleted_at", UTCDateTime()))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("deleted_at")

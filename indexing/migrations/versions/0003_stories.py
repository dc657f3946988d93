"""Stories: each document's syndicated story, and the MinHash LSH band keys that find its copies.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("story_id", sa.String(32)))
        batch.create_index("ix_documents_story_id", ["story_id"])
    op.create_table(
        "story_bands",
        sa.Column("doc_id", sa.String(32), primary_key=True),
        sa.Column("band", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("key", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_story_bands_key", "story_bands", ["key"])


def downgrade() -> None:
    op.drop_table("story_bands")
    with op.batch_alter_table("documents") as batch:
        batch.drop_index("ix_documents_story_id")
        batch.drop_column("story_id")

"""Roles: which run holds a long-lived job (the listener, the watcher), for gap-free hand-overs.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from indexing.schema import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roles",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.Column("renewed_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("roles")

"""A hospital's province on its credential (authority.md: a hospital belongs to its own
province, whose feed gets the events the clearinghouse refused it).

One nullable column; the downgrade drops it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("credentials", sa.Column("province", sa.String(6), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("credentials") as table:
        table.drop_column("province")

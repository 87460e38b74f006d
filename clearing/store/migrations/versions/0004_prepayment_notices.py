"""Prepayment notices: "no prepayment on record", once per (province, period).

A province with no deposit and no issued period to derive its prepayment from gets one notice
per clearing period instead of an alert (`clearing.ledger.prepayment`). This revision creates
`ledger_notices`, whose primary key (province, period, kind) is what keeps a notice from being
raised twice, whatever the number of batches or workers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

T = "ledger_notices"


def upgrade() -> None:
    op.create_table(
        T,
        sa.Column("province", sa.String(6), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("result_key", sa.String(70), nullable=False),
        sa.Column("net_debit_fen", sa.BigInteger(), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "length(province) = 6 AND substr(province, 3) = '0000'",
            name=op.f(f"ck_{T}_province"),
        ),
        sa.CheckConstraint(
            "length(period) = 7 AND substr(period, 5, 1) = '-' "
            "AND substr(period, 6) BETWEEN '01' AND '12'",
            name=op.f(f"ck_{T}_period_format"),
        ),
        sa.CheckConstraint("kind IN ('no_prepayment')", name=op.f(f"ck_{T}_kind")),
        sa.CheckConstraint("net_debit_fen > 0", name=op.f(f"ck_{T}_net_debit")),
        sa.ForeignKeyConstraint(
            ["result_key"], ["ledger_results.result_key"], name=op.f(f"fk_{T}_result_key")
        ),
        sa.PrimaryKeyConstraint("province", "period", "kind", name=op.f(f"pk_{T}")),
    )


def downgrade() -> None:
    op.drop_table(T)

"""Fund-safety monitoring in the stream: the monitor's state and the flags it raises.

- `monitor_seen`: the priced, not reversed settlements of each person as the rules see them
  (`clearing.core.monitoring.Seen`), ordered by the offset they were read at;
- `monitor_counts`: priced settlements and reversals per (period, hospital, payer, payee), which
  rule 5 sums by hospital when a period closes;
- `flags`: every flag once, by `flag_id`, with its rule, period, JSON and the position that
  raised it;
- `flag_reviews`: operators' reviews of flags (confirmed or dismissed, a note, who and when).

New tables only; a frozen copy of the model at this revision. The downgrade drops them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KINDS = "'inpatient', 'outpatient', 'chronic'"
RULES = (
    "'OVERLAPPING_STAYS', 'OUTPATIENT_DURING_STAY', 'QUICK_READMISSION', "
    "'DUPLICATE_BILLING', 'HIGH_REVERSAL_RATE'"
)


def _period(column: str) -> str:
    return (
        f"length({column}) = 7 AND substr({column}, 5, 1) = '-' "
        f"AND substr({column}, 6) BETWEEN '01' AND '12'"
    )


def _ck(table: str, name: str, condition: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def upgrade() -> None:
    op.create_table(
        "monitor_seen",
        sa.Column("settlement_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("source_offset", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("hospital_id", sa.String(64), nullable=False),
        sa.Column("admitted_on", sa.Date(), nullable=False),
        sa.Column("discharged", sa.Date(), nullable=False),
        sa.Column("diagnosis", sa.String(64), nullable=False),
        sa.Column("items", sa.LargeBinary(), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("payer", sa.String(6), nullable=False),
        sa.Column("payee", sa.String(6), nullable=False),
        sa.Column("total_fen", sa.BigInteger(), nullable=False),
        _pk("monitor_seen", "settlement_id"),
        _ck("monitor_seen", "kind", f"kind IN ({KINDS})"),
        _ck("monitor_seen", "period_format", _period("period")),
    )
    op.create_index(op.f("ix_monitor_seen_person_id"), "monitor_seen", ["person_id"])
    op.create_table(
        "monitor_counts",
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("hospital_id", sa.String(64), nullable=False),
        sa.Column("payer", sa.String(6), nullable=False),
        sa.Column("payee", sa.String(6), nullable=False),
        sa.Column("settlements", sa.BigInteger(), nullable=False),
        sa.Column("reversals", sa.BigInteger(), nullable=False),
        _pk("monitor_counts", "period", "hospital_id", "payer", "payee"),
        _ck("monitor_counts", "period_format", _period("period")),
        _ck("monitor_counts", "non_negative", "settlements >= 0 AND reversals >= 0"),
    )
    op.create_table(
        "flags",
        sa.Column("flag_id", sa.String(200), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("flag", sa.LargeBinary(), nullable=False),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        _pk("flags", "flag_id"),
        _ck("flags", "rule", f"rule IN ({RULES})"),
        _ck("flags", "period_format", _period("period")),
    )
    op.create_index(op.f("ix_flags_period"), "flags", ["period"])
    op.create_index(op.f("ix_flags_source"), "flags", ["source"])
    op.create_table(
        "flag_reviews",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("flag_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        _pk("flag_reviews", "id"),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flags.flag_id"], name=op.f("fk_flag_reviews_flag_id")
        ),
        _ck("flag_reviews", "status", "status IN ('confirmed', 'dismissed')"),
    )
    op.create_index(op.f("ix_flag_reviews_flag_id"), "flag_reviews", ["flag_id"])


def downgrade() -> None:
    op.drop_table("flag_reviews")
    op.drop_table("flags")
    op.drop_table("monitor_counts")
    op.drop_table("monitor_seen")

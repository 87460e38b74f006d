"""The fund-safety monitor's fields move into the stream's priced-settlement rows.

`monitor_seen` held, for every priced, not reversed settlement, what the rules read of it; the
stream already wrote a `stream_priced` row for each of them in the same transaction, and marks
it `reversed` when it is reversed. The monitor's own fields (`source_offset`, `admitted_on`,
`discharged`, `diagnosis`, `items`) are now columns of that row, set while monitoring is on (all
of them or none: `ck_stream_priced_monitored`), and a person's history is read from it by
`ix_stream_priced_person_id`, which holds only those rows: one row per priced settlement
instead of two, and nothing to delete on a reversal. The hospital, period, payer, payee and
total are the result's own.

The upgrade copies every `monitor_seen` row onto its settlement's row and drops the table; the
downgrade makes it again from the rows with the fields set and not reversed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

T = "stream_priced"
KINDS = "kind IN ('inpatient', 'outpatient', 'chronic')"
MONITOR_COLUMNS = ("source_offset", "admitted_on", "discharged", "diagnosis", "items")
MONITORED = " OR ".join(
    "(" + " AND ".join(f"{c} IS {test}" for c in MONITOR_COLUMNS) + ")"
    for test in ("NULL", "NOT NULL")
)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _monitor_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("source_offset", sa.BigInteger(), nullable=True),
        sa.Column("admitted_on", sa.Date(), nullable=True),
        sa.Column("discharged", sa.Date(), nullable=True),
        sa.Column("diagnosis", sa.String(64), nullable=True),
        sa.Column("items", sa.LargeBinary(), nullable=True),
    ]


def _priced_elements(monitored: bool) -> list[SchemaItem]:
    """`stream_priced` at this revision (`monitored`) or at the one before."""
    elements: list[SchemaItem] = [
        sa.Column("settlement_id", sa.String(64), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("result", sa.LargeBinary(), nullable=False),
        sa.Column("reversed", sa.Boolean(), nullable=False),
        sa.Column("counted_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("settlement_id", name=op.f(f"pk_{T}")),
        sa.CheckConstraint(KINDS, name=op.f(f"ck_{T}_kind")),
    ]
    if monitored:
        elements[7:7] = _monitor_columns()
        elements.append(sa.CheckConstraint(MONITORED, name=op.f(f"ck_{T}_monitored")))
    return elements


def _rebuild_sqlite(monitored: bool, select_rows: str) -> None:
    """SQLite cannot add a CHECK to a table: `stream_priced` made again in its new shape, filled
    by `select_rows` (its columns in the new shape's order)."""
    temporary = f"{T}__0007"
    op.create_table(temporary, *_priced_elements(monitored))
    op.execute(f"INSERT INTO {temporary} {select_rows}")
    op.drop_table(T)
    op.rename_table(temporary, T)


def upgrade() -> None:
    base = "p.settlement_id, p.person_id, p.year, p.kind, p.result, p.reversed, p.counted_fen"
    moved = ", ".join(f"m.{c}" for c in MONITOR_COLUMNS)
    if _sqlite():
        _rebuild_sqlite(
            True,
            f"SELECT {base}, {moved} FROM {T} p"
            " LEFT JOIN monitor_seen m ON m.settlement_id = p.settlement_id",
        )
    else:
        for column in _monitor_columns():
            op.add_column(T, column)
        op.create_check_constraint(op.f(f"ck_{T}_monitored"), T, MONITORED)
        setting = ", ".join(f"{c} = m.{c}" for c in MONITOR_COLUMNS)
        op.execute(
            f"UPDATE {T} p SET {setting} FROM monitor_seen m"
            " WHERE m.settlement_id = p.settlement_id"
        )
    remembered = sa.text("items IS NOT NULL")
    op.create_index(
        op.f(f"ix_{T}_person_id"),
        T,
        ["person_id"],
        sqlite_where=remembered,
        postgresql_where=remembered,
    )
    op.drop_index(op.f("ix_monitor_seen_person_id"), table_name="monitor_seen")
    op.drop_table("monitor_seen")


def _period(column: str) -> str:
    return (
        f"length({column}) = 7 AND substr({column}, 5, 1) = '-' "
        f"AND substr({column}, 6) BETWEEN '01' AND '12'"
    )


def downgrade() -> None:
    seen = op.create_table(
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
        sa.PrimaryKeyConstraint("settlement_id", name=op.f("pk_monitor_seen")),
        sa.CheckConstraint(KINDS, name=op.f("ck_monitor_seen_kind")),
        sa.CheckConstraint(_period("period"), name=op.f("ck_monitor_seen_period_format")),
    )
    op.create_index(op.f("ix_monitor_seen_person_id"), "monitor_seen", ["person_id"])
    priced = sa.table(
        T,
        *(sa.column(c) for c in ("settlement_id", "person_id", "kind", "result")),
        sa.column("reversed", sa.Boolean()),
        sa.column("source_offset"),
        sa.column("admitted_on", sa.Date()),
        sa.column("discharged", sa.Date()),
        sa.column("diagnosis"),
        sa.column("items", sa.LargeBinary()),
    )
    bind = op.get_bind()
    query = sa.select(priced).where(priced.c["items"].is_not(None), priced.c.reversed.is_(False))
    rows = []
    for row in bind.execute(query):
        result = json.loads(bytes(row.result))
        rows.append(
            {
                "settlement_id": row.settlement_id,
                "person_id": row.person_id,
                "source_offset": row.source_offset,
                "kind": row.kind,
                "hospital_id": result["hospital_id"],
                "admitted_on": row.admitted_on,
                "discharged": row.discharged,
                "diagnosis": row.diagnosis,
                "items": bytes(row.items),
                "period": result["period"],
                "payer": result["payer"],
                "payee": result["payee"],
                "total_fen": result["total_fen"],
            }
        )
    if rows:
        op.bulk_insert(seen, rows)
    op.drop_index(op.f(f"ix_{T}_person_id"), table_name=T)
    if _sqlite():
        base = "settlement_id, person_id, year, kind, result, reversed, counted_fen"
        _rebuild_sqlite(False, f"SELECT {base} FROM {T}")
    else:
        op.drop_constraint(op.f(f"ck_{T}_monitored"), T, type_="check")
        for column in MONITOR_COLUMNS:
            op.drop_column(T, column)

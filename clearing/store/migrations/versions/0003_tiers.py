"""One-stop settlement (`tiers.md`): the stream keeps its tier state across batches.

- `stream_results.status` admits `registered` (the result of an assistance record);
- `stream_assistance`: the assistance records, one per event (like `stream_filings`);
- `stream_tier_accumulators`: per (person, year) the counted burden, the serious-illness pay
  and the assistance pay, never negative;
- `stream_priced.counted_fen`: the `isp` a priced settlement added to its person-year's counted
  burden (0 for the rows before this revision: they were priced without tiers).

SQLite changes a CHECK only by copying its table: `stream_results` is rebuilt (a new table of the
final shape, its rows copied, the old one dropped, the new one renamed), with the triggers that
name it saved and recreated. PostgreSQL alters it in place.

A frozen copy of the model at this revision, self-contained; no downgrade (restore a backup).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RESULT_STATUSES = "'invalid', 'filed', 'duplicate', 'rejected', 'priced', 'reversed', 'registered'"


def _ck(table: str, name: str, condition: str) -> sa.CheckConstraint:
    # op.f: the name is final; the model's naming convention must not prefix it again.
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _rebuild_sqlite(
    table: str,
    elements: list[sa.SchemaItem],
    indexes: list[tuple[str, ...]],
    computed: dict[str, str] | None = None,
) -> None:
    """SQLite: `table` rebuilt with `elements`, keeping every row (the columns both shapes have,
    plus the `computed` ones: name -> SQL over the old row), its indexes, its triggers and those
    of other tables that name it."""
    bind = op.get_bind()
    triggers = bind.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE ?",
        (f"%{table}%",),
    ).all()
    for name, _sql in triggers:
        op.execute(f"DROP TRIGGER {name}")
    for index in sa.inspect(bind).get_indexes(table):
        op.drop_index(index["name"], table_name=table)
    old = {c["name"] for c in sa.inspect(bind).get_columns(table)}
    columns = [e.name for e in elements if isinstance(e, sa.Column) and e.name in old]
    temporary = f"{table}__0003"
    op.create_table(temporary, *elements)
    computed = computed or {}
    listed = ", ".join(f'"{c}"' for c in [*columns, *computed])
    values = ", ".join([*(f'"{c}"' for c in columns), *computed.values()])
    op.execute(f"INSERT INTO {temporary} ({listed}) SELECT {values} FROM {table}")
    op.drop_table(table)
    op.rename_table(temporary, table)
    for index_columns in indexes:
        op.create_index(op.f(f"ix_{table}_{'_'.join(index_columns)}"), table, list(index_columns))
    for _name, sql in triggers:
        op.execute(sql)


def _stream_results_elements() -> list[sa.SchemaItem]:
    t = "stream_results"
    return [
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=False),
        _pk(t, "source"),
        _ck(t, "status", f"status IN ({RESULT_STATUSES})"),
    ]


def _stream() -> None:
    t = "stream_results"
    if _sqlite():
        _rebuild_sqlite(t, _stream_results_elements(), [])
    else:
        op.drop_constraint(op.f(f"ck_{t}_status"), t, type_="check")
        op.create_check_constraint(op.f(f"ck_{t}_status"), t, f"status IN ({RESULT_STATUSES})")

    t = "stream_assistance"
    op.create_table(
        t,
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("record", sa.LargeBinary(), nullable=False),
        _pk(t, "source"),
        sa.ForeignKeyConstraint(
            ["source"], ["stream_results.source"], name=op.f(f"fk_{t}_source")
        ),
    )
    op.create_index(op.f(f"ix_{t}_person_id"), t, ["person_id"])

    t = "stream_tier_accumulators"
    op.create_table(
        t,
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("burden", sa.BigInteger(), nullable=False),
        sa.Column("critical_paid", sa.BigInteger(), nullable=False),
        sa.Column("assistance_paid", sa.BigInteger(), nullable=False),
        _pk(t, "person_id", "year"),
        _ck(t, "non_negative", "burden >= 0 AND critical_paid >= 0 AND assistance_paid >= 0"),
    )

    op.add_column(
        "stream_priced",
        sa.Column("counted_fen", sa.BigInteger(), nullable=False, server_default="0"),
    )


def upgrade() -> None:
    _stream()


def downgrade() -> None:
    raise NotImplementedError("0003 has no downgrade: restore a backup made before upgrading")

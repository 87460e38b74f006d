"""One-stop settlement (`tiers.md`): the stream keeps its tier state across batches, and the
ledger records the tier shares and pays each home-side payer's share from its own account.

- `stream_results.status` admits `registered` (the result of an assistance record);
- `stream_assistance`: the assistance records, one per event (like `stream_filings`);
- `stream_tier_accumulators`: per (person, year) the counted burden, the serious-illness pay
  and the assistance pay, never negative;
- `stream_priced.counted_fen`: the `isp` a priced settlement added to its person-year's counted
  burden (0 for the rows before this revision: they were priced without tiers);
- `ledger_results` gains `critical_pay_fen`, `assistance_pay_fen`, `due_fen` (= fund_pay_fen for
  the rows before this revision), `has_tiers` (whether the result printed the tier fields) and
  `assistance_class`; CHECKs `due_fen = fund_pay_fen + critical_pay_fen + assistance_pay_fen`,
  `personal_pay_fen = total_fen - due_fen`, the tier shares' signs;
- `ledger_accounts.kind` admits `critical` (a province's serious-illness insurer) and
  `assistance` (its medical-assistance fund); postings and balances admit their legs.

SQLite changes a CHECK only by copying its table: such a table is rebuilt (a new table of the
final shape, its rows copied, the old one dropped, the new one renamed), with the triggers that
name it saved and recreated. PostgreSQL alters the tables in place.

A frozen copy of the model at this revision, self-contained; no downgrade (restore a backup).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

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
    elements: list[SchemaItem],
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
        if index["name"] is not None:
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


def _stream_results_elements() -> list[SchemaItem]:
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


# ---------------------------------------------------------------------------------------------
# The ledger: one account per home-side payer, results with their tier shares

AMOUNTS = (
    "total_fen",
    "self_pay_fen",
    "pre_self_pay_fen",
    "eligible_fen",
    "deductible_fen",
    "fund_pay_fen",
    "personal_pay_fen",
)
ACCOUNT_KINDS = "kind IN ('fund', 'critical', 'assistance', 'hospital')"
LEGS = "leg IN ('fund', 'critical', 'assistance', 'hospital')"
PERSONAL = "personal_pay_fen = total_fen - due_fen"
DUE = "due_fen = fund_pay_fen + critical_pay_fen + assistance_pay_fen"
TIERS = (
    "(has_tiers OR (critical_pay_fen = 0 AND assistance_pay_fen = 0"
    " AND assistance_class IS NULL))"
    " AND (assistance_class IS NULL OR (status = 'priced' AND assistance_class IN ('A', 'B')))"
)
SIGNS = (
    "(status = 'priced' AND self_pay_fen >= 0 AND pre_self_pay_fen >= 0"
    " AND eligible_fen >= 0 AND deductible_fen >= 0 AND fund_pay_fen >= 0"
    " AND critical_pay_fen >= 0 AND assistance_pay_fen >= 0"
    " AND personal_pay_fen >= 0 AND deductible_fen <= eligible_fen"
    " AND fund_pay_fen <= eligible_fen - deductible_fen)"
    " OR (status = 'reversed' AND self_pay_fen <= 0 AND pre_self_pay_fen <= 0"
    " AND eligible_fen <= 0 AND deductible_fen <= 0 AND fund_pay_fen <= 0"
    " AND critical_pay_fen <= 0 AND assistance_pay_fen <= 0"
    " AND personal_pay_fen <= 0 AND deductible_fen >= eligible_fen"
    " AND fund_pay_fen >= eligible_fen - deductible_fen)"
)
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _province(column: str) -> str:
    return f"length({column}) = 6 AND substr({column}, 3) = '0000'"


def _period(column: str) -> str:
    return (
        f"length({column}) = 7 AND substr({column}, 5, 1) = '-' "
        f"AND substr({column}, 6) BETWEEN '01' AND '12'"
    )


def _recorded_at() -> sa.Column[Any]:
    return sa.Column(
        "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def _tier_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("critical_pay_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("assistance_pay_fen", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("due_fen", sa.BigInteger(), nullable=False),
        sa.Column("has_tiers", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("assistance_class", sa.String(1)),
    ]


def _accounts_elements() -> list[SchemaItem]:
    t = "ledger_accounts"
    return [
        sa.Column("account_id", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        _recorded_at(),
        _ck(t, "kind", ACCOUNT_KINDS),
        _ck(t, "id_is_kind_ref", "account_id = kind || ':' || ref"),
        _ck(t, "fund_is_province", f"kind = 'hospital' OR ({_province('ref')})"),
        _pk(t, "account_id"),
    ]


def _postings_elements() -> list[SchemaItem]:
    t = "ledger_postings"
    return [
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("result_key", sa.String(70), nullable=False),
        sa.Column("leg", sa.String(16), nullable=False),
        sa.Column("debit_account", sa.String(80), nullable=False),
        sa.Column("credit_account", sa.String(80), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        _recorded_at(),
        _ck(t, "leg", LEGS),
        _ck(t, "amount_positive", "amount_fen > 0"),
        _ck(t, "two_accounts", "debit_account <> credit_account"),
        sa.ForeignKeyConstraint(
            ["result_key"], ["ledger_results.result_key"], name=op.f(f"fk_{t}_result_key")
        ),
        sa.ForeignKeyConstraint(
            ["debit_account"], ["ledger_accounts.account_id"], name=op.f(f"fk_{t}_debit_account")
        ),
        sa.ForeignKeyConstraint(
            ["credit_account"],
            ["ledger_accounts.account_id"],
            name=op.f(f"fk_{t}_credit_account"),
        ),
        _pk(t, "id"),
        sa.UniqueConstraint("result_key", "leg", name=op.f(f"uq_{t}_result_key_leg")),
    ]


def _balances_elements() -> list[SchemaItem]:
    t = "ledger_balances"
    return [
        sa.Column("clearing_period", sa.String(7), nullable=False),
        sa.Column("account_id", sa.String(80), nullable=False),
        sa.Column("leg", sa.String(16), nullable=False),
        sa.Column("debits_fen", sa.BigInteger(), nullable=False),
        sa.Column("credits_fen", sa.BigInteger(), nullable=False),
        _ck(t, "leg", LEGS),
        _ck(t, "non_negative", "debits_fen >= 0 AND credits_fen >= 0"),
        sa.ForeignKeyConstraint(
            ["clearing_period"], ["ledger_periods.period"], name=op.f(f"fk_{t}_clearing_period")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_accounts.account_id"], name=op.f(f"fk_{t}_account_id")
        ),
        _pk(t, "clearing_period", "account_id", "leg"),
    ]


def _results_elements() -> list[SchemaItem]:
    """`ledger_results` of revision 0002 with the tier shares and their CHECKs."""
    t = "ledger_results"
    return [
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("result_key", sa.String(70), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("settlement_id", sa.String(64), nullable=False),
        sa.Column("reversal_id", sa.String(64)),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("clearing_period", sa.String(7), nullable=False),
        sa.Column("payer", sa.String(6), nullable=False),
        sa.Column("payee", sa.String(6), nullable=False),
        sa.Column("hospital_id", sa.String(64), nullable=False),
        sa.Column("settled_at", sa.String(40)),
        sa.Column("settled_day", sa.Date()),
        sa.Column("filed", sa.Boolean()),
        sa.Column("cap_reached", sa.Boolean()),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in AMOUNTS),
        _recorded_at(),
        *_tier_columns(),
        _ck(
            t,
            "status_key",
            "(status = 'priced' AND result_key = 'S:' || settlement_id AND reversal_id IS NULL"
            " AND filed IS NOT NULL AND cap_reached IS NOT NULL)"
            " OR (status = 'reversed' AND reversal_id IS NOT NULL"
            " AND result_key = 'R:' || reversal_id AND filed IS NULL AND cap_reached IS NULL)",
        ),
        _ck(
            t,
            "id_lengths",
            "length(settlement_id) BETWEEN 1 AND 64 AND length(hospital_id) BETWEEN 1 AND 64"
            " AND (reversal_id IS NULL OR length(reversal_id) BETWEEN 1 AND 64)",
        ),
        _ck(t, "period_format", _period("period")),
        _ck(t, "cleared_not_before", "clearing_period >= period"),
        _ck(t, "provinces", f"{_province('payer')} AND {_province('payee')}"),
        _ck(t, "cross_province", "payer <> payee"),
        _ck(t, "total", "total_fen = self_pay_fen + pre_self_pay_fen + eligible_fen"),
        _ck(t, "personal", PERSONAL),
        _ck(t, "due", DUE),
        _ck(t, "tiers", TIERS),
        _ck(t, "signs", SIGNS),
        sa.ForeignKeyConstraint(["period"], ["ledger_periods.period"], name=op.f(f"fk_{t}_period")),
        sa.ForeignKeyConstraint(
            ["clearing_period"], ["ledger_periods.period"], name=op.f(f"fk_{t}_clearing_period")
        ),
        sa.ForeignKeyConstraint(["result_key"], ["ids.key"], name=op.f(f"fk_{t}_result_key")),
        _pk(t, "id"),
        sa.UniqueConstraint("result_key", name=op.f(f"uq_{t}_result_key")),
        sa.UniqueConstraint("settlement_id", "status", name=op.f(f"uq_{t}_settlement_id_status")),
    ]


def _replace_check(table: str, name: str, condition: str) -> None:
    op.drop_constraint(op.f(f"ck_{table}_{name}"), table, type_="check")
    op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, condition)


def _ledger() -> None:
    results_indexes = [("clearing_period", "payer", "payee"), ("settled_day", "hospital_id")]
    if _sqlite():
        _rebuild_sqlite("ledger_accounts", _accounts_elements(), [])
        _rebuild_sqlite("ledger_postings", _postings_elements(), [])
        _rebuild_sqlite("ledger_balances", _balances_elements(), [])
        # The results before this revision carry no tiers: due = fund_pay.
        _rebuild_sqlite(
            "ledger_results", _results_elements(), results_indexes, {"due_fen": "fund_pay_fen"}
        )
        return
    t = "ledger_accounts"
    op.alter_column(t, "kind", type_=sa.String(16), existing_type=sa.String(8))
    _replace_check(t, "kind", ACCOUNT_KINDS)
    _replace_check(t, "fund_is_province", f"kind = 'hospital' OR ({_province('ref')})")
    for t in ("ledger_postings", "ledger_balances"):
        op.alter_column(t, "leg", type_=sa.String(16), existing_type=sa.String(8))
        _replace_check(t, "leg", LEGS)
    t = "ledger_results"
    for column in _tier_columns():
        if column.name == "due_fen":
            column.nullable = True
        op.add_column(t, column)
    # Results are append-only (a trigger); this one backfill of the new column is not a change.
    op.execute(f"ALTER TABLE {t} DISABLE TRIGGER {t}_append_only")
    op.execute(f"UPDATE {t} SET due_fen = fund_pay_fen")
    op.execute(f"ALTER TABLE {t} ENABLE TRIGGER {t}_append_only")
    op.alter_column(t, "due_fen", nullable=False, existing_type=sa.BigInteger())
    _replace_check(t, "personal", PERSONAL)
    _replace_check(t, "signs", SIGNS)
    op.create_check_constraint(op.f(f"ck_{t}_due"), t, DUE)
    op.create_check_constraint(op.f(f"ck_{t}_tiers"), t, TIERS)


def upgrade() -> None:
    _stream()
    _ledger()


def downgrade() -> None:
    raise NotImplementedError("0003 has no downgrade: restore a backup made before upgrading")

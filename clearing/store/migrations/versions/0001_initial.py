"""Initial ledger schema: tables, CHECKs, and the triggers no CHECK can express.

A frozen copy of the ledger's model as it was at this revision (later revisions change it by
their own steps); `tests/unit/store/test_migrations.py` keeps model and migrations equal.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AMOUNTS = (
    "total_fen",
    "self_pay_fen",
    "pre_self_pay_fen",
    "eligible_fen",
    "deductible_fen",
    "fund_pay_fen",
    "personal_pay_fen",
)
APPEND_ONLY = (
    "ledger_results",
    "ledger_postings",
    "ledger_prepayments",
    "ledger_alerts",
    "ledger_reconciliations",
)


def _recorded_at() -> sa.Column[Any]:
    return sa.Column(
        "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def _province(column: str) -> str:
    return f"length({column}) = 6 AND substr({column}, 3) = '0000'"


def _period(column: str) -> str:
    return (
        f"length({column}) = 7 AND substr({column}, 5, 1) = '-' "
        f"AND substr({column}, 6) BETWEEN '01' AND '12'"
    )


def _ck(table: str, name: str, condition: str) -> sa.CheckConstraint:
    # op.f: the name is final; the model's naming convention must not prefix it again.
    return sa.CheckConstraint(condition, name=op.f(f"ck_{table}_{name}"))


def upgrade() -> None:
    t = "ledger_accounts"
    op.create_table(
        t,
        sa.Column("account_id", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        _recorded_at(),
        _ck(t, "kind", "kind IN ('fund', 'hospital')"),
        _ck(t, "id_is_kind_ref", "account_id = kind || ':' || ref"),
        _ck(t, "fund_is_province", f"kind <> 'fund' OR ({_province('ref')})"),
        sa.PrimaryKeyConstraint("account_id", name=f"pk_{t}"),
    )

    t = "ledger_periods"
    op.create_table(
        t,
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("state", sa.String(8), server_default="open", nullable=False),
        sa.Column(
            "opened_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("issued_at", sa.DateTime(timezone=True)),
        sa.Column("statement", sa.Text()),
        sa.Column("statement_sha256", sa.String(64)),
        _ck(t, "period_format", _period("period")),
        _ck(
            t,
            "lifecycle",
            "(state = 'open' AND closed_at IS NULL AND issued_at IS NULL AND statement IS NULL"
            " AND statement_sha256 IS NULL)"
            " OR (state = 'closed' AND closed_at IS NOT NULL AND issued_at IS NULL"
            " AND statement IS NULL AND statement_sha256 IS NULL)"
            " OR (state = 'issued' AND closed_at IS NOT NULL AND issued_at IS NOT NULL"
            " AND statement IS NOT NULL AND statement_sha256 IS NOT NULL"
            " AND length(statement_sha256) = 64)",
        ),
        sa.PrimaryKeyConstraint("period", name=f"pk_{t}"),
    )

    t = "ledger_results"
    op.create_table(
        t,
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("result_key", sa.String(70), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
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
        _ck(t, "content_hash", "length(content_hash) = 64"),
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
        _ck(t, "personal", "personal_pay_fen = total_fen - fund_pay_fen"),
        _ck(
            t,
            "signs",
            "(status = 'priced' AND self_pay_fen >= 0 AND pre_self_pay_fen >= 0"
            " AND eligible_fen >= 0 AND deductible_fen >= 0 AND fund_pay_fen >= 0"
            " AND personal_pay_fen >= 0 AND deductible_fen <= eligible_fen"
            " AND fund_pay_fen <= eligible_fen - deductible_fen)"
            " OR (status = 'reversed' AND self_pay_fen <= 0 AND pre_self_pay_fen <= 0"
            " AND eligible_fen <= 0 AND deductible_fen <= 0 AND fund_pay_fen <= 0"
            " AND personal_pay_fen <= 0 AND deductible_fen >= eligible_fen"
            " AND fund_pay_fen >= eligible_fen - deductible_fen)",
        ),
        sa.ForeignKeyConstraint(["period"], ["ledger_periods.period"], name=f"fk_{t}_period"),
        sa.ForeignKeyConstraint(
            ["clearing_period"], ["ledger_periods.period"], name=f"fk_{t}_clearing_period"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
        sa.UniqueConstraint("result_key", name=f"uq_{t}_result_key"),
        sa.UniqueConstraint("settlement_id", "status", name=f"uq_{t}_settlement_id_status"),
    )
    op.create_index(f"ix_{t}_clearing_period_payer_payee", t, ["clearing_period", "payer", "payee"])
    op.create_index(f"ix_{t}_settled_day_hospital_id", t, ["settled_day", "hospital_id"])

    t = "ledger_postings"
    op.create_table(
        t,
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("result_key", sa.String(70), nullable=False),
        sa.Column("leg", sa.String(8), nullable=False),
        sa.Column("debit_account", sa.String(80), nullable=False),
        sa.Column("credit_account", sa.String(80), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        _recorded_at(),
        _ck(t, "leg", "leg IN ('fund', 'hospital')"),
        _ck(t, "amount_positive", "amount_fen > 0"),
        _ck(t, "two_accounts", "debit_account <> credit_account"),
        sa.ForeignKeyConstraint(
            ["result_key"], ["ledger_results.result_key"], name=f"fk_{t}_result_key"
        ),
        sa.ForeignKeyConstraint(
            ["debit_account"], ["ledger_accounts.account_id"], name=f"fk_{t}_debit_account"
        ),
        sa.ForeignKeyConstraint(
            ["credit_account"], ["ledger_accounts.account_id"], name=f"fk_{t}_credit_account"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
        sa.UniqueConstraint("result_key", "leg", name=f"uq_{t}_result_key_leg"),
    )

    t = "ledger_balances"
    op.create_table(
        t,
        sa.Column("clearing_period", sa.String(7), nullable=False),
        sa.Column("account_id", sa.String(80), nullable=False),
        sa.Column("leg", sa.String(8), nullable=False),
        sa.Column("debits_fen", sa.BigInteger(), nullable=False),
        sa.Column("credits_fen", sa.BigInteger(), nullable=False),
        _ck(t, "leg", "leg IN ('fund', 'hospital')"),
        _ck(t, "non_negative", "debits_fen >= 0 AND credits_fen >= 0"),
        sa.ForeignKeyConstraint(
            ["clearing_period"], ["ledger_periods.period"], name=f"fk_{t}_clearing_period"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["ledger_accounts.account_id"], name=f"fk_{t}_account_id"
        ),
        sa.PrimaryKeyConstraint("clearing_period", "account_id", "leg", name=f"pk_{t}"),
    )

    t = "ledger_prepayments"
    op.create_table(
        t,
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("province", sa.String(6), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.String(200)),
        _recorded_at(),
        _ck(t, "province", _province("province")),
        _ck(t, "amount_positive", "amount_fen > 0"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
    )
    op.create_index(f"ix_{t}_province", t, ["province"])

    t = "ledger_config"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("alert_share_bp", sa.Integer(), nullable=False),
        _ck(t, "single_row", "id = 1"),
        _ck(t, "alert_share", "alert_share_bp BETWEEN 1 AND 10000"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
    )
    op.execute("INSERT INTO ledger_config (id, alert_share_bp) VALUES (1, 7000)")

    t = "ledger_alerts"
    op.create_table(
        t,
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("province", sa.String(6), nullable=False),
        sa.Column("result_key", sa.String(70), nullable=False),
        sa.Column("net_debit_fen", sa.BigInteger(), nullable=False),
        sa.Column("prepayment_fen", sa.BigInteger(), nullable=False),
        sa.Column("alert_share_bp", sa.Integer(), nullable=False),
        sa.Column("open_periods", sa.Text(), nullable=False),
        _recorded_at(),
        _ck(t, "province", _province("province")),
        _ck(t, "amounts", "net_debit_fen > 0 AND prepayment_fen >= 0"),
        _ck(t, "passes_share", "net_debit_fen * 10000 > alert_share_bp * prepayment_fen"),
        sa.ForeignKeyConstraint(
            ["result_key"], ["ledger_results.result_key"], name=f"fk_{t}_result_key"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
        sa.UniqueConstraint("result_key", "province", name=f"uq_{t}_result_key_province"),
    )

    t = "ledger_reconciliations"
    op.create_table(
        t,
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("province", sa.String(6), nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("statement_sha256", sa.String(64), nullable=False),
        sa.Column("payer", sa.String(6)),
        sa.Column("payee", sa.String(6)),
        sa.Column("digest", sa.String(64)),
        sa.Column("fund_pay_fen", sa.BigInteger()),
        sa.Column("lines_given", sa.Integer()),
        sa.Column("answer", sa.Text(), nullable=False),
        _recorded_at(),
        _ck(t, "province", _province("province")),
        _ck(
            t,
            "action",
            "(action = 'confirm' AND payer IS NULL AND payee IS NULL AND digest IS NULL"
            " AND fund_pay_fen IS NULL AND lines_given IS NULL)"
            " OR (action = 'dispute' AND payer IS NOT NULL AND payee IS NOT NULL"
            " AND digest IS NOT NULL AND fund_pay_fen IS NOT NULL"
            " AND (province = payer OR province = payee))",
        ),
        sa.ForeignKeyConstraint(["period"], ["ledger_periods.period"], name=f"fk_{t}_period"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{t}"),
    )
    op.create_index(f"ix_{t}_period_province", t, ["period", "province"])

    for statement in TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in (*APPEND_ONLY, "ledger_periods", "ledger_balances"):
            op.execute(f"DROP TABLE {table} CASCADE")
        for function in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}()")
    else:
        for table in (*reversed(APPEND_ONLY), "ledger_balances", "ledger_periods"):
            op.drop_table(table)
    op.drop_table("ledger_config")
    op.drop_table("ledger_accounts")


_OPEN = "(SELECT state FROM ledger_periods WHERE period = NEW.clearing_period) IS NOT 'open'"
_OPEN_OF_RESULT = (
    "(SELECT p.state FROM ledger_results r JOIN ledger_periods p ON p.period = r.clearing_period"
    " WHERE r.result_key = NEW.result_key) IS NOT 'open'"
)
_PERIOD_MOVE = (
    "NOT (NEW.period = OLD.period AND ((OLD.state = 'open' AND NEW.state = 'closed')"
    " OR (OLD.state = 'closed' AND NEW.state = 'issued')))"
)


def _sqlite_refuse(name: str, when: str, table: str, condition: str | None, message: str) -> str:
    guard = f" WHEN {condition}" if condition else ""
    return (
        f"CREATE TRIGGER {name} BEFORE {when} ON {table} FOR EACH ROW{guard}"
        f" BEGIN SELECT RAISE(ABORT, 'ledger: {message}'); END"
    )


SQLITE_TRIGGERS = [
    _sqlite_refuse(
        "ledger_results_open_period",
        "INSERT",
        "ledger_results",
        _OPEN,
        "results may only be cleared in an open period",
    ),
    _sqlite_refuse(
        "ledger_postings_open_period",
        "INSERT",
        "ledger_postings",
        _OPEN_OF_RESULT,
        "postings may only be made while their period is open",
    ),
    _sqlite_refuse(
        "ledger_balances_open_period_i",
        "INSERT",
        "ledger_balances",
        _OPEN,
        "balances may only change while their period is open",
    ),
    _sqlite_refuse(
        "ledger_balances_open_period_u",
        "UPDATE",
        "ledger_balances",
        _OPEN,
        "balances may only change while their period is open",
    ),
    _sqlite_refuse(
        "ledger_periods_lifecycle",
        "UPDATE",
        "ledger_periods",
        _PERIOD_MOVE,
        "a period only moves open -> closed -> issued; an issued one never changes",
    ),
    _sqlite_refuse(
        "ledger_periods_kept", "DELETE", "ledger_periods", None, "periods are never deleted"
    ),
    *(
        _sqlite_refuse(
            f"{table}_append_only_{op_[0].lower()}", op_, table, None, f"{table} is append-only"
        )
        for table in APPEND_ONLY
        for op_ in ("UPDATE", "DELETE")
    ),
]

PG_FUNCTIONS = (
    "ledger_refuse",
    "ledger_require_open_period",
    "ledger_require_open_period_of_result",
    "ledger_period_lifecycle",
)

# Statement-level checks over the transition table: one query per INSERT statement, not per
# row. Each takes a share lock on the period rows, so a concurrent close (which locks them
# FOR UPDATE) is ordered before or after the whole write, never in between.
PG_TRIGGERS = [
    """
    CREATE FUNCTION ledger_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'ledger: %', TG_ARGV[0] USING ERRCODE = 'check_violation';
    END $$
    """,
    """
    CREATE FUNCTION ledger_require_open_period() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad text;
    BEGIN
        PERFORM 1 FROM ledger_periods
            WHERE period IN (SELECT clearing_period FROM new_rows) FOR SHARE;
        SELECT n.clearing_period INTO bad FROM new_rows n
            LEFT JOIN ledger_periods p ON p.period = n.clearing_period
            WHERE p.state IS DISTINCT FROM 'open' LIMIT 1;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'ledger: % may only change while period % is open', TG_TABLE_NAME, bad
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION ledger_require_open_period_of_result() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad text;
    BEGIN
        PERFORM 1 FROM ledger_periods WHERE period IN (
            SELECT r.clearing_period FROM new_rows n
                JOIN ledger_results r ON r.result_key = n.result_key
        ) FOR SHARE;
        SELECT r.clearing_period INTO bad FROM new_rows n
            JOIN ledger_results r ON r.result_key = n.result_key
            LEFT JOIN ledger_periods p ON p.period = r.clearing_period
            WHERE p.state IS DISTINCT FROM 'open' LIMIT 1;
        IF bad IS NOT NULL THEN
            RAISE EXCEPTION 'ledger: postings may only be made while period % is open', bad
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION ledger_period_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.period = OLD.period AND ((OLD.state = 'open' AND NEW.state = 'closed')
                OR (OLD.state = 'closed' AND NEW.state = 'issued')) THEN
            RETURN NEW;
        END IF;
        RAISE EXCEPTION 'ledger: period % cannot go from % to % (open -> closed -> issued only)',
            OLD.period, OLD.state, NEW.state USING ERRCODE = 'check_violation';
    END $$
    """,
    "CREATE TRIGGER ledger_results_open_period AFTER INSERT ON ledger_results"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION ledger_require_open_period()",
    "CREATE TRIGGER ledger_postings_open_period AFTER INSERT ON ledger_postings"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION ledger_require_open_period_of_result()",
    "CREATE TRIGGER ledger_balances_open_period_i AFTER INSERT ON ledger_balances"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION ledger_require_open_period()",
    "CREATE TRIGGER ledger_balances_open_period_u AFTER UPDATE ON ledger_balances"
    " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT"
    " EXECUTE FUNCTION ledger_require_open_period()",
    "CREATE TRIGGER ledger_periods_lifecycle BEFORE UPDATE ON ledger_periods"
    " FOR EACH ROW EXECUTE FUNCTION ledger_period_lifecycle()",
    "CREATE TRIGGER ledger_periods_kept BEFORE DELETE OR TRUNCATE ON ledger_periods"
    " FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse('periods are never deleted')",
    *(
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}"
        f" FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse('{table} is append-only')"
        for table in APPEND_ONLY
    ),
]

TRIGGERS = {"sqlite": SQLITE_TRIGGERS, "postgresql": PG_TRIGGERS}

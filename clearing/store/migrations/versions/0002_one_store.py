"""One store: every table under Alembic; one `ids` table; one `credentials` table.

Until this revision only the ledger's tables were migrated; the stream, the API and the
dashboard made theirs with `create_all` when they started (so a database at 0001 may have any of
them, in the shape they had then, or none). This revision:

- creates the stream's tables (`stream_results`, `stream_filings`, `stream_accumulators`,
  `stream_priced`) and `dashboard_operator_actions`, or brings the existing ones to the model:
  named primary keys, CHECKs on status words and kinds, accumulators never negative, filings
  referencing their result;
- creates `ids`, one row per settlement or reversal id, from `stream_ids` (the stream's takes),
  `api_submissions` (the API's claims) and the keys of `ledger_results`; drops the two old
  tables;
- drops `ledger_results.content_hash` (a result's content is its row) and makes
  `ledger_results.result_key` reference `ids.key`;
- creates `credentials` (hospital, operator or viewer; a token's SHA-256) from
  `hospital_credentials` and `dashboard_operators`, which it drops: existing tokens keep working.

SQLite changes constraints only by copying a table: such a table is rebuilt (a new table of the
final shape, its rows copied, the old one dropped, the new one renamed), with the triggers that
name it saved and recreated. `clearing.store.db.upgrade` runs this with foreign keys off and
checks them all before the commit. PostgreSQL alters the tables in place.

A frozen copy of the model at this revision; no downgrade (restore a backup instead).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.schema import SchemaItem

revision = "0002"
down_revision = "0001"
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
RESULT_STATUSES = "'invalid', 'filed', 'duplicate', 'rejected', 'priced', 'reversed'"
KINDS = "'inpatient', 'outpatient', 'chronic'"

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


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


# ---------------------------------------------------------------------------------------------
# The tables this revision creates or reshapes: (name, columns and constraints, checks,
# foreign keys, indexes). The constraints name their final table whatever table they are
# built on (SQLite builds a table under a temporary name first).

CHECKS: dict[str, list[tuple[str, str]]] = {
    "stream_results": [("status", f"status IN ({RESULT_STATUSES})")],
    "stream_filings": [],
    "stream_accumulators": [
        ("kind", f"kind IN ({KINDS})"),
        ("non_negative", "fund_paid >= 0 AND deductible_used >= 0"),
    ],
    "stream_priced": [("kind", f"kind IN ({KINDS})")],
    "dashboard_operator_actions": [
        ("action", "action IN ('close', 'issue')"),
        ("period_format", _period("period")),
    ],
}
FOREIGN_KEYS: dict[str, list[tuple[str, str, str]]] = {
    "stream_filings": [("source", "stream_results", "source")],
}
INDEXES: dict[str, list[tuple[str, ...]]] = {
    "stream_filings": [("person_id",)],
    "ledger_results": [("clearing_period", "payer", "payee"), ("settled_day", "hospital_id")],
}


def _columns(table: str) -> list[sa.Column[Any]]:
    """New column objects every call: a column belongs to one table."""
    binary = sa.LargeBinary
    if table == "stream_results":
        return [
            sa.Column("source", sa.String(300), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
            sa.Column("message", binary(), nullable=False),
        ]
    if table == "stream_filings":
        return [
            sa.Column("source", sa.String(300), nullable=False),
            sa.Column("person_id", sa.String(64), nullable=False),
            sa.Column("filing", binary(), nullable=False),
        ]
    if table == "stream_accumulators":
        return [
            sa.Column("person_id", sa.String(64), nullable=False),
            sa.Column("year", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("fund_paid", sa.BigInteger(), nullable=False),
            sa.Column("deductible_used", sa.BigInteger(), nullable=False),
        ]
    if table == "stream_priced":
        return [
            sa.Column("settlement_id", sa.String(64), nullable=False),
            sa.Column("person_id", sa.String(64), nullable=False),
            sa.Column("year", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("result", binary(), nullable=False),
            sa.Column("reversed", sa.Boolean(), nullable=False),
        ]
    assert table == "dashboard_operator_actions", table
    return [
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("outcome", sa.String(500), nullable=False),
    ]


PRIMARY_KEYS = {
    "stream_results": ("source",),
    "stream_filings": ("source",),
    "stream_accumulators": ("person_id", "year", "kind"),
    "stream_priced": ("settlement_id",),
    "dashboard_operator_actions": ("id",),
}


def _elements(table: str) -> list[SchemaItem]:
    return [
        *_columns(table),
        _pk(table, *PRIMARY_KEYS[table]),
        *(_ck(table, name, condition) for name, condition in CHECKS[table]),
        *(
            sa.ForeignKeyConstraint(
                [column], [f"{target}.{target_column}"], name=op.f(f"fk_{table}_{column}")
            )
            for column, target, target_column in FOREIGN_KEYS.get(table, [])
        ),
    ]


def _ids_elements() -> list[SchemaItem]:
    t = "ids"
    return [
        sa.Column("key", sa.String(70), nullable=False),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("source", sa.String(300)),
        sa.Column("hospital_id", sa.String(64)),
        sa.Column("claimed_ms", sa.BigInteger()),
        sa.Column("claim_hash", sa.String(64)),
        sa.Column("claim_source", sa.String(300)),
        _ck(t, "key", "substr(\"key\", 1, 2) IN ('S:', 'R:') AND length(\"key\") BETWEEN 3 AND 66"),
        _ck(
            t,
            "taken",
            "(content_hash IS NULL AND source IS NULL)"
            " OR (content_hash IS NOT NULL AND source IS NOT NULL AND length(content_hash) = 64)",
        ),
        _ck(
            t,
            "claim",
            "(hospital_id IS NULL AND claimed_ms IS NULL AND claim_hash IS NULL"
            " AND claim_source IS NULL)"
            " OR (hospital_id IS NOT NULL AND claimed_ms IS NOT NULL AND claim_hash IS NOT NULL"
            " AND length(claim_hash) = 64)",
        ),
        sa.ForeignKeyConstraint(["source"], ["stream_results.source"], name=op.f("fk_ids_source")),
        _pk(t, "key"),
        sa.UniqueConstraint("source", name=op.f("uq_ids_source")),
    ]


def _credentials_elements() -> list[SchemaItem]:
    t = "credentials"
    return [
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _ck(t, "kind", "kind IN ('hospital', 'operator', 'viewer')"),
        _ck(t, "id_length", "length(id) BETWEEN 1 AND 64"),
        _ck(t, "token_hash", "length(token_hash) = 64"),
        _pk(t, "kind", "id"),
        sa.UniqueConstraint("token_hash", name=op.f("uq_credentials_token_hash")),
    ]


def _ledger_results_elements() -> list[SchemaItem]:
    """`ledger_results` of revision 0001 without `content_hash`, its key referencing `ids`."""
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
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
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
        sa.ForeignKeyConstraint(["period"], ["ledger_periods.period"], name=op.f(f"fk_{t}_period")),
        sa.ForeignKeyConstraint(
            ["clearing_period"], ["ledger_periods.period"], name=op.f(f"fk_{t}_clearing_period")
        ),
        sa.ForeignKeyConstraint(["result_key"], ["ids.key"], name=op.f(f"fk_{t}_result_key")),
        _pk(t, "id"),
        sa.UniqueConstraint("result_key", name=op.f(f"uq_{t}_result_key")),
        sa.UniqueConstraint("settlement_id", "status", name=op.f(f"uq_{t}_settlement_id_status")),
    ]


# ---------------------------------------------------------------------------------------------
# Helpers


def _tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names())


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _create_indexes(table: str) -> None:
    for columns in INDEXES.get(table, []):
        op.create_index(op.f(f"ix_{table}_{'_'.join(columns)}"), table, list(columns))


def _rebuild_sqlite(table: str, elements: list[SchemaItem], columns: list[str]) -> None:
    """SQLite: `table` rebuilt with `elements`, keeping `columns` of every row, its triggers and
    those of other tables that name it."""
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
    temporary = f"{table}__0002"
    op.create_table(temporary, *elements)
    listed = ", ".join(columns)
    op.execute(f"INSERT INTO {temporary} ({listed}) SELECT {listed} FROM {table}")
    op.drop_table(table)
    op.rename_table(temporary, table)
    _create_indexes(table)
    for _name, sql in triggers:
        op.execute(sql)


def _reshape(table: str, existing: set[str]) -> None:
    """Creates `table` in its final shape, or brings the `create_all` one to it."""
    if table not in existing:
        op.create_table(table, *_elements(table))
        _create_indexes(table)
        return
    if _sqlite():
        columns = [c.name for c in _columns(table)]
        _rebuild_sqlite(table, _elements(table), columns)
        return
    inspector = sa.inspect(op.get_bind())
    primary = inspector.get_pk_constraint(table).get("name")
    if primary and primary != f"pk_{table}":
        op.execute(f'ALTER TABLE {table} RENAME CONSTRAINT "{primary}" TO pk_{table}')
    for name, condition in CHECKS[table]:
        op.create_check_constraint(op.f(f"ck_{table}_{name}"), table, condition)
    for column, target, target_column in FOREIGN_KEYS.get(table, []):
        op.create_foreign_key(
            op.f(f"fk_{table}_{column}"), table, target, [column], [target_column]
        )
    present = {index["name"] for index in inspector.get_indexes(table)}
    for indexed in INDEXES.get(table, []):
        name = f"ix_{table}_{'_'.join(indexed)}"
        if name not in present:
            op.create_index(op.f(name), table, list(indexed))


# ---------------------------------------------------------------------------------------------


def upgrade() -> None:
    existing = _tables()
    for table in ("stream_results", "stream_filings", "stream_accumulators", "stream_priced"):
        _reshape(table, existing)

    op.create_table("ids", *_ids_elements())
    if "stream_ids" in existing:
        op.execute(
            'INSERT INTO ids ("key", content_hash, source)'
            ' SELECT "key", fingerprint, source FROM stream_ids'
        )
    if "api_submissions" in existing:
        claim = {
            "hospital_id": "hospital_id",
            "claimed_ms": "submitted_ms",
            "claim_hash": "fingerprint",
            "claim_source": "source",
        }
        op.execute(
            "UPDATE ids SET "
            + ", ".join(
                f'{column} = (SELECT s.{old} FROM api_submissions s WHERE s."key" = ids."key")'
                for column, old in claim.items()
            )
            + ' WHERE "key" IN (SELECT "key" FROM api_submissions)'
        )
        op.execute(
            f'INSERT INTO ids ("key", {", ".join(claim)})'
            f' SELECT "key", {", ".join(claim.values())} FROM api_submissions'
            ' WHERE "key" NOT IN (SELECT "key" FROM ids)'
        )
    op.execute(
        'INSERT INTO ids ("key") SELECT result_key FROM ledger_results'
        ' WHERE result_key NOT IN (SELECT "key" FROM ids)'
    )
    for old in ("stream_ids", "api_submissions"):
        if old in existing:
            op.drop_table(old)

    t = "ledger_results"
    if _sqlite():
        elements = _ledger_results_elements()
        columns = [e.name for e in elements if isinstance(e, sa.Column)]
        _rebuild_sqlite(t, elements, columns)
    else:
        op.drop_constraint(op.f(f"ck_{t}_content_hash"), t, type_="check")
        op.drop_column(t, "content_hash")
        op.create_foreign_key(op.f(f"fk_{t}_result_key"), t, "ids", ["result_key"], ["key"])

    op.create_table("credentials", *_credentials_elements())
    for old, kind, column in (
        ("hospital_credentials", "hospital", "hospital_id"),
        ("dashboard_operators", "operator", "name"),
    ):
        if old in existing:
            op.execute(
                "INSERT INTO credentials (kind, id, token_hash, created_at)"
                f" SELECT '{kind}', {column}, token_hash, created_at FROM {old}"
            )
            op.drop_table(old)

    _reshape("dashboard_operator_actions", existing)


def downgrade() -> None:
    raise NotImplementedError("0002 has no downgrade: restore a backup made before upgrading")

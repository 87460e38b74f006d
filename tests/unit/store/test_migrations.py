"""The store's migrations, on SQLite and on PostgreSQL.

- A fresh database (migrated from nothing to head) and one upgraded from revision 0001 (made the
  way deployments made it: the ledger migrated to 0001, the stream's, the API's and the
  dashboard's tables made by `create_all`, all with rows) are the same schema, and the upgrade
  carries the rows over: ids, claims, tokens, results.
- The model (`clearing.store.schema`) and the migrated database agree.
- The database refuses what the invariants forbid, past the Python code.
- Workers opening a fresh database together migrate it once.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    insert,
    inspect,
    make_url,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError
from support.ledger import priced

from clearing import auth
from clearing.core.keys import fingerprint
from clearing.ledger.errors import LedgerConflict
from clearing.ledger.store import Ledger
from clearing.store import db, schema

# ---------------------------------------------------------------------------------------------
# The tables as `create_all` made them before revision 0002 (frozen here: no code has them now)

OLD = MetaData()
Table(
    "stream_results",
    OLD,
    Column("source", String(300), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("message", LargeBinary, nullable=False),
)
Table(
    "stream_ids",
    OLD,
    Column("key", String(70), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("source", String(300), nullable=False),
)
Table(
    "stream_filings",
    OLD,
    Column("source", String(300), primary_key=True),
    Column("person_id", String(64), nullable=False, index=True),
    Column("filing", LargeBinary, nullable=False),
)
Table(
    "stream_accumulators",
    OLD,
    Column("person_id", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("fund_paid", BigInteger, nullable=False),
    Column("deductible_used", BigInteger, nullable=False),
)
Table(
    "stream_priced",
    OLD,
    Column("settlement_id", String(64), primary_key=True),
    Column("person_id", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("result", LargeBinary, nullable=False),
    Column("reversed", Boolean, nullable=False),
)
Table(
    "hospital_credentials",
    OLD,
    Column("hospital_id", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Table(
    "api_submissions",
    OLD,
    Column("key", String(70), primary_key=True),
    Column("hospital_id", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("source", String(300), nullable=True),
    Column("submitted_ms", BigInteger, nullable=False),
)
Table(
    "dashboard_operators",
    OLD,
    Column("name", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Table(
    "dashboard_operator_actions",
    OLD,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("operator", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("period", String(7), nullable=False),
    Column("outcome", String(500), nullable=False),
)

S1 = priced("S1", fund=1_000, hospital_id="H1")
S1_EVENT = {"type": "settlement", "settlement_id": "S1", "hospital_id": "H1"}
S2_EVENT = {"type": "settlement", "settlement_id": "S2", "hospital_id": "H1"}
HOSPITAL_TOKEN = "hospital-token-of-H1"
OPERATOR_TOKEN = "operator-token-of-alice"
NOW = datetime(2026, 1, 20, 10, tzinfo=UTC)


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def make_old_database(url: str) -> None:
    """A database as deployed before revision 0002, with a priced settlement in every table."""
    assert db.upgrade(url, "0001") == "0001"
    engine = db.make_engine(url)
    try:
        OLD.create_all(engine)
        reflected = MetaData()
        reflected.reflect(engine)
        t = reflected.tables
        with engine.begin() as conn:
            conn.execute(
                insert(t["ledger_accounts"]),
                [
                    {"account_id": "fund:410000", "kind": "fund", "ref": "410000"},
                    {"account_id": "fund:110000", "kind": "fund", "ref": "110000"},
                    {"account_id": "hospital:H1", "kind": "hospital", "ref": "H1"},
                ],
            )
            conn.execute(insert(t["ledger_periods"]), [{"period": "2026-01"}])
            row = {k: v for k, v in S1.items() if k in t["ledger_results"].c}
            conn.execute(
                insert(t["ledger_results"]),
                [
                    {
                        **row,
                        "result_key": "S:S1",
                        "content_hash": fingerprint(S1),
                        "clearing_period": "2026-01",
                    }
                ],
            )
            conn.execute(
                insert(t["ledger_postings"]),
                [
                    {"result_key": "S:S1", "leg": "fund", "debit_account": "fund:410000",
                     "credit_account": "fund:110000", "amount_fen": 1_000},
                    {"result_key": "S:S1", "leg": "hospital", "debit_account": "fund:110000",
                     "credit_account": "hospital:H1", "amount_fen": 1_000},
                ],
            )  # fmt: skip
            conn.execute(
                insert(t["ledger_balances"]),
                [
                    {"clearing_period": "2026-01", "account_id": account, "leg": leg,
                     "debits_fen": debits, "credits_fen": credits}
                    for account, leg, debits, credits in (
                        ("fund:410000", "fund", 1_000, 0),
                        ("fund:110000", "fund", 0, 1_000),
                        ("fund:110000", "hospital", 1_000, 0),
                        ("hospital:H1", "hospital", 0, 1_000),
                    )
                ],
            )  # fmt: skip
            conn.execute(
                insert(t["stream_results"]),
                [
                    {"source": "t:0:0", "status": "filed", "message": b'{"status":"filed"}'},
                    {"source": "t:0:1", "status": "priced", "message": orjson.dumps(S1)},
                ],
            )
            conn.execute(
                insert(t["stream_filings"]),
                [{"source": "t:0:0", "person_id": "P1", "filing": b"{}"}],
            )
            conn.execute(
                insert(t["stream_ids"]),
                [{"key": "S:S1", "fingerprint": fingerprint(S1_EVENT), "source": "t:0:1"}],
            )
            conn.execute(
                insert(t["stream_accumulators"]),
                [{"person_id": "P1", "year": 2026, "kind": "outpatient", "fund_paid": 1_000,
                  "deductible_used": 100}],
            )  # fmt: skip
            conn.execute(
                insert(t["stream_priced"]),
                [{"settlement_id": "S1", "person_id": "P1", "year": 2026, "kind": "outpatient",
                  "result": orjson.dumps(S1), "reversed": False}],
            )  # fmt: skip
            conn.execute(
                insert(t["api_submissions"]),
                [
                    {"key": "S:S1", "hospital_id": "H1", "fingerprint": fingerprint(S1_EVENT),
                     "source": "t:0:1", "submitted_ms": 1_700_000_000_000},
                    {"key": "S:S2", "hospital_id": "H1", "fingerprint": fingerprint(S2_EVENT),
                     "source": None, "submitted_ms": 1_700_000_000_001},
                ],
            )  # fmt: skip
            conn.execute(
                insert(t["hospital_credentials"]),
                [{"hospital_id": "H1", "token_hash": _sha(HOSPITAL_TOKEN), "created_at": NOW}],
            )
            conn.execute(
                insert(t["dashboard_operators"]),
                [{"name": "alice", "token_hash": _sha(OPERATOR_TOKEN), "created_at": NOW}],
            )
            conn.execute(
                insert(t["dashboard_operator_actions"]),
                [{"at": NOW, "operator": "alice", "action": "close", "period": "2026-01",
                  "outcome": "period 2026-01 closed"}],
            )  # fmt: skip
    finally:
        engine.dispose()


def describe(engine: Engine) -> dict[str, Any]:
    """Everything reflection tells of the schema, comparable across two databases."""
    inspector = inspect(engine)
    tables: dict[str, Any] = {}
    for name in sorted(inspector.get_table_names()):
        pk = inspector.get_pk_constraint(name)
        tables[name] = {
            "columns": [
                (c["name"], repr(c["type"]), c["nullable"]) for c in inspector.get_columns(name)
            ],
            "primary_key": (pk.get("name"), tuple(pk["constrained_columns"])),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(name)
            ),
            "foreign_keys": sorted(
                (f["name"], tuple(f["constrained_columns"]), f["referred_table"],
                 tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(name)
            ),  # fmt: skip
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(name)
            ),
            "checks": sorted(
                (c["name"], " ".join(str(c["sqltext"]).split()))
                for c in inspector.get_check_constraints(name)
            ),
        }
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            triggers = conn.exec_driver_sql(
                "SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'trigger'"
            ).all()
        else:
            triggers = conn.execute(
                text(
                    "SELECT event_object_table, trigger_name, action_timing || ' '"
                    " || event_manipulation || ' ' || action_statement"
                    " FROM information_schema.triggers WHERE trigger_schema = current_schema()"
                )
            ).all()
    return {"tables": tables, "triggers": sorted(tuple(t) for t in triggers)}


@pytest.fixture
def other_url(db_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A second empty database of the same kind as `db_url`."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'other.sqlite'}"
    database = request.getfixturevalue("pg_test_database")
    schema_name = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(database)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    finally:
        engine.dispose()
    url = make_url(database).update_query_dict({"options": f"-csearch_path={schema_name}"})
    return url.render_as_string(hide_password=False)


# ---------------------------------------------------------------------------------------------


def test_fresh_and_upgraded_databases_are_the_same(db_url: str, other_url: str) -> None:
    make_old_database(db_url)
    assert db.upgrade(db_url) == db.head_revision()
    fresh = db.open_engine(other_url)
    upgraded = db.make_engine(db_url)
    try:
        assert db.current_revision(fresh) == db.current_revision(upgraded) == db.head_revision()
        seen, wanted = describe(upgraded), describe(fresh)
        assert seen["tables"].keys() == wanted["tables"].keys()
        for name, shape in wanted["tables"].items():
            assert seen["tables"][name] == shape, name
        assert seen["triggers"] == wanted["triggers"]
        assert "stream_ids" not in seen["tables"] and "hospital_credentials" not in seen["tables"]
    finally:
        fresh.dispose()
        upgraded.dispose()


def test_the_upgrade_carries_every_row_over(db_url: str) -> None:
    make_old_database(db_url)
    engine = db.open_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = {r.key: r for r in conn.execute(select(schema.ids))}
        assert sorted(rows) == ["S:S1", "S:S2"]
        taken = rows["S:S1"]  # taken by the stream, claimed through the API
        assert (taken.content_hash, taken.source) == (fingerprint(S1_EVENT), "t:0:1")
        assert (taken.hospital_id, taken.claim_hash, taken.claim_source) == (
            "H1",
            fingerprint(S1_EVENT),
            "t:0:1",
        )
        with engine.connect() as conn:  # priced before the tiers: it counted no burden
            counted = conn.execute(
                select(schema.stream_priced.c.settlement_id, schema.stream_priced.c.counted_fen)
            ).all()
        assert [tuple(r) for r in counted] == [("S1", 0)]
        with engine.connect() as conn:  # recorded before the tiers: due = fund pay
            old = conn.execute(select(schema.results)).one()
        assert (old.due_fen, old.critical_pay_fen, old.assistance_pay_fen) == (1_000, 0, 0)
        assert not old.has_tiers
        claimed = rows["S:S2"]  # claimed, never published: no take
        assert (claimed.content_hash, claimed.source, claimed.claim_source) == (None, None, None)
        assert (claimed.hospital_id, claimed.claimed_ms) == ("H1", 1_700_000_000_001)

        assert auth.authenticate(engine, HOSPITAL_TOKEN) == auth.Principal("hospital", "H1")
        assert auth.authenticate(engine, OPERATOR_TOKEN) == auth.Principal("operator", "alice")
        with engine.connect() as conn:
            assert conn.execute(select(schema.operator_actions.c.outcome)).scalars().all() == [
                "period 2026-01 closed"
            ]
    finally:
        engine.dispose()
    with Ledger(db_url) as ledger:
        assert [o.action for o in ledger.record_results([S1])] == ["replayed"]
        with pytest.raises(LedgerConflict):
            ledger.record_results([priced("S1", fund=999, hospital_id="H1")])
        info, closed = ledger.close_period("2026-01", force=True)  # the totals still agree
        assert closed and info.results == 1
        assert ledger.issue_period("2026-01").statement["net_positions"] == {
            "110000": 1_000,
            "410000": -1_000,
        }


def test_the_model_and_the_migrated_database_agree(db_url: str) -> None:
    engine = db.open_engine(db_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": db.VERSION_TABLE, "compare_type": True}
            )
            assert compare_metadata(context, schema.metadata) == []
            assert context.get_current_revision() == db.head_revision()
        # Autogenerate does not compare CHECK constraints: compare them by name.
        inspector = inspect(engine)
        assert set(inspector.get_table_names()) - {db.VERSION_TABLE} == set(
            schema.metadata.tables
        )
        for table in schema.metadata.sorted_tables:
            built = {c["name"] for c in inspector.get_check_constraints(table.name)}
            modelled = {c.name for c in table.constraints if isinstance(c, CheckConstraint)}
            assert built == modelled, table.name
    finally:
        engine.dispose()


def _refused(engine: Engine, table: Table, row: dict[str, Any], constraint: str) -> None:
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        conn.execute(insert(table), [row])
    assert constraint in str(caught.value.orig).lower()


def test_a_negative_accumulator_is_refused_by_the_database(db_url: str) -> None:
    engine = db.open_engine(db_url)
    try:
        good = {"person_id": "P1", "year": 2026, "kind": "inpatient", "fund_paid": 0,
                "deductible_used": 0}  # fmt: skip
        for column in ("fund_paid", "deductible_used"):
            _refused(
                engine,
                schema.stream_accumulators,
                {**good, column: -1},
                "ck_stream_accumulators_non_negative",
            )
        with engine.begin() as conn:
            conn.execute(insert(schema.stream_accumulators), [good])
    finally:
        engine.dispose()


def test_the_database_holds_the_other_invariants(db_url: str) -> None:
    engine = db.open_engine(db_url)
    fp = "0" * 64
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(schema.stream_results),
                [{"source": "t:0:0", "status": "priced", "message": b"{}"}],
            )
        cases = [
            (schema.stream_results, {"source": "t:0:1", "status": "lost", "message": b"{}"},
             "ck_stream_results_status"),
            (schema.stream_accumulators, {"person_id": "P", "year": 2026, "kind": "dental",
             "fund_paid": 0, "deductible_used": 0}, "ck_stream_accumulators_kind"),
            (schema.ids, {"key": "X:1"}, "ck_ids_key"),
            (schema.ids, {"key": "S:1", "content_hash": fp}, "ck_ids_taken"),
            (schema.ids, {"key": "S:1", "hospital_id": "H1"}, "ck_ids_claim"),
            (schema.credentials, {"kind": "admin", "id": "root", "token_hash": fp,
             "created_at": NOW}, "ck_credentials_kind"),
            (schema.operator_actions, {"at": NOW, "operator": "alice", "action": "reopen",
             "period": "2026-01", "outcome": ""}, "ck_dashboard_operator_actions_action"),
        ]  # fmt: skip
        for table, row, constraint in cases:
            _refused(engine, table, row, constraint)
        # A take names a stored result; one event takes one id.
        _refused(engine, schema.ids, {"key": "S:1", "content_hash": fp, "source": "t:9:9"},
                 "foreign key")  # fmt: skip
        with engine.begin() as conn:
            taken = {"key": "S:1", "content_hash": fp, "source": "t:0:0"}
            conn.execute(insert(schema.ids), [taken])
        _refused(engine, schema.ids, {"key": "S:2", "content_hash": fp, "source": "t:0:0"},
                 "source")  # fmt: skip
    finally:
        engine.dispose()


def test_workers_opening_a_fresh_database_together_migrate_it_once(db_url: str) -> None:
    """Today's race on `create_all` (`table ... already exists`) cannot happen: the migrations
    run under one lock, and whoever comes second finds the schema at its newest revision."""
    workers = 4
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            barrier.wait(timeout=30)
            engine = db.open_engine(db_url)
            engine.dispose()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    engine = db.make_engine(db_url)
    try:
        assert db.current_revision(engine) == db.head_revision()
    finally:
        engine.dispose()

"""The application's database role on PostgreSQL: it reads and writes rows and nothing more.

The owner role migrates a fresh schema and grants the application role its rights
(`clearing.store.db.APP_RIGHTS`); connected as the application role, the ledger records results
and closes periods, and every attempt to change the schema or an append-only row is refused by
the database (insufficient privilege, or ownership), not by the Python code.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError
from support.ledger import sample_results

from clearing.ledger.store import Ledger
from clearing.store import db

pytestmark = pytest.mark.postgres


def in_schema(url: str, schema: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    parsed = parsed.update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)


@pytest.fixture
def roles(pg_test_database: str, pg_app_role_url: str) -> Iterator[tuple[str, str]]:
    """(owner URL, application URL) on a fresh schema the owner migrated."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    owner = create_engine(pg_test_database)
    with owner.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    owner_url = in_schema(pg_test_database, schema)
    app_url = in_schema(pg_app_role_url, schema, make_url(pg_test_database).database)
    assert make_url(app_url).username != make_url(owner_url).username
    db.upgrade(owner_url, grant_to=make_url(app_url).username)
    try:
        yield owner_url, app_url
    finally:
        with owner.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        owner.dispose()


REFUSED = [
    "DROP TRIGGER ledger_postings_append_only ON ledger_postings",
    "ALTER TABLE ledger_postings DISABLE TRIGGER ledger_postings_append_only",
    "ALTER TABLE ledger_postings DISABLE TRIGGER ALL",
    "DROP TABLE ledger_postings",
    "DROP FUNCTION ledger_refuse()",
    "UPDATE ledger_postings SET amount_fen = amount_fen + 1",
    "DELETE FROM ledger_postings",
    "TRUNCATE ledger_postings",
    "UPDATE ledger_results SET fund_pay_fen = 0",
    "DELETE FROM ledger_periods",
    "UPDATE ledger_alembic_version SET version_num = '0001'",
    "CREATE TABLE intruder (x int)",
]


@pytest.mark.parametrize("statement", REFUSED)
def test_the_application_role_cannot_change_schema_or_history(roles, statement):
    owner_url, app_url = roles
    with Ledger(owner_url) as ledger:
        ledger.record_results(sample_results())
    engine = create_engine(db.normalize_url(app_url))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM ledger_postings")).scalar_one() > 0
            with pytest.raises(ProgrammingError) as refused:
                conn.execute(text(statement))
            conn.rollback()
        assert getattr(refused.value.orig, "sqlstate", None) in {"42501"}, refused.value
        with engine.connect() as conn:  # still there, still guarded
            triggers = conn.execute(
                text(
                    "SELECT tgenabled FROM pg_trigger"
                    " WHERE tgname = 'ledger_postings_append_only'"
                    " AND tgrelid = 'ledger_postings'::regclass"
                )
            ).scalars()
            assert list(triggers) == ["O"]
    finally:
        engine.dispose()


def test_the_application_role_runs_the_ledger(roles):
    """Everything the ledger does in a month, as the application role: record, close, issue."""
    _, app_url = roles
    with Ledger(app_url) as ledger:
        outcomes = ledger.record_results(sample_results())
        assert outcomes
        ledger.close_period("2026-01", force=True)
        assert ledger.issue_period("2026-01") is not None


def test_workers_migrate_as_the_owner(roles, pg_test_database, monkeypatch):
    """With CLEARING_DB_OWNER_URL set, opening CLEARING_DB_URL's fresh database as the
    application role migrates it as the owner (the application role could not) and grants."""
    owner_url, app_url = roles
    schema = f"t_{uuid.uuid4().hex[:12]}"
    owner = create_engine(pg_test_database)
    with owner.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        fresh_owner = in_schema(owner_url, schema)
        fresh_app = in_schema(app_url, schema)
        monkeypatch.setenv("CLEARING_DB_URL", fresh_app)
        monkeypatch.setenv("CLEARING_DB_OWNER_URL", fresh_owner)
        assert db.migration_target(fresh_app) == (
            db.normalize_url(fresh_owner),
            make_url(fresh_app).username,
        )
        engine = db.open_engine(fresh_app)
        try:
            assert db.current_revision(engine) == db.head_revision()
            with engine.connect() as conn:
                owner_of = conn.execute(
                    text("SELECT tableowner FROM pg_tables WHERE tablename = 'ledger_postings'"
                         " AND schemaname = current_schema()")
                ).scalar_one()
            assert owner_of == make_url(owner_url).username
        finally:
            engine.dispose()
    finally:
        with owner.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        owner.dispose()


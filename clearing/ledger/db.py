"""Where the ledger lives and how to reach it: the URL, the engine, the schema migrations.

SQLite (the default, a file under CLEARING_HOME) runs in WAL mode with foreign keys on, and every
transaction takes the write lock up front (BEGIN IMMEDIATE): a read-then-write transaction would
otherwise fail on the lock upgrade when two processes write. PostgreSQL runs READ COMMITTED;
the ledger takes the row locks it needs (see `periods`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    ARRAY,
    Connection,
    Engine,
    Insert,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    make_url,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

from clearing.config import settings

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
VERSION_TABLE = "ledger_alembic_version"
# Any constant: serialises concurrent `upgrade` calls on one PostgreSQL database.
MIGRATION_LOCK = 0x6C656467


def clearing_home() -> Path:
    return settings().home


def default_url() -> str:
    """`CLEARING_DB_URL`, else the SQLite file `${CLEARING_HOME}/ledger.sqlite`."""
    url = settings().db_url
    if url:
        return url
    home = clearing_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'ledger.sqlite'}"


def normalize_url(url: str) -> str:
    """Plain `postgresql://` (or `postgres://`) URLs use psycopg 3, the driver we ship."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str | None = None, *, begin_immediate: bool = True) -> Engine:
    """An engine on the ledger's database.

    On SQLite every transaction begins IMMEDIATE (it takes the write lock up front, so two
    writers queue instead of failing half-way); `begin_immediate=False` gives a reader that
    autocommits each statement and never waits behind a writer's transaction.
    """
    url = normalize_url(url or default_url())
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 60, "isolation_level": None})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    if begin_immediate:

        @event.listens_for(engine, "begin")
        def _begin_immediate(connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config(str(HERE / "alembic.ini"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Runs the migrations up to `revision` in one transaction; returns the revision reached."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        command.upgrade(alembic_config(conn), revision)
    return current_revision(engine)


def dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that knows ON CONFLICT, for either database."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    on_conflict: Callable[[Insert], Insert] | None = None,
) -> None:
    """Inserts many rows (all with the same keys), `on_conflict` applied to the INSERT.

    PostgreSQL gets one statement over `unnest` of one array per column: its statement-level
    triggers run once and the driver binds one parameter per column, where an executemany
    would send a statement per row. SQLite runs an executemany, which costs little there.
    """
    if not rows:
        return
    statement = dialect_insert(conn, table)
    if conn.dialect.name == "postgresql":
        columns = list(rows[0])
        arrays = [
            bindparam(f"{name}_all", [row[name] for row in rows], ARRAY(table.c[name].type))
            for name in columns
        ]
        source = func.unnest(*arrays).table_valued(*columns).render_derived("source")
        statement = statement.from_select(columns, select(source))
        conn.execute(on_conflict(statement) if on_conflict else statement)
    else:
        conn.execute(on_conflict(statement) if on_conflict else statement, list(rows))


def chunks(values: Sequence[T], size: int = 500) -> Iterator[Sequence[T]]:
    """Slices that keep every statement under both databases' bound-parameter limits."""
    for start in range(0, len(values), size):
        yield values[start : start + size]

"""Where the product's database lives and how to reach it: the URL, the engines, the migrations.

SQLite (the default, a file under CLEARING_HOME) runs in WAL mode with foreign keys on, and every
transaction takes the write lock up front (BEGIN IMMEDIATE): a read-then-write transaction would
otherwise fail on the lock upgrade when two processes write. PostgreSQL runs READ COMMITTED;
the ledger takes the row locks it needs (see `clearing.ledger.periods`).

Every table is created and changed by the Alembic migrations (`migrations/versions`), never by
`create_all`. `open_engine` migrates the database to the newest revision before handing out an
engine, so any process may be the first to open a fresh database. The migrations run once, under
a lock held for their whole transaction: an exclusive transaction on SQLite, an advisory lock on
PostgreSQL. Several workers starting together on a fresh database queue there; the first
migrates and the others find the schema at its newest revision.

On PostgreSQL the schema may belong to another role than the application's: with
CLEARING_DB_OWNER_URL set, the migrations of CLEARING_DB_URL's database run as that owner, which
then grants CLEARING_DB_URL's role only row rights (`APP_RIGHTS`): no DDL, so the application can
neither drop nor disable the triggers that keep the ledger append-only.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    insert,
    make_url,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite

from clearing.config import mask_url, settings
from clearing.core.jsonish import JSONObject

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
# The name revision 0001 gave it (when only the ledger was migrated); kept so that databases
# made then are recognised.
VERSION_TABLE = "ledger_alembic_version"
# Any constant: serialises concurrent migrations of one PostgreSQL database.
MIGRATION_LOCK = 0x6C656467


class MigrationError(RuntimeError):
    """The migrations left the database inconsistent; nothing of them was committed."""


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
    return mask_url(url)


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def _in_memory(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


# How long a new connection retries switching a database to WAL while another holds it.
WAL_SWITCH_SECONDS = 60.0


def sqlite_pragmas(
    dbapi_connection: Any, foreign_keys: str, patience: float = WAL_SWITCH_SECONDS
) -> None:
    """A new SQLite connection's settings. Switching a fresh database to WAL needs it to
    itself, and SQLite may answer "database is locked" at once, without its busy handler,
    while another process is creating or converting the same file (workers starting together
    on a new ledger): the switch is retried until `patience` runs out."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=60000")
        deadline = time.monotonic() + patience
        delay = 0.01
        while True:
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA foreign_keys={foreign_keys}")
    finally:
        cursor.close()


def make_engine(
    url: str | None = None,
    *,
    begin_immediate: bool = True,
    exclusive: bool = False,
    foreign_keys: bool = True,
) -> Engine:
    """An engine on the database, as it is (see `open_engine` for one migrated first).

    On SQLite every transaction begins IMMEDIATE (it takes the write lock up front, so two
    writers queue instead of failing half-way); `begin_immediate=False` gives a reader that
    autocommits each statement and never waits behind a writer's transaction; `exclusive`
    begins EXCLUSIVE (no other connection reads or writes meanwhile); `foreign_keys=False` is
    for the migrations only.
    """
    url = normalize_url(url or default_url())
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 60, "isolation_level": None})
    enforce = "ON" if foreign_keys else "OFF"

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        sqlite_pragmas(dbapi_connection, enforce)

    begin = "EXCLUSIVE" if exclusive else "IMMEDIATE" if begin_immediate else None
    if begin is not None:

        @event.listens_for(engine, "begin")
        def _begin_locked(connection: Connection) -> None:
            connection.exec_driver_sql(f"BEGIN {begin}")

    return engine


def read_engine(engine: Engine) -> Engine:
    """An engine for reads that take no lock: for SQLite a second engine on the same file that
    autocommits (no `BEGIN IMMEDIATE`); elsewhere the engine itself."""
    url = url_of(engine)
    if engine.url.get_backend_name() != "sqlite" or _in_memory(url):
        return engine
    return make_engine(url, begin_immediate=False)


# ---------------------------------------------------------------------------------------------
# Migrations


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config(str(HERE / "alembic.ini"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade(
    target: Engine | str, revision: str = "head", *, grant_to: str | None = None
) -> str | None:
    """Runs the migrations up to `revision` in one transaction, under the migration lock;
    returns the revision reached. Concurrent callers queue on the lock, and the later ones find
    nothing left to do. `grant_to` (PostgreSQL): the application role, granted `APP_RIGHTS` on
    every table in the same transaction.

    SQLite: an engine of its own whose transaction begins EXCLUSIVE, with foreign keys off while
    revisions rebuild tables (SQLite changes constraints only by copying a table); every foreign
    key is checked before the commit instead. PostgreSQL: `pg_advisory_xact_lock`, released by
    the commit.
    """
    url = normalize_url(target if isinstance(target, str) else url_of(target))
    if _in_memory(url) and isinstance(target, Engine):
        engine, own = target, False
    else:
        engine, own = migration_engine(url), True
    try:
        with engine.begin() as conn:
            migration_lock(conn)
            command.upgrade(alembic_config(conn), revision)
            check_foreign_keys(conn)
            if grant_to is not None and conn.dialect.name == "postgresql":
                grant_app_rights(conn, grant_to)
        return current_revision(engine)
    finally:
        if own:
            engine.dispose()


def migration_engine(url: str | None = None) -> Engine:
    """The engine migrations run on: on SQLite, transactions begin EXCLUSIVE and foreign keys
    are off (revisions rebuild tables); `check_foreign_keys` checks them before the commit."""
    return make_engine(url, exclusive=True, foreign_keys=False)


def migration_lock(conn: Connection) -> None:
    """Takes the migration lock for the rest of the transaction (SQLite: its EXCLUSIVE begin)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def check_foreign_keys(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise MigrationError(f"foreign keys broken by the migration: {broken[:5]}")


# The application role's rights per table (default: read and write rows). The append-only
# tables (their triggers refuse UPDATE, DELETE and TRUNCATE anyway) get no right to change a row;
# periods are never deleted; the schema's version is only read.
APPEND_ONLY = (
    "ledger_results",
    "ledger_postings",
    "ledger_prepayments",
    "ledger_alerts",
    "ledger_reconciliations",
)
APP_RIGHTS: dict[str, str] = {
    **{table: "SELECT, INSERT" for table in APPEND_ONLY},
    "ledger_periods": "SELECT, INSERT, UPDATE",
    VERSION_TABLE: "SELECT",
}
DEFAULT_APP_RIGHTS = "SELECT, INSERT, UPDATE, DELETE"


def grant_app_rights(conn: Connection, role: str) -> None:
    """Grants `role` the rights the application needs on the current schema and nothing more:
    it owns nothing, so it cannot alter, drop or disable triggers of any table."""
    from clearing.store.schema import metadata

    quote = conn.dialect.identifier_preparer.quote
    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    grantee = quote(role)
    conn.execute(text(f"GRANT USAGE ON SCHEMA {quote(schema)} TO {grantee}"))
    for table in [*metadata.tables, VERSION_TABLE]:
        rights = APP_RIGHTS.get(table, DEFAULT_APP_RIGHTS)
        target = f"{quote(schema)}.{quote(table)}"
        conn.execute(text(f"REVOKE ALL ON {target} FROM {grantee}"))
        conn.execute(text(f"GRANT {rights} ON {target} TO {grantee}"))
    conn.execute(
        text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {quote(schema)} TO {grantee}")
    )


def migration_target(url: str) -> tuple[str, str | None]:
    """Where the migrations of `url`'s database run and which role they grant the application's
    rights to: CLEARING_DB_OWNER_URL (granting to `url`'s role) when `url` is CLEARING_DB_URL on
    PostgreSQL and another role, else `url` itself."""
    s = settings()
    if s.db_owner_url is None or s.db_url is None:
        return url, None
    app, configured = make_url(normalize_url(url)), make_url(normalize_url(s.db_url))
    if app.get_backend_name() != "postgresql" or app != configured:
        return url, None
    owner = normalize_url(s.db_owner_url)
    if make_url(owner).username == app.username:
        return owner, None
    return owner, app.username


def migrate(engine: Engine) -> str | None:
    """Brings the database to the newest revision unless it is there already (one read); as
    the owner role when one is configured (`migration_target`)."""
    if current_revision(engine) == head_revision():
        return head_revision()
    url, role = migration_target(url_of(engine))
    return upgrade(engine if role is None and url == url_of(engine) else url, grant_to=role)


def open_engine(url: str | None = None, *, begin_immediate: bool = True) -> Engine:
    """An engine on the database, migrated to the newest revision first (see `make_engine`)."""
    engine = make_engine(url, begin_immediate=begin_immediate)
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


# ---------------------------------------------------------------------------------------------
# Writing many rows


def dialect_insert(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that knows ON CONFLICT, for either database."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    on_conflict: Callable[[Any], Insert] | None = None,
    *,
    count: bool = False,
) -> int | None:
    """Inserts many rows (all with the same keys), `on_conflict` applied to the INSERT. With
    `count`, returns how many rows it wrote (inserted, or updated by an ON CONFLICT DO UPDATE).

    PostgreSQL gets one statement over `unnest` of one array per column: its statement-level
    triggers run once and the driver binds one parameter per column, where an executemany
    would send a statement per row. SQLite runs an executemany, which costs little there.
    """
    if not rows:
        return 0
    statement: Insert = dialect_insert(conn, table)
    if conn.dialect.name == "postgresql":
        columns = list(rows[0])
        arrays = [
            bindparam(f"{name}_all", [row[name] for row in rows], ARRAY(table.c[name].type))
            for name in columns
        ]
        source = func.unnest(*arrays).table_valued(*columns).render_derived("source")
        statement = statement.from_select(columns, select(source))
        if on_conflict is not None:
            statement = on_conflict(statement)
        if count:  # the driver's rowcount of an INSERT ... SELECT is not reliable
            return len(conn.execute(statement.returning(*table.primary_key.columns)).all())
        conn.execute(statement)
        return None
    done = conn.execute(on_conflict(statement) if on_conflict else statement, list(rows))
    return done.rowcount if count else None


def bulk_insert(conn: Connection, table: Table, rows: list[JSONObject], suffix: str = "") -> int:
    """Inserts many rows with the same keys; returns the rows written. On SQLite straight through
    the driver's executemany: SQLAlchemy's per-row parameter processing costs more than
    SQLite's insert. Values must already be what the driver stores (str, int, bytes, bool,
    None). `suffix` (SQLite only) is appended to the statement, e.g. an ON CONFLICT clause."""
    if not rows:
        return 0
    if conn.dialect.name != "sqlite":
        return conn.execute(insert(table), rows).rowcount
    columns = list(rows[0])
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}){suffix}"
    )
    return conn.exec_driver_sql(sql, [tuple(row[c] for c in columns) for row in rows]).rowcount


def bulk_update(
    conn: Connection,
    table: Table,
    keys: Sequence[str],
    values: Sequence[str],
    rows: list[tuple[Any, ...]],
) -> None:
    """`UPDATE table SET values... WHERE keys...` for each row (values first, then keys)."""
    if not rows:
        return
    setting = ", ".join(f"{name} = ?" for name in values)
    where = " AND ".join(f"{name} = ?" for name in keys)
    sql = f"UPDATE {table.name} SET {setting} WHERE {where}"
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    conn.exec_driver_sql(sql, rows)


def chunks(values: Iterable[T], size: int = 500) -> Iterator[list[T]]:
    """Slices of at most `size`, to keep every statement under both databases' bound-parameter
    limits."""
    batch: list[T] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch

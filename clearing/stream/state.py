"""The stream's pricing state in the database, not in faust tables.

Tables (all keyed on business ids, so every write is idempotent or fails loudly):

- `stream_results`: the result of every consumed event, keyed by its SOURCE position
  (`topic:partition:offset`). A replayed offset finds its stored result and re-emits it.
- `stream_ids`: settlement and reversal ids taken (`S:<sid>`/`R:<rid>`) with the fingerprint of
  the event that took them; the unique key makes two batches racing on one id collide.
- `stream_filings`: filings, keyed by their source position.
- `stream_accumulators`: per (person, year, kind); read `FOR UPDATE` by the batch that changes it.
- `stream_priced`: priced settlements a reversal may cancel, with the `reversed` flag.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    insert,
)

from clearing.ledger import db

metadata = MetaData()

results = Table(
    "stream_results",
    metadata,
    Column("source", String(300), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("message", LargeBinary, nullable=False),
)

ids = Table(
    "stream_ids",
    metadata,
    Column("key", String(70), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("source", String(300), nullable=False),
)

filings = Table(
    "stream_filings",
    metadata,
    Column("source", String(300), primary_key=True),
    Column("person_id", String(64), nullable=False, index=True),
    Column("filing", LargeBinary, nullable=False),
)

accumulators = Table(
    "stream_accumulators",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("fund_paid", BigInteger, nullable=False),
    Column("deductible_used", BigInteger, nullable=False),
)

priced = Table(
    "stream_priced",
    metadata,
    Column("settlement_id", String(64), primary_key=True),
    Column("person_id", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("result", LargeBinary, nullable=False),
    Column("reversed", Boolean, nullable=False),
)


def make_engine(url: str | None = None) -> Engine:
    """The ledger's engine: the stream's tables live in the ledger's database."""
    return db.make_engine(url)


def read_engine(engine: Engine) -> Engine:
    """An engine for reads that take no lock: for SQLite a second engine on the same file that
    autocommits (no `BEGIN IMMEDIATE`); elsewhere the engine itself."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return engine
    return db.make_engine(url.render_as_string(hide_password=False), begin_immediate=False)


def create_tables(engine: Engine) -> None:
    metadata.create_all(engine, checkfirst=True)


def chunks(values: Iterable, size: int = 500) -> Iterable[list]:
    """Slices of at most `size`, to stay under every database's bound-parameter limit."""
    batch: list = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def bulk_insert(conn: Connection, table: Table, rows: list[dict]) -> None:
    """Inserts many rows with the same keys. On SQLite straight through the driver's
    executemany: SQLAlchemy's per-row parameter processing costs more than SQLite's insert.
    Values must already be what the driver stores (str, int, bytes, bool, None)."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), rows)
        return
    columns = list(rows[0])
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    conn.exec_driver_sql(sql, [tuple(row[c] for c in columns) for row in rows])


def bulk_update(
    conn: Connection, table: Table, keys: Sequence[str], values: Sequence[str], rows: list[tuple]
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

"""The API's own tables, in the stream's database (`CLEARING_DB_URL` or the ledger's SQLite).

- `hospital_credentials`: one bearer token per hospital, stored only as its SHA-256.
- `api_submissions`: which hospital claimed which settlement/reversal id (`S:<id>`/`R:<id>`,
  the stream's own keys), with the content fingerprint and the event's position once published.
  The claim is what makes "accepted once" hold when two requests race on one id, and what tells
  whose result a GET may see.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
)

from clearing.ledger import db
from clearing.stream import state

metadata = MetaData()

credentials = Table(
    "hospital_credentials",
    metadata,
    Column("hospital_id", String(64), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

submissions = Table(
    "api_submissions",
    metadata,
    Column("key", String(70), primary_key=True),
    Column("hospital_id", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("source", String(300), nullable=True),
    Column("submitted_ms", BigInteger, nullable=False),
)


def make_engine(url: str | None = None) -> Engine:
    """An engine for short API reads and single-statement writes.

    SQLite runs in autocommit: a read takes no write lock, so it never waits behind a worker's
    batch transaction (the stream's engine begins every transaction IMMEDIATE).
    """
    return db.make_engine(url, begin_immediate=False)


def create_tables(engine: Engine) -> None:
    """The API's tables, and the stream's (read here; the worker creates them the same way)."""
    metadata.create_all(engine, checkfirst=True)
    state.create_tables(engine)

"""Alembic environment of the ledger: the connection handed in by `clearing.ledger.db.upgrade`,
else an engine on CLEARING_DB_URL (or the default SQLite file). No logging setup here: the
ledger runs inside other programs, whose logging is theirs.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from clearing.ledger.db import VERSION_TABLE, make_engine
from clearing.ledger.schema import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url or str(make_engine().url),
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
elif (connection := context.config.attributes.get("connection")) is not None:
    run(connection)
else:
    engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            run(conn)
    finally:
        engine.dispose()

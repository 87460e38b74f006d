"""Alembic environment of the product's database: the connection handed in by
`clearing.store.db.upgrade` (which holds the migration lock), else an engine on CLEARING_DB_URL
(or the default SQLite file). No logging setup here: the store runs inside other programs, whose
logging is theirs.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from clearing.store.db import (
    VERSION_TABLE,
    check_foreign_keys,
    make_engine,
    migration_engine,
    migration_lock,
)
from clearing.store.schema import metadata


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
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
    engine = migration_engine(context.config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            migration_lock(conn)
            run(conn)
            check_foreign_keys(conn)
    finally:
        engine.dispose()

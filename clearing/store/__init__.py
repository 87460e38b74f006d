"""The product's one database: every table, the engines, the migrations.

`schema` (every table: the ledger's, `ids`, the stream's state, `credentials`, the dashboard's
log), `db` (URLs, engines, `open_engine` that migrates first, the migration lock, bulk writes),
`migrations` (Alembic; `alembic.ini` beside this file).
"""

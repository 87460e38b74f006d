#!/bin/bash
# Runs once, on the empty data directory (docker-entrypoint-initdb.d), as POSTGRES_USER
# (clearing_owner, which owns the database and runs the migrations). Creates the application
# role with the password of its docker secret; the migrations grant it row rights only.
set -euo pipefail
APP_PASSWORD=$(tr -d '\n' </run/secrets/db_app_password)
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE clearing_app LOGIN NOCREATEDB NOCREATEROLE PASSWORD '$APP_PASSWORD';
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON DATABASE $POSTGRES_DB FROM PUBLIC;
SQL

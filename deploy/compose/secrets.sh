#!/usr/bin/env bash
# Generates the compose deployment's secrets once, into ./secrets, for docker compose's
# `secrets:`. The directory is 0700 (no other local user reaches them); the files are 0644
# because compose bind-mounts each file as it is and the services run as their images' own
# users, who must read them inside their containers. Existing files are kept; delete one and run again to rotate it
# (Kafka's SCRAM passwords are set when its storage is first formatted, PostgreSQL's roles when
# its data directory is first made: rotate those in the running services too).
# Usage: deploy/compose/secrets.sh [DIR]   (default: ./secrets, or CLEARING_SECRETS_DIR)
set -euo pipefail
umask 077
DIR="${1:-${CLEARING_SECRETS_DIR:-secrets}}"
mkdir -p "$DIR"

new_password() {
    python3 -c 'import secrets, string; a = string.ascii_letters + string.digits; print("".join(secrets.choice(a) for _ in range(32)))'
}

for name in kafka_broker kafka_admin kafka_workers db_owner db_app grafana_admin; do
    [ -s "$DIR/$name.password" ] || new_password >"$DIR/$name.password"
done
# The bearer token Prometheus scrapes /metrics with (registered as the viewer `prometheus` by
# the compose service credentials-setup): 256 random bits, URL-safe.
[ -s "$DIR/metrics.token" ] || python3 -c 'import secrets; print(secrets.token_urlsafe(32))' \
    >"$DIR/metrics.token"
chmod 700 "$DIR"
for role in owner app; do
    echo "postgresql+psycopg://clearing_$role:$(cat "$DIR/db_$role.password")@postgres/clearing" \
        >"$DIR/db_$role.url"
done
chmod 644 "$DIR"/*.password "$DIR"/*.url "$DIR"/metrics.token
echo "$DIR"

#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the service tests; print the line that points them at it.
#
#   eval "$(bash .ci/start-postgres.sh)"    # sets STREETWATCH_TEST_POSTGRES_URL
#
# Installs the Debian `postgresql` package when no server binaries are present. Idempotent: a second run finds
# the cluster, server, role and database already there and prints the same line. Everything but that line goes
# to stderr. Override the place with STREETWATCH_PG_DIR and the port with STREETWATCH_PG_PORT.
set -euo pipefail

PGDIR="${STREETWATCH_PG_DIR:-/tmp/streetwatch-pg}"
PGPORT="${STREETWATCH_PG_PORT:-55432}"
DB_NAME=streetwatch_test
DB_USER=streetwatch
DB_PASSWORD=streetwatch

say() { echo "start-postgres: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

pg_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

BIN=$(pg_bindir || true)
if [ -z "$BIN" ]; then
    say "installing PostgreSQL from Debian"
    as_root apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
    BIN=$(pg_bindir)
fi

# initdb refuses to run as root; the cluster then belongs to the postgres user the package created.
if [ "$(id -u)" -eq 0 ]; then
    RUN=(runuser -u postgres --)
    mkdir -p "$PGDIR"
    chown postgres:postgres "$PGDIR"
    chmod 700 "$PGDIR"
else
    RUN=()
    mkdir -p "$PGDIR"
    chmod 700 "$PGDIR"
fi

if [ ! -f "$PGDIR/PG_VERSION" ]; then
    say "creating a cluster in $PGDIR"
    "${RUN[@]}" "$BIN/initdb" -D "$PGDIR" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >&2
fi

if ! "${RUN[@]}" "$BIN/pg_ctl" -D "$PGDIR" status >/dev/null 2>&1; then
    say "starting the server on 127.0.0.1:$PGPORT"
    "${RUN[@]}" "$BIN/pg_ctl" -D "$PGDIR" -l "$PGDIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c fsync=off" start >&2
fi

psql_admin() {
    "${RUN[@]}" "$BIN/psql" -h "$PGDIR" -p "$PGPORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -tA "$@"
}

for _ in $(seq 1 60); do
    "$BIN/pg_isready" -h 127.0.0.1 -p "$PGPORT" -q && break
    sleep 0.5
done
"$BIN/pg_isready" -h 127.0.0.1 -p "$PGPORT" >&2

if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" != "1" ]; then
    psql_admin -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD'" >&2
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]; then
    psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >&2
fi

echo "export STREETWATCH_TEST_POSTGRES_URL=postgresql+psycopg://$DB_USER:$DB_PASSWORD@127.0.0.1:$PGPORT/$DB_NAME"

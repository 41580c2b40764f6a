#!/bin/sh
# The part of postgres:18's entrypoint the compose file relies on: as root, own PGDATA and
# go on as postgres; on an empty PGDATA, initdb with POSTGRES_USER and POSTGRES_PASSWORD,
# create POSTGRES_DB and run /docker-entrypoint-initdb.d/*.sql and *.sh on a server that
# listens on its Unix socket only; then run the command given (postgres and its options).
# No `set -u`: init scripts are sourced, as the official image sources them, and may read
# unset variables.
set -e

if [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi
if [ "$1" != "postgres" ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "error: the database is uninitialized and POSTGRES_PASSWORD is not set" >&2
        exit 1
    fi
    pwfile=$(mktemp)
    trap 'rm -f "$pwfile"' EXIT
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
        --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} \
        -D "$PGDATA" >/dev/null
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"

    # The init server gets the command's options too (track_commit_timestamp, say), as the
    # official image's does, then its own: no TCP, and PGPORT's port.
    shift
    port="${PGPORT:-5432}"
    pg_ctl -D "$PGDATA" -o "$* -c listen_addresses='' -p $port" -w start >/dev/null
    export PGPORT="$port" PGUSER="$POSTGRES_USER"
    if [ "$POSTGRES_DB" != postgres ]; then
        echo 'create database :"db"' \
            | psql -v ON_ERROR_STOP=1 --no-psqlrc -q -d postgres -v db="$POSTGRES_DB"
    fi
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --no-psqlrc -q -d "$POSTGRES_DB" -f "$f" ;;
            *.sh)
                echo "running $f"
                if [ -x "$f" ]; then "$f"; else . "$f"; fi
                ;;
            *) ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    unset PGUSER
    echo "PostgreSQL init process complete; ready for start up."
    set -- postgres "$@"
fi

exec "$@"

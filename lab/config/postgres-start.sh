#!/bin/sh
# Starts Debian's PostgreSQL 15 the way the official image would: data in a
# volume, user/database "nautilus", password from POSTGRES_PASSWORD, local
# socket trusted so `docker exec nautilus-postgres psql -U nautilus` works.
# Runs as the postgres user (compose `user: postgres`): `python -m lab up` makes
# the data volume postgres-owned before the container starts.
set -eu
PGBIN=/usr/lib/postgresql/15/bin
PGDATA=/var/lib/postgresql/data

if [ ! -w "$PGDATA" ]; then
  echo "postgres-start: $PGDATA is not writable by $(id -un); start the lab with python -m lab up" >&2
  exit 1
fi
chmod 700 "$PGDATA"

# Fed by here-documents, never a pipe: a pipeline would run postgres in a subshell, and
# after an unclean stop the stale postmaster.pid names PID 7, which this script holds
# again in the new container; postgres trusts that PID only when it is its parent's.
single_user() { "$PGBIN/postgres" --single -D "$PGDATA" "$1" >/dev/null; }

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  "$PGBIN/initdb" -D "$PGDATA" -U nautilus -E UTF8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  cat >> "$PGDATA/postgresql.conf" <<CONF
listen_addresses = '*'
shared_preload_libraries = 'pg_stat_statements'
log_min_duration_statement = 1000
CONF
  single_user postgres <<SQL
CREATE DATABASE nautilus;
SQL
  single_user nautilus <<SQL
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
fi

# The password is (re)applied at every start, so the volume always matches the
# environment; quotes are doubled for SQL, and the statement reaches neither a log
# nor pg_stat_statements (which records utility statements verbatim unless told not to).
escaped=$(printf '%s' "$POSTGRES_PASSWORD" | sed "s/'/''/g")
single_user nautilus <<SQL
SET pg_stat_statements.track_utility = off;
ALTER USER nautilus PASSWORD '$escaped';
SQL

exec "$PGBIN/postgres" -D "$PGDATA"

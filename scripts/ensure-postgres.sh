#!/usr/bin/env bash
# Make sure the local PostgreSQL answers; start it if it is installed but down.
# Under CI a PostgreSQL that cannot be reached is an error (the PostgreSQL tests must run).
set -uo pipefail
HOST=${PGHOST:-127.0.0.1}
PORT=${PGPORT:-5432}
if pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; then exit 0; fi
if ls /etc/postgresql >/dev/null 2>&1; then
  for v in $(ls /etc/postgresql); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true
  done
  for _ in $(seq 1 30); do
    pg_isready -q -h "$HOST" -p "$PORT" && exit 0
    sleep 1
  done
fi
if [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL at $HOST:$PORT is not reachable and could not be started" >&2
  exit 1
fi
echo "warning: PostgreSQL is not reachable; PostgreSQL tests will be skipped" >&2

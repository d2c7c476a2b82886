#!/usr/bin/env bash
# Start the local PostgreSQL (and Redis) used by the tests if they are not already running. Without a
# PostgreSQL on 127.0.0.1:5432 the tests start an embedded one (tests/support/database.py).
set -euo pipefail
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  fi
fi
pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null ||
  echo "PostgreSQL is not reachable on 127.0.0.1:5432: the tests start an embedded one" >&2
if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp --logfile /tmp/supportlens-redis.log || true
  fi
fi

#!/usr/bin/env bash
# Make sure the real services the tests use are up: Redis and PostgreSQL on their
# standard local ports. Starts them when they are installed but not running.
# Under CI=true a service that cannot be reached is a failure, never a silent skip.
set -u
REDIS_HOST=127.0.0.1 REDIS_PORT=6379 PG_HOST=127.0.0.1 PG_PORT=5432

redis_up() { (exec 3<>/dev/tcp/$REDIS_HOST/$REDIS_PORT && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
pg_up() { pg_isready -q -h $PG_HOST -p $PG_PORT 2>/dev/null; }

start_redis() {
  command -v redis-server >/dev/null || return 1
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port $REDIS_PORT --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1 \
  || redis-server --daemonize yes --bind 127.0.0.1 --port $REDIS_PORT --save "" --appendonly no >/dev/null 2>&1
}

start_pg() {
  command -v pg_ctlcluster >/dev/null || return 1
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start >/dev/null 2>&1
}

wait_for() { for _ in $(seq 1 50); do "$1" && return 0; sleep 0.2; done; return 1; }

status=0
if ! redis_up; then
  echo "services: Redis not running on $REDIS_HOST:$REDIS_PORT, starting it"
  start_redis; wait_for redis_up || { echo "services: Redis is not reachable" >&2; status=1; }
fi
if ! pg_up; then
  echo "services: PostgreSQL not running on $PG_HOST:$PG_PORT, starting it"
  start_pg; wait_for pg_up || { echo "services: PostgreSQL is not reachable" >&2; status=1; }
fi
if [ $status -ne 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "services: CI=true and a required service is missing: failing" >&2
    exit 1
  fi
  echo "services: a service is missing; tests that need it will fail (they never skip)" >&2
fi
# The application database (pytest-django creates test_<name> from it).
if pg_up; then
  psql -h $PG_HOST -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='realtime'" 2>/dev/null | grep -q 1 \
    || psql -h $PG_HOST -U postgres -qc "CREATE DATABASE realtime" >/dev/null 2>&1 || true
fi
exit 0

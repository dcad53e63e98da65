#!/usr/bin/env bash
# Installs (Debian packages, as root) and starts PostgreSQL, Redis and RabbitMQ on
# 127.0.0.1 when they are missing or stopped, then creates the database named in
# DATABASE_URL; and an S3-compatible server (moto's server mode, from PyPI) on
# 127.0.0.1:${S3_TEST_PORT:-9090} for attachments. Idempotent: safe to run again on a machine where all is running.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

need_pkgs=()
command -v pg_ctlcluster >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_pkgs+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
command -v rabbitmq-server >/dev/null 2>&1 || need_pkgs+=(rabbitmq-server)
command -v psql >/dev/null 2>&1 || need_pkgs+=(postgresql-client)
command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs npm)
# curl and jq: the quickstart's commands (docs/quickstart.md, checked by tests/e2e/quickstart.test.mjs).
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v jq >/dev/null 2>&1 || need_pkgs+=(jq)
# openssl: the TLS tests make a throwaway CA and certificates per run (tests/redis_tls.rs, tests/e2e/pki.mjs).
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# pgbouncer (1.18 on Debian 12): tests/e2e/pgbouncer.test.mjs runs Courier through one in
# transaction pooling mode (its own instance; the distro's service is stopped below).
command -v pgbouncer >/dev/null 2>&1 || ls /usr/sbin/pgbouncer >/dev/null 2>&1 || need_pkgs+=(pgbouncer)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || { log "need root to install: ${need_pkgs[*]}"; exit 1; }
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
# The package starts its own PgBouncer on 127.0.0.1:6432; the tests start theirs.
if [ -x /etc/init.d/pgbouncer ] && [ -s /var/run/postgresql/pgbouncer.pid ]; then
  log "stopping the distro's pgbouncer service"
  service pgbouncer stop >/dev/null 2>&1 || /etc/init.d/pgbouncer stop >/dev/null 2>&1 || true
fi

wait_for() { # name, tries, command...
  local name=$1 tries=$2; shift 2
  for _ in $(seq "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  log "$name did not come up"; return 1
}

# PostgreSQL: the Debian cluster, password auth for postgres/postgres over TCP.
pg_ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
  pg_createcluster "$pg_ver" main >/dev/null
fi
cluster=$(pg_lsclusters -h | head -1 | awk '{print $1" "$2}')
# Tuned for a small test box: more connections for parallel tests. A test's cleanup
# freezes its runtime, and may catch a connection of the app mid-handshake; DROP
# DATABASE (FORCE) waits for such a backend until `authentication_timeout` (60 s by
# default), so it is short here.
conf_dir="/etc/postgresql/${cluster% *}/${cluster#* }/conf.d"
mkdir -p "$conf_dir"
printf "max_connections = 400\nlisten_addresses = '127.0.0.1'\nshared_buffers = 256MB\nauthentication_timeout = 5s\n" > "$conf_dir/courier.conf"
if ! pg_lsclusters -h | head -1 | grep -q online; then
  log "starting PostgreSQL $cluster"
  pg_ctlcluster $cluster start
fi
wait_for PostgreSQL 30 su postgres -c "psql -qAtc 'select 1'"
su postgres -c "psql -qAtc 'select pg_reload_conf()'" >/dev/null
su postgres -c "psql -qAtc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null

# Redis.
if ! redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
  log "starting Redis"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no \
    --logfile /tmp/courier-redis.log
fi
wait_for Redis 30 sh -c 'redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG'

# RabbitMQ.
if ! rabbitmq-diagnostics -q check_running >/dev/null 2>&1; then
  log "starting RabbitMQ"
  mkdir -p /var/lib/rabbitmq /var/log/rabbitmq
  chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq 2>/dev/null || true
  rabbitmq-server -detached >/dev/null 2>&1 || true
fi
wait_for RabbitMQ 90 rabbitmq-diagnostics -q check_running
wait_for RabbitMQ 30 rabbitmq-diagnostics -q check_port_connectivity

# The database of DATABASE_URL (default courier).
db=${DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/courier}
db=${db##*/}; db=${db%%\?*}
if [ -n "$db" ] && ! su postgres -c "psql -qAtc \"select 1 from pg_database where datname='$db'\"" | grep -q 1; then
  su postgres -c "createdb '$db'"
fi
# S3-compatible storage for attachments: moto's server mode (Apache-2.0), in memory.
# Tests create their own buckets on it (moto accepts any credentials).
s3_port=${S3_TEST_PORT:-9090}
python3 -m pip show flask-cors >/dev/null 2>&1 && command -v moto_server >/dev/null 2>&1 \
  || python3 -m pip install -q 'moto[server]==5.2.1'
if ! curl -fsS -o /dev/null "http://127.0.0.1:$s3_port/moto-api/" 2>/dev/null; then
  log "starting moto_server (S3) on 127.0.0.1:$s3_port"
  setsid nohup moto_server -H 127.0.0.1 -p "$s3_port" >/tmp/courier-moto.log 2>&1 < /dev/null &
fi
wait_for "moto_server (S3)" 60 curl -fsS -o /dev/null "http://127.0.0.1:$s3_port/moto-api/"
log "PostgreSQL, Redis, RabbitMQ and S3 (moto) are up on 127.0.0.1"

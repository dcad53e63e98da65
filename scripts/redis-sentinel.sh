#!/usr/bin/env bash
# A local Redis Sentinel set for tests and trials: one master, one replica and three
# sentinels on 127.0.0.1, each on its own port, data and logs under a state dir; fast
# failover (down-after 1 s, failover-timeout 3 s). Installs redis-server (whose
# `--sentinel` mode is the sentinel) when missing. Idempotent: `start` leaves running
# nodes alone and (re)starts the missing ones.
#
#   scripts/redis-sentinel.sh start     start what is not running, wait until the set is whole
#   scripts/redis-sentinel.sh stop      stop every node of the set
#   scripts/redis-sentinel.sh master    print the master's host:port as the sentinels see it
#   scripts/redis-sentinel.sh kill PORT kill -9 the node on PORT
#   scripts/redis-sentinel.sh restart PORT  start the node on PORT again (as a replica of
#                                       the current master when it is not the master)
#   scripts/redis-sentinel.sh pause|resume PORT   SIGSTOP / SIGCONT the node on PORT
#   scripts/redis-sentinel.sh wait-failover OLD   wait until the sentinels name a master
#                                       other than OLD (host:port) and it answers as master
#
# Ports and place (environment): RS_MASTER_PORT (6391), RS_REPLICA_PORT (6392),
# RS_SENTINEL_PORTS ("26391 26392 26393"), RS_DIR (/tmp/courier-redis-sentinel),
# RS_MASTER_NAME (mymaster), RS_PASSWORD (the master's and replica's requirepass and
# masterauth), RS_SENTINEL_PASSWORD (the sentinels' own requirepass). Tests give each set
# its own ports and dir.
set -euo pipefail

MASTER_PORT=${RS_MASTER_PORT:-6391}
REPLICA_PORT=${RS_REPLICA_PORT:-6392}
SENTINEL_PORTS=${RS_SENTINEL_PORTS:-26391 26392 26393}
DIR=${RS_DIR:-/tmp/courier-redis-sentinel}
NAME=${RS_MASTER_NAME:-mymaster}
HOST=127.0.0.1
PASSWORD=${RS_PASSWORD:-}
SENTINEL_PASSWORD=${RS_SENTINEL_PASSWORD:-}

log() { printf '[redis-sentinel] %s\n' "$*" >&2; }

install() {
  command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || { log "need root to install redis-server"; exit 1; }
  log "installing redis-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server redis-tools >/dev/null
}

cli() { # port, args... (the password of the node's kind through REDISCLI_AUTH)
  local auth=$PASSWORD
  is_sentinel "$1" && auth=$SENTINEL_PASSWORD
  REDISCLI_AUTH=$auth redis-cli -h "$HOST" -p "$1" "${@:2}"
}
pidfile() { echo "$DIR/$1/redis.pid"; }
running() { local f; f=$(pidfile "$1"); [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }
is_sentinel() { case " $SENTINEL_PORTS " in *" $1 "*) return 0 ;; esac; return 1; }

# The node's config (written once: Redis and Sentinel rewrite it as roles change).
write_conf() { # port, extra lines...
  local port=$1 conf="$DIR/$1/node.conf"; shift
  mkdir -p "$DIR/$port"
  [ -s "$conf" ] && return 0
  {
    echo "port $port"
    echo "bind $HOST"
    echo "protected-mode no"
    echo "daemonize yes"
    echo "pidfile $(pidfile "$port")"
    echo "logfile $DIR/$port/redis.log"
    echo "dir $DIR/$port"
    printf '%s\n' "$@"
  } >"$conf"
}

conf_node() { # port
  local port=$1 auth=()
  if is_sentinel "$port"; then
    [ -n "$PASSWORD" ] && auth+=("sentinel auth-pass $NAME $PASSWORD")
    [ -n "$SENTINEL_PASSWORD" ] && auth+=("requirepass $SENTINEL_PASSWORD" "sentinel sentinel-pass $SENTINEL_PASSWORD")
    write_conf "$port" \
      "sentinel monitor $NAME $HOST $MASTER_PORT 2" \
      "sentinel down-after-milliseconds $NAME 1000" \
      "sentinel failover-timeout $NAME 3000" \
      "sentinel parallel-syncs $NAME 1" \
      "${auth[@]}"
  else
    [ -n "$PASSWORD" ] && auth+=("requirepass $PASSWORD" "masterauth $PASSWORD")
    if [ "$port" = "$MASTER_PORT" ]; then
      write_conf "$port" 'save ""' "appendonly no" "${auth[@]}"
    else
      write_conf "$port" 'save ""' "appendonly no" "replicaof $HOST $MASTER_PORT" "${auth[@]}"
    fi
  fi
}

start_node() { # port [extra redis-server args...]
  local port=$1; shift
  running "$port" && return 0
  conf_node "$port"
  if is_sentinel "$port"; then
    redis-server "$DIR/$port/node.conf" --sentinel "$@" >/dev/null
  else
    redis-server "$DIR/$port/node.conf" "$@" >/dev/null
  fi
  for _ in $(seq 100); do cli "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "node $port did not start (see $DIR/$port/redis.log)"
  return 1
}

field() { # sentinel port, field of SENTINEL MASTER
  cli "$1" sentinel master "$NAME" 2>/dev/null | awk -v f="$2" 'prev == f { print; exit } { prev = $0 }'
}

current_master() {
  local p addr
  for p in $SENTINEL_PORTS; do
    addr=$(cli "$p" sentinel get-master-addr-by-name "$NAME" 2>/dev/null | paste -sd: -) || continue
    [ -n "$addr" ] && { echo "$addr"; return 0; }
  done
  return 1
}

# Every sentinel sees the replica and the two other sentinels, and the replica's link is up.
wait_whole() {
  local p ok
  for _ in $(seq 300); do
    ok=1
    for p in $SENTINEL_PORTS; do
      [ "$(field "$p" num-slaves)" -ge 1 ] 2>/dev/null || ok=0
      [ "$(field "$p" num-other-sentinels)" -ge 2 ] 2>/dev/null || ok=0
    done
    cli "$REPLICA_PORT" info replication 2>/dev/null | grep -q 'master_link_status:up' || \
      cli "$MASTER_PORT" info replication 2>/dev/null | grep -q 'master_link_status:up' || ok=0
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  log "the sentinel set did not come together (see $DIR/*/redis.log)"
  return 1
}

case "${1:-start}" in
  start)
    install
    mkdir -p "$DIR"
    start_node "$MASTER_PORT"
    start_node "$REPLICA_PORT"
    for p in $SENTINEL_PORTS; do start_node "$p"; done
    wait_whole
    ;;
  stop)
    for p in $MASTER_PORT $REPLICA_PORT $SENTINEL_PORTS; do
      running "$p" && kill -9 "$(cat "$(pidfile "$p")")" 2>/dev/null || true
    done
    ;;
  master) current_master ;;
  kill) running "$2" && kill -9 "$(cat "$(pidfile "$2")")" ;;
  pause) kill -STOP "$(cat "$(pidfile "$2")")" ;;
  resume) kill -CONT "$(cat "$(pidfile "$2")")" ;;
  restart)
    now=$(current_master || true)
    if is_sentinel "$2" || [ "$now" = "$HOST:$2" ] || [ -z "$now" ]; then
      start_node "$2"
    else
      start_node "$2" --replicaof "${now%:*}" "${now#*:}"
    fi
    ;;
  wait-failover)
    for _ in $(seq 300); do
      now=$(current_master || true)
      if [ -n "$now" ] && [ "$now" != "$2" ] && \
        cli "${now#*:}" role 2>/dev/null | head -1 | grep -qx master; then
        echo "$now"; exit 0
      fi
      sleep 0.1
    done
    log "no failover away from $2"; exit 1
    ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac

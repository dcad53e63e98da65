#!/usr/bin/env bash
# A local Redis Cluster for tests and trials: 3 masters and 3 replicas on 127.0.0.1
# (`redis-cli --cluster create ... --cluster-replicas 1`), each node with its own port,
# cluster bus port, data dir and log under a state dir; quick failover
# (cluster-node-timeout 1000 ms, replicas always allowed to fail over), no persistence
# (appendonly no, save ""). Installs redis-server 7 when missing. Waits for observable
# state (CLUSTER INFO, CLUSTER NODES, ROLE), never for a fixed time.
#
#   scripts/redis-cluster.sh start        start what is not running; create the cluster if it was
#                                         never made (idempotent: a healthy cluster is reused); wait
#                                         until cluster_state:ok and all 16384 slots covered
#   scripts/redis-cluster.sh stop         kill every node and remove the state dir
#   scripts/redis-cluster.sh status       CLUSTER INFO (short) and CLUSTER NODES of a live node
#   scripts/redis-cluster.sh nodes        the seed list for REDIS_CLUSTER_NODES (host:port,...)
#   scripts/redis-cluster.sh masters      the live masters, one a line: host:port slot-ranges...
#   scripts/redis-cluster.sh master-of KEY  the host:port of the master owning KEY's slot
#   scripts/redis-cluster.sh kill PORT    kill -9 the node on PORT
#   scripts/redis-cluster.sh restart PORT start the node on PORT again (from its nodes.conf) and
#                                         wait until it is a replica with its link up (or, if no
#                                         other node took its slots, a master again) and the
#                                         cluster is ok
#   scripts/redis-cluster.sh wait-failover PORT  wait until the slots of the (dead) master on
#                                         PORT are served by another node and every live node says
#                                         cluster_state:ok; print that node's host:port
#   scripts/redis-cluster.sh wait-ok      wait until every live node says ok, all slots covered
#   scripts/redis-cluster.sh pid PORT     the pid of the node on PORT
#
# Environment: RC_PORTS (six ports, default "7311 7312 7313 7314 7315 7316", or RC_BASE_PORT
# for six consecutive ones), RC_BUS_PORTS (six cluster bus ports, default each port + 10000),
# RC_DIR (/tmp/courier-redis-cluster), RC_PASSWORD (requirepass and masterauth of every
# node), RC_NODE_TIMEOUT (cluster-node-timeout, 1000 ms), RC_WAIT_SECS (how long the
# waits may take, 60). Tests give each cluster its own ports and dir.
set -euo pipefail

BASE=${RC_BASE_PORT:-7311}
read -r -a PORTS <<<"${RC_PORTS:-$BASE $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) $((BASE + 4)) $((BASE + 5))}"
read -r -a BUS_PORTS <<<"${RC_BUS_PORTS:-}"
DIR=${RC_DIR:-/tmp/courier-redis-cluster}
HOST=127.0.0.1
PASSWORD=${RC_PASSWORD:-}
NODE_TIMEOUT=${RC_NODE_TIMEOUT:-1000}
WAIT_SECS=${RC_WAIT_SECS:-60}

log() { printf '[redis-cluster] %s\n' "$*" >&2; }

[ "${#PORTS[@]}" -eq 6 ] || { log "RC_PORTS must name six ports, got '${PORTS[*]}'"; exit 2; }
if [ "${#BUS_PORTS[@]}" -eq 0 ]; then
  for p in "${PORTS[@]}"; do BUS_PORTS+=("$((p + 10000))"); done
fi
[ "${#BUS_PORTS[@]}" -eq 6 ] || { log "RC_BUS_PORTS must name six ports"; exit 2; }

install() {
  if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    local v
    v=$(redis-server --version | sed -n 's/.* v=\([0-9]*\)\..*/\1/p')
    [ "${v:-0}" -ge 7 ] && return 0
    log "redis-server $v found; Redis 7 is needed (sharded pub/sub, CLUSTER SHARDS)"
    exit 1
  fi
  [ "$(id -u)" -eq 0 ] || { log "need root to install redis-server"; exit 1; }
  log "installing redis-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server redis-tools >/dev/null
}

# redis-cli with the password (if any) through REDISCLI_AUTH, never on the command line.
rcli() { if [ -n "$PASSWORD" ]; then REDISCLI_AUTH=$PASSWORD redis-cli "$@"; else redis-cli "$@"; fi; }
cli() { rcli -h "$HOST" -p "$1" "${@:2}"; } # port, args...
pidfile() { echo "$DIR/$1/redis.pid"; }
pid_of() { local f; f=$(pidfile "$1"); [ -s "$f" ] && cat "$f"; }
running() { local pid; pid=$(pid_of "$1") && kill -0 "$pid" 2>/dev/null; }
bus_of() { local i; for i in "${!PORTS[@]}"; do [ "${PORTS[$i]}" = "$1" ] && { echo "${BUS_PORTS[$i]}"; return 0; }; done; return 1; }
check_port() { bus_of "${1:-}" >/dev/null || { log "not a port of this cluster: '${1:-}' (${PORTS[*]})"; exit 2; }; }
live_ports() { local p; for p in "${PORTS[@]}"; do running "$p" && cli "$p" ping >/dev/null 2>&1 && echo "$p"; done; return 0; }
first_live() { local p; for p in "${PORTS[@]}"; do running "$p" && cli "$p" ping >/dev/null 2>&1 && { echo "$p"; return 0; }; done; return 0; }

# The node's config, written once (the node keeps its cluster state in nodes.conf beside it).
write_conf() { # port
  local port=$1 conf="$DIR/$1/node.conf"
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
    echo "cluster-enabled yes"
    echo "cluster-config-file nodes.conf"
    echo "cluster-port $(bus_of "$port")"
    echo "cluster-node-timeout $NODE_TIMEOUT"
    # A replica may always take over, however long its link was down (tests kill masters).
    echo "cluster-replica-validity-factor 0"
    echo "repl-diskless-sync-delay 0" # a rejoining replica syncs at once
    echo "appendonly no"
    echo 'save ""'
    if [ -n "$PASSWORD" ]; then echo "requirepass $PASSWORD"; echo "masterauth $PASSWORD"; fi
  } >"$conf"
}

start_node() { # port
  local port=$1
  running "$port" && return 0
  write_conf "$port"
  redis-server "$DIR/$port/node.conf" >/dev/null 9>&- # the daemon must not hold the start lock
  for _ in $(seq 100); do cli "$port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "node $port did not start (see $DIR/$port/redis.log)"
  return 1
}

info_field() { # port field: a field of CLUSTER INFO
  cli "$1" cluster info 2>/dev/null | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2; exit }'
}

# Whether every live node says cluster_state:ok with all slots assigned and ok, and knows
# all six nodes.
healthy() {
  local p n=0
  for p in $(live_ports); do
    [ "$(info_field "$p" cluster_state)" = ok ] || return 1
    [ "$(info_field "$p" cluster_slots_ok)" = 16384 ] || return 1
    [ "$(info_field "$p" cluster_known_nodes)" = 6 ] || return 1
    n=$((n + 1))
  done
  [ "$n" -gt 0 ]
}

wait_for() { # description, command...
  local what=$1; shift
  local deadline=$((SECONDS + WAIT_SECS))
  until "$@"; do
    ((SECONDS < deadline)) || { log "$what: not within $WAIT_SECS s (see $DIR/*/redis.log)"; return 1; }
    sleep 0.1
  done
}

# Whether a cluster was ever created here: some node knows more than itself.
created() {
  local p
  for p in $(live_ports); do
    [ "$(info_field "$p" cluster_known_nodes)" -gt 1 ] 2>/dev/null && return 0
  done
  return 1
}

# CLUSTER NODES of a live node, without the bus port: id addr flags master-id ... slots...
cluster_nodes() {
  local p
  p=$(first_live)
  [ -n "$p" ] || { log "no node of the cluster answers"; return 1; }
  cli "$p" cluster nodes | tr -d '\r' | sed 's/@[0-9]*//'
}

masters() {
  cluster_nodes | awk '$3 ~ /master/ && $3 !~ /fail/ && NF > 8 { printf "%s", $2; for (i = 9; i <= NF; i++) printf " %s", $i; print "" }'
}

# Whether the node on PORT serves as a replica with its link up, or as a master of slots.
rejoined() { # port
  local role
  role=$(cli "$1" role 2>/dev/null | head -n1 | tr -d '\r')
  if [ "$role" = slave ]; then
    cli "$1" info replication 2>/dev/null | grep -q 'master_link_status:up' || return 1
  elif [ "$role" = master ]; then
    [ "$(cli "$1" cluster nodes | tr -d '\r' | awk '$3 ~ /myself/ { print NF }')" -gt 8 ] || return 1
  else
    return 1
  fi
  # Every other node sees it again (its fail flag cleared).
  local p
  for p in $(live_ports); do
    [ "$p" = "$1" ] && continue
    cli "$p" cluster nodes | tr -d '\r' | sed 's/@[0-9]*//' | awk -v a="$HOST:$1" '$2 == a && $3 !~ /fail/ { ok = 1 } END { exit !ok }' || return 1
  done
  healthy
}

# Whether nothing is owned by the node on PORT any more and the cluster is ok again.
failed_over() { # port
  healthy || return 1
  [ -z "$(cluster_nodes | awk -v a="$HOST:$1" '$2 == a && NF > 8')" ]
}

# The live master serving SLOT, as host:port.
owner_of_slot() { # slot
  masters | awk -v s="$1" '{ for (i = 2; i <= NF; i++) { n = split($i, r, "-"); lo = r[1]; hi = (n > 1 ? r[2] : r[1]); if (s + 0 >= lo + 0 && s + 0 <= hi + 0) { print $1; exit } } }'
}

# The master now serving the slots the node on PORT served when `kill` killed it (kill
# writes the first of them beside the node's data).
successor() { # port
  local f="$DIR/$1/killed-slot"
  [ -s "$f" ] || { log "node $1 was no master when killed (or not killed with this script): no slots to follow"; return 1; }
  owner_of_slot "$(cat "$f")"
}

cmd="${1:-start}"
case "$cmd" in
  start)
    install
    mkdir -p "$DIR"
    exec 9>"$DIR/.lock"
    flock 9 # one start at a time (test files may start it concurrently)
    for p in "${PORTS[@]}"; do start_node "$p"; done
    if ! created; then
      log "creating the cluster on ${PORTS[*]}"
      args=()
      for p in "${PORTS[@]}"; do args+=("$HOST:$p"); done
      out="$DIR/create.out"
      rcli --cluster create "${args[@]}" --cluster-replicas 1 --cluster-yes >"$out" 2>&1 \
        || { log "redis-cli --cluster create failed:"; tail -n 20 "$out" >&2; exit 1; }
    fi
    wait_for "cluster_state:ok on every node, all slots covered" healthy
    masters >"$DIR/masters"
    [ "$(wc -l <"$DIR/masters")" -eq 3 ] || log "warning: $(wc -l <"$DIR/masters") masters: $(tr '\n' ' ' <"$DIR/masters")"
    ;;
  stop)
    for p in "${PORTS[@]}"; do
      pid=$(pid_of "$p" || true)
      [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    done
    for p in "${PORTS[@]}"; do
      pid=$(pid_of "$p" || true)
      gone() { ! kill -0 "$pid" 2>/dev/null; }
      [ -z "$pid" ] || wait_for "node $p (pid $pid) gone" gone
    done
    rm -rf "$DIR"
    ;;
  status)
    p=$(first_live)
    [ -n "$p" ] || { log "no node of the cluster runs (${PORTS[*]})"; exit 1; }
    cli "$p" cluster info | tr -d '\r' | grep -E '^cluster_(state|slots_assigned|slots_ok|slots_pfail|slots_fail|known_nodes|size|current_epoch):'
    cli "$p" cluster nodes | tr -d '\r' | sed 's/@[0-9]*//' | sort -k2
    ;;
  nodes)
    (IFS=,; out=(); for p in "${PORTS[@]}"; do out+=("$HOST:$p"); done; echo "${out[*]}")
    ;;
  masters) masters ;;
  master-of)
    [ -n "${2:-}" ] || { log "master-of KEY"; exit 2; }
    owner_of_slot "$(cli "$(first_live)" cluster keyslot "$2" | tr -d '\r')"
    ;;
  kill)
    check_port "${2:-}"
    running "$2" || { log "node $2 is not running"; exit 1; }
    # Its first slot (none for a replica), for wait-failover: which node takes it over.
    cluster_nodes | awk -v a="$HOST:$2" '$2 == a && NF > 8 { split($9, r, "-"); print r[1] }' >"$DIR/$2/killed-slot"
    pid=$(pid_of "$2")
    kill -9 "$pid"
    gone() { ! kill -0 "$pid" 2>/dev/null; }
    wait_for "node $2 (pid $pid) gone" gone
    log "killed node $2 (pid $pid)"
    ;;
  restart)
    check_port "${2:-}"
    start_node "$2"
    wait_for "node $2 back in the cluster" rejoined "$2"
    ;;
  wait-failover)
    check_port "${2:-}"
    wait_for "the slots of $2 served by another node, cluster ok" failed_over "$2"
    successor "$2"
    ;;
  wait-ok) wait_for "cluster_state:ok on every node, all slots covered" healthy ;;
  pid) check_port "${2:-}"; pid_of "$2" ;;
  *) sed -n '2,32p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

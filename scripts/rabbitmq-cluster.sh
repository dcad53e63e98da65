#!/usr/bin/env bash
# A local 3-node RabbitMQ cluster on one machine, for the cluster fault tests
# (tests/e2e/fault-rabbitmq-cluster.test.mjs, on a cluster of its own, and
# fault-rabbitmq-cluster.chaos.mjs, `scripts/bench.sh cluster-chaos`).
#
# Nodes <name>1@localhost .. <name>3@localhost (default courier-c1..3), each with its
# own AMQP port (default 5681..5683), Erlang distribution port (25681..25683), data and
# log directories under the state directory, no plugins (management off), and the one
# Erlang cookie of the rabbitmq user (the Debian package's, as scripts/services.sh
# installs it). Nodes 2 and 3 join node 1 as they first boot (classic peer
# discovery), else by `join_cluster`. Tests isolate themselves with
# a vhost each, or with a cluster of their own (other name, ports and directory).
#
#   scripts/rabbitmq-cluster.sh start         start what is not running, join, print the URIs (idempotent)
#   scripts/rabbitmq-cluster.sh uris [VHOST]  the comma-separated AMQP URIs (guest, VHOST default /)
#   scripts/rabbitmq-cluster.sh status        cluster_status of node 1
#   scripts/rabbitmq-cluster.sh kill N        kill -9 node N's Erlang VM (its beam process)
#   scripts/rabbitmq-cluster.sh start-node N  start node N again and wait until it runs in the cluster
#   scripts/rabbitmq-cluster.sh pid N         the OS pid of node N's Erlang VM
#   scripts/rabbitmq-cluster.sh node N        node N's name;   port N: its AMQP port
#   scripts/rabbitmq-cluster.sh stop          stop every node and remove the state directory
#
# Environment: COURIER_RMQ_CLUSTER_DIR (default /tmp/courier-rmq-cluster),
# COURIER_RMQ_CLUSTER_NAME (node name prefix, default courier-c),
# COURIER_RMQ_CLUSTER_PORT (first AMQP port, default 5681; distribution ports are 20000 higher),
# or COURIER_RMQ_CLUSTER_PORTS and COURIER_RMQ_CLUSTER_DIST_PORTS (the three AMQP and the
# three distribution ports, space-separated),
# COURIER_RMQ_CLUSTER_IPS (space-separated listen address per node, default 127.0.0.1 each).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${COURIER_RMQ_CLUSTER_DIR:-/tmp/courier-rmq-cluster}"
name="${COURIER_RMQ_CLUSTER_NAME:-courier-c}"
base="${COURIER_RMQ_CLUSTER_PORT:-5681}"
read -r -a ips <<<"${COURIER_RMQ_CLUSTER_IPS:-127.0.0.1 127.0.0.1 127.0.0.1}"
read -r -a ports <<<"${COURIER_RMQ_CLUSTER_PORTS:-$base $((base + 1)) $((base + 2))}"
read -r -a dist_ports <<<"${COURIER_RMQ_CLUSTER_DIST_PORTS:-$((ports[0] + 20000)) $((ports[1] + 20000)) $((ports[2] + 20000))}"
nodes=(1 2 3)

log() { printf '[rabbitmq-cluster] %s\n' "$*" >&2; }
node() { printf '%s%s@localhost' "$name" "$1"; }
port() { printf '%s' "${ports[$(($1 - 1))]}"; }
dist_port() { printf '%s' "${dist_ports[$(($1 - 1))]}"; }
ip() { printf '%s' "${ips[$(($1 - 1))]:-127.0.0.1}"; }
ctl() { local n="$1"; shift; rabbitmqctl -q -n "$(node "$n")" "$@"; }
ndir() { printf '%s/%s' "$dir" "$1"; }
pidfile() { printf '%s/rabbit.pid' "$(ndir "$1")"; }

check_n() {
  case "${1:-}" in 1 | 2 | 3) ;; *) log "node number 1, 2 or 3 expected, got '${1:-}'"; exit 2 ;; esac
}

install_rabbitmq() {
  if ! command -v rabbitmq-server >/dev/null 2>&1; then
    log "rabbitmq-server missing: installing it with scripts/services.sh"
    "$here/services.sh" >&2
  fi
}

# The OS pid of node N's VM (pid file, written by the node), or nothing.
vm_pid() {
  local f pid
  f="$(pidfile "$1")"
  [[ -s "$f" ]] || return 0
  pid="$(head -n1 "$f" | tr -d '[:space:]')"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && printf '%s' "$pid"
  return 0
}

running() { [[ -n "$(vm_pid "$1")" ]] && ctl "$1" status >/dev/null 2>&1; }

boot() {
  local n="$1" d
  d="$(ndir "$n")"
  mkdir -p "$d/mnesia" "$d/log"
  printf '[].\n' >"$d/enabled_plugins"
  if [[ "$(id -u)" == 0 ]]; then chown -R rabbitmq:rabbitmq "$dir"; fi
  log "starting $(node "$n") on $(ip "$n"):$(port "$n")"
  (
    cd "$d"
    env RABBITMQ_NODENAME="$(node "$n")" \
      RABBITMQ_NODE_IP_ADDRESS="$(ip "$n")" \
      RABBITMQ_NODE_PORT="$(port "$n")" \
      RABBITMQ_DIST_PORT="$(dist_port "$n")" \
      RABBITMQ_MNESIA_BASE="$d/mnesia" \
      RABBITMQ_LOG_BASE="$d/log" \
      RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" \
      RABBITMQ_PID_FILE="$(pidfile "$n")" \
      RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
      RABBITMQ_SERVER_START_ARGS="" \
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="" \
      rabbitmq-server -detached >/dev/null 2>&1
  )
  if ! rabbitmqctl -q -n "$(node "$n")" wait "$(pidfile "$n")" --timeout 90 >/dev/null 2>&1 ||
    ! ctl "$n" await_startup --timeout 90 >/dev/null 2>&1; then
    log "$(node "$n") did not start; its log:"
    tail -n 30 "$d"/log/*.log >&2 2>/dev/null || true
    exit 1
  fi
}

# Whether node N runs as a member of node 1's cluster.
clustered() {
  local out
  out="$(ctl 1 cluster_status --formatter json 2>/dev/null)" || return 1
  grep -q "\"$(node "$1")\"" <<<"$(sed -n 's/.*"running_nodes":\[\([^]]*\)\].*/\1/p' <<<"$out")"
}

join() {
  local n="$1"
  clustered "$n" && return 0
  log "joining $(node "$n") to $(node 1)"
  # The CLI prints the node's own log lines while it joins: keep them in the node's log.
  local out="$(ndir "$n")/log/join.out"
  {
    ctl "$n" stop_app && ctl "$n" reset && ctl "$n" join_cluster "$(node 1)" &&
      ctl "$n" start_app && ctl "$n" await_startup --timeout 90
  } >"$out" 2>&1 || { log "joining $(node "$n") failed:"; tail -n 20 "$out" >&2; exit 1; }
}

uris() {
  local vhost="${1:-/}" enc out=()
  enc="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$vhost")"
  for n in "${nodes[@]}"; do out+=("amqp://guest:guest@$(ip "$n"):$(port "$n")/$enc"); done
  (IFS=,; printf '%s\n' "${out[*]}")
}

# Starts node N (after a kill) and waits until it runs in the cluster again.
start_node() {
  local n="$1"
  if running "$n"; then
    ctl "$n" start_app >/dev/null 2>&1 || true
  else
    boot "$n"
  fi
  local deadline=$((SECONDS + 90))
  until clustered "$n"; do
    ((SECONDS < deadline)) || { log "$(node "$n") did not rejoin within 90 s"; exit 1; }
    sleep 0.5
  done
}

cmd="${1:-start}"
case "$cmd" in
  start)
    install_rabbitmq
    mkdir -p "$dir"
    # The config file (loopback-only distribution is left to the defaults; guest may
    # log in from 127.0.0.1 only, which is where the tests run). A node booting for the
    # first time joins node 1 by itself (classic peer discovery), without the
    # stop_app/reset/start_app of a late join.
    for n in "${nodes[@]}"; do
      mkdir -p "$(ndir "$n")"
      {
        printf 'loopback_users = none\n'
        if [[ "$n" != 1 ]]; then
          printf 'cluster_formation.peer_discovery_backend = classic_config\n'
          printf 'cluster_formation.classic_config.nodes.1 = %s\n' "$(node 1)"
        fi
      } >"$(ndir "$n")/rabbitmq.conf"
    done
    for n in "${nodes[@]}"; do running "$n" || boot "$n"; done
    for n in 2 3; do join "$n"; done
    uris
    ;;
  uris) uris "${2:-/}" ;;
  status) ctl 1 cluster_status ;;
  kill)
    check_n "${2:-}"
    pid="$(vm_pid "$2")"
    if [[ -z "$pid" ]]; then log "$(node "$2") is not running"; exit 1; fi
    kill -9 "$pid"
    log "killed $(node "$2") (pid $pid)"
    ;;
  start-node) check_n "${2:-}"; start_node "$2" ;;
  pid) check_n "${2:-}"; vm_pid "$2"; echo ;;
  node) check_n "${2:-}"; node "$2"; echo ;;
  port) check_n "${2:-}"; port "$2"; echo ;;
  stop)
    for n in "${nodes[@]}"; do
      if running "$n"; then ctl "$n" stop >/dev/null 2>&1 || true; fi
      pid="$(vm_pid "$n")"
      [[ -n "$pid" ]] && kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$dir"
    ;;
  *)
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac

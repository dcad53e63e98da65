#!/usr/bin/env bash
# A throwaway 3-node RabbitMQ cluster whose nodes each run in a network namespace of their
# own, for the partition fault test (tests/e2e/fault-rabbitmq-partition.test.mjs): a node
# can then be cut off (its link down) while it keeps running, instead of being killed.
#
# Layout for id ID and network NET (a /24 prefix such as 10.213.47):
#   bridge cpb-ID on the host with NET.254/24 (Courier and the CLI reach the nodes through it);
#   namespace courier-part-ID-N (N = 1..3) with loopback up and veth cpn-ID-N = NET.N/24,
#   whose host end cph-ID-N is a port of the bridge;
#   node courier-pID-N@NET.N (long names), AMQP on NET.N:5672, its own epmd inside its
#   namespace, data and logs in DIR/N; `cluster_partition_handling = pause_minority` and
#   `net_ticktime` of COURIER_RMQ_NETNS_TICK seconds (default 4), so that a cut node is
#   noticed in seconds and a healed partition merges back by itself.
#
#   scripts/rabbitmq-netns.sh start        make the network, start and join the nodes, print the URIs
#   scripts/rabbitmq-netns.sh uris [VHOST] the comma-separated AMQP URIs (guest; query QUERY appended)
#   scripts/rabbitmq-netns.sh node N       node N's name
#   scripts/rabbitmq-netns.sh ctl N ARGS   rabbitmqctl ARGS on node N (long names)
#   scripts/rabbitmq-netns.sh cut N        node N's link down (host end): alive, unreachable
#   scripts/rabbitmq-netns.sh heal N       node N's link up again
#   scripts/rabbitmq-netns.sh stop         kill the nodes, delete namespaces, veths, bridge, DIR
#
# Environment: COURIER_RMQ_NETNS_ID (required, 1-6 of [a-z0-9]), COURIER_RMQ_NETNS_NET
# (required but by `stop`, e.g. 10.213.47), COURIER_RMQ_NETNS_DIR (default /tmp/courier-rmq-netns-ID),
# COURIER_RMQ_NETNS_TICK (net_ticktime, s), COURIER_RMQ_NETNS_CTL_TIMEOUT (s, default 120),
# COURIER_RMQ_NETNS_KEEP_LOGS (non-empty: `stop` keeps the node logs in DIR.logs). Needs
# root (ip netns) and iproute2 (installed when missing, as RabbitMQ is by
# scripts/services.sh). Safe to run in parallel with other ids.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
id="${COURIER_RMQ_NETNS_ID:-}"
net="${COURIER_RMQ_NETNS_NET:-}"
[[ "$id" =~ ^[a-z0-9]{1,6}$ ]] || { echo "[rabbitmq-netns] COURIER_RMQ_NETNS_ID: 1-6 of [a-z0-9] expected" >&2; exit 2; }
# (`stop` needs the id only: a sweep knows no more.)
[[ "${1:-}" == stop || "$net" =~ ^10\.[0-9]{1,3}\.[0-9]{1,3}$ ]] ||
  { echo "[rabbitmq-netns] COURIER_RMQ_NETNS_NET: 10.X.Y expected" >&2; exit 2; }
dir="${COURIER_RMQ_NETNS_DIR:-/tmp/courier-rmq-netns-$id}"
tick="${COURIER_RMQ_NETNS_TICK:-4}"
nodes=(1 2 3)
bridge="cpb-$id"

log() { printf '[rabbitmq-netns %s] %s\n' "$id" "$*" >&2; }
ns() { printf 'courier-part-%s-%s' "$id" "$1"; }
node() { printf 'courier-p%s-%s@%s.%s' "$id" "$1" "$net" "$1"; }
ndir() { printf '%s/%s' "$dir" "$1"; }
# rabbitmqctl on node N, from the host (long names; the nodes reach the CLI's host name
# through the bridge address, see `network`).
ctl() {
  local n="$1"; shift
  # `timeout` signals its whole process group: the CLI's VM under su goes too.
  timeout -k 2 "${COURIER_RMQ_NETNS_CTL_TIMEOUT:-120}" env RABBITMQ_USE_LONGNAME=true \
    RABBITMQ_CTL_ERL_ARGS="-kernel net_ticktime $tick" rabbitmqctl -q -l -n "$(node "$n")" "$@"
}

check_n() {
  case "${1:-}" in 1 | 2 | 3) ;; *) log "node number 1, 2 or 3 expected, got '${1:-}'"; exit 2 ;; esac
}

# The names the host's CLI nodes may carry after the @ (Erlang long names add a domain:
# the resolver's, else `localdomain`).
host_names() {
  local h dom
  h="$(hostname)"
  dom="$(sed -n 's/^\(domain\|search\)[[:space:]]\+\([^[:space:]]\+\).*/\2/p' /etc/resolv.conf 2>/dev/null | head -n1)"
  printf '%s %s %s.localdomain%s' "$h" "$(hostname -f 2>/dev/null || printf '%s' "$h")" "$h" "${dom:+ $h.$dom}"
}

network() {
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$net.254/24" dev "$bridge"
  fi
  ip link set "$bridge" up
  for n in "${nodes[@]}"; do
    local s h="cph-$id-$n" c="cpn-$id-$n"
    s="$(ns "$n")"
    [[ -e "/run/netns/$s" ]] || ip netns add "$s"
    # `ip netns exec` puts /etc/netns/NS/hosts over /etc/hosts: inside the namespace the
    # host's name is the bridge address, where a CLI (node NAME@host) answers the nodes.
    mkdir -p "/etc/netns/$s"
    printf '127.0.0.1 localhost\n%s %s\n' "$net.254" "$(host_names)" >"/etc/netns/$s/hosts"
    ip -n "$s" link set lo up
    if ! ip link show "$h" >/dev/null 2>&1; then
      ip link add "$h" type veth peer name "$c"
      ip link set "$c" netns "$s"
      ip -n "$s" addr add "$net.$n/24" dev "$c"
      ip link set "$h" master "$bridge"
    fi
    ip -n "$s" link set "$c" up
    ip link set "$h" up
  done
}

boot() {
  local n="$1" d
  d="$(ndir "$n")"
  mkdir -p "$d/mnesia" "$d/log"
  printf '[].\n' >"$d/enabled_plugins"
  printf '%s\n' 'loopback_users = none' 'cluster_partition_handling = pause_minority' >"$d/rabbitmq.conf"
  # Nodes 2 and 3 join node 1 as they boot (a fresh node: `join` below is the fallback).
  if [[ "$n" != 1 ]]; then
    printf '%s\n' 'cluster_formation.peer_discovery_backend = classic_config' \
      "cluster_formation.classic_config.nodes.1 = $(node 1)" >>"$d/rabbitmq.conf"
  fi
  chown -R rabbitmq:rabbitmq "$d"
  log "starting $(node "$n") in $(ns "$n")"
  (
    cd "$d"
    ip netns exec "$(ns "$n")" env RABBITMQ_NODENAME="$(node "$n")" RABBITMQ_USE_LONGNAME=true \
      RABBITMQ_NODE_IP_ADDRESS="$net.$n" RABBITMQ_NODE_PORT=5672 RABBITMQ_DIST_PORT=25672 \
      RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log" \
      RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" RABBITMQ_PID_FILE="$d/rabbit.pid" \
      RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" RABBITMQ_SERVER_START_ARGS="" \
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel net_ticktime $tick" \
      RABBITMQ_CTL_ERL_ARGS="-kernel net_ticktime $tick" \
      rabbitmq-server -detached >/dev/null 2>&1
  )
  if ! ctl "$n" wait "$d/rabbit.pid" --timeout 90 >/dev/null 2>&1 ||
    ! ctl "$n" await_startup --timeout 90 >/dev/null 2>&1; then
    log "$(node "$n") did not start; its log:"
    tail -n 30 "$d"/log/*.log >&2 2>/dev/null || true
    exit 1
  fi
}

running() { ctl "$1" status >/dev/null 2>&1; }

clustered() {
  local out
  out="$(ctl 1 cluster_status --formatter json 2>/dev/null)" || return 1
  grep -q "\"$(node "$1")\"" <<<"$(sed -n 's/.*"running_nodes":\[\([^]]*\)\].*/\1/p' <<<"$out")"
}

join() {
  local n="$1" out
  clustered "$n" && return 0
  log "joining $(node "$n") to $(node 1)"
  out="$(ndir "$n")/log/join.out"
  {
    ctl "$n" stop_app && ctl "$n" reset && ctl "$n" join_cluster "$(node 1)" &&
      ctl "$n" start_app && ctl "$n" await_startup --timeout 90
  } >"$out" 2>&1 || { log "joining $(node "$n") failed:"; tail -n 20 "$out" >&2; exit 1; }
}

uris() {
  local vhost="${1:-/}" enc out=() q="${QUERY:-}"
  enc="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$vhost")"
  for n in "${nodes[@]}"; do out+=("amqp://guest:guest@$net.$n:5672/$enc${q:+?$q}"); done
  (IFS=,; printf '%s\n' "${out[*]}")
}

stop_all() {
  for n in "${nodes[@]}"; do
    local s
    s="$(ns "$n")"
    if [[ -e "/run/netns/$s" ]]; then
      # Every process of the namespace (the node's VM, its epmd, heart): killed, so that
      # nothing keeps the namespace (and with it the veth) alive after its name is gone.
      for pid in $(ip netns pids "$s" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$s" 2>/dev/null || true
    fi
    rm -rf "/etc/netns/$s"
    ip link del "cph-$id-$n" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
  if [[ -n "${COURIER_RMQ_NETNS_KEEP_LOGS:-}" && -d "$dir" ]]; then
    mkdir -p "$dir.logs"
    for n in "${nodes[@]}"; do cp -r "$(ndir "$n")/log" "$dir.logs/$n" 2>/dev/null || true; done
    log "node logs kept in $dir.logs"
  fi
  rm -rf "$dir"
}

cmd="${1:-start}"
case "$cmd" in
  start)
    if ! command -v rabbitmq-server >/dev/null 2>&1; then "$here/services.sh" >&2; fi
    if ! command -v ip >/dev/null 2>&1; then
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
    fi
    mkdir -p "$dir"
    network
    running 1 || boot 1
    # Nodes 2 and 3 boot side by side (in the background; each exits non-zero on failure).
    pids=()
    for n in 2 3; do running "$n" || { boot "$n" & pids+=("$!"); }; done
    for p in "${pids[@]}"; do wait "$p"; done
    for n in 2 3; do join "$n"; done
    uris
    ;;
  uris) uris "${2:-/}" ;;
  node) check_n "${2:-}"; node "$2"; echo ;;
  ctl) check_n "${2:-}"; n="$2"; shift 2; ctl "$n" "$@" ;;
  cut) check_n "${2:-}"; ip link set "cph-$id-$2" down; log "cut $(node "$2") off" ;;
  heal) check_n "${2:-}"; ip link set "cph-$id-$2" up; log "healed $(node "$2")" ;;
  stop) stop_all ;;
  *) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

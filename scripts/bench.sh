#!/usr/bin/env bash
# Load benchmark of Courier on this machine (everything on 127.0.0.1).
#
#   scripts/bench.sh SCENARIO [bench options...]
#
# SCENARIO: throughput | latency | groups | idle | search | soak | chaos | cluster-chaos | flood | push. Examples:
#   scripts/bench.sh throughput                      # 1,000 recipients, max rate, 60 s, split mode
#   scripts/bench.sh throughput --rate 5000          # fixed offered rate
#   scripts/bench.sh latency                         # 1,000 msg/s offered, 30 s
#   scripts/bench.sh groups                          # groups of 10, delivered events/s
#   scripts/bench.sh groups --sizes 100,1000,5000    # one large group per size, 10 % online
#   scripts/bench.sh groups --sizes 100,1000 --online-count 50 --churn  # 50 online at each size; join/leave/rename
#   scripts/bench.sh idle --sockets 10000            # idle sockets on one gateway
#   scripts/bench.sh latency --mode both             # split, then the all-in-one `courier`
#   scripts/bench.sh search                          # 1,000,000 messages, search latency + plans
#   scripts/bench.sh soak --duration 3600            # 600 msg/s for an hour, sampled every minute
#   scripts/bench.sh chaos                           # 500 msg/s for 30 min, a fault every 1-3 min
#   scripts/bench.sh cluster-chaos --rounds 5 --secs 120  # kill -9 the leading RabbitMQ node of a 3-node cluster, 5 times
#   scripts/bench.sh flood                           # a bystander's latency under an event flood
#   scripts/bench.sh push --users 2000 --rate 200    # Web Push notifications/s, pusher CPU per push
#   scripts/bench.sh latency --tls                   # plaintext, then all three services over TLS
# `bench --help` (bench/target/release/bench --help) lists every option; soak and chaos
# run tests/e2e/endurance.mjs, flood tests/e2e/flood-bench.mjs (Node, socket.io-client),
# push tests/e2e/push-bench.mjs (a local Web Push receiver), whose headers list their options.
#
# Starts PostgreSQL, Redis and RabbitMQ if needed (scripts/services.sh), builds the
# Courier release binaries and the bench, then runs the scenario. Each run uses a
# fresh database, Redis prefix and RabbitMQ vhost, removed afterwards. Figures are
# printed and written to bench-results/<scenario>-<mode>-<timestamp>.json.
#
# Environment: COURIER_BIN_DIR=dir uses prebuilt Courier binaries from there (no build);
# BENCH_SKIP_BUILD=1 skips both builds. Exit status: 0 all targets met, 3 some target
# missed (figures still written), anything else: the run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

[ $# -ge 1 ] || { sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

bash scripts/services.sh

# cluster-chaos: tests/e2e/fault-rabbitmq-cluster.chaos.mjs with release binaries, longer
# and repeated (--rounds N, --secs S, --rate R msg/s); each round prints a `cluster-fault`
# line (refused and dark windows) and must pass.
if [ "$1" = cluster-chaos ]; then
  shift
  rounds=3 secs=120 rate=400
  while [ $# -gt 0 ]; do
    case $1 in
      --rounds) rounds=$2; shift 2 ;;
      --secs) secs=$2; shift 2 ;;
      --rate) rate=$2; shift 2 ;;
      *) echo "cluster-chaos: unknown option $1" >&2; exit 2 ;;
    esac
  done
  [ "${BENCH_SKIP_BUILD:-0}" = 1 ] || [ -n "${COURIER_BIN_DIR:-}" ] || cargo build --release --bins --quiet
  [ -d tests/e2e/node_modules ] || (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
  export COURIER_BIN_DIR; COURIER_BIN_DIR=$(realpath "${COURIER_BIN_DIR:-target/release}")
  bash scripts/rabbitmq-cluster.sh start >/dev/null
  mkdir -p bench-results
  out=bench-results/cluster-chaos-$(date -u +%Y%m%dT%H%M%SZ).txt
  for i in $(seq 1 "$rounds"); do
    echo "[bench.sh] cluster-chaos round $i/$rounds" >&2
    (cd tests/e2e && COURIER_CLUSTER_SECS=$secs COURIER_CLUSTER_RATE=$rate \
      COURIER_FAULT_STREAM_DEADLINE_MS=$(((secs + 60) * 1000)) node --test fault-rabbitmq-cluster.chaos.mjs) |
      tee -a "$out" | grep -E '^# (cluster-fault|fault-summary)|^(not )?ok' || true
    grep -q '^not ok' "$out" && { echo "[bench.sh] round $i failed, see $out" >&2; exit 1; }
  done
  echo "[bench.sh] figures in $out" >&2
  exit 0
fi

# soak, chaos, flood and push: release binaries on PostgreSQL, Redis and RabbitMQ instances of the
# run's own (restarted by chaos), driven by the end-to-end harness's real clients.
case $1 in soak | chaos | flood | push)
  scenario=$1; shift
  [ "${BENCH_SKIP_BUILD:-0}" = 1 ] || [ -n "${COURIER_BIN_DIR:-}" ] || cargo build --release --bins --quiet
  [ -d tests/e2e/node_modules ] || (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  export COURIER_BIN_DIR; COURIER_BIN_DIR=$(realpath "${COURIER_BIN_DIR:-target/release}")
  [ "$scenario" = flood ] && exec node tests/e2e/flood-bench.mjs --out bench-results "$@"
  [ "$scenario" = push ] && exec node tests/e2e/push-bench.mjs --out bench-results "$@"
  exec node --max-old-space-size=8192 tests/e2e/endurance.mjs "$scenario" --out bench-results "$@" ;;
esac

bin_dir=${COURIER_BIN_DIR:-target/release}
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  if [ -z "${COURIER_BIN_DIR:-}" ]; then
    echo "[bench.sh] building Courier (release)" >&2
    cargo build --release --bins --quiet
  fi
  echo "[bench.sh] building the bench (release)" >&2
  cargo build --release --quiet --manifest-path bench/Cargo.toml
fi

# Room for 10,000 sockets on each side (the Courier processes inherit it).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# `--mode both` runs the scenario twice: split, then single. `--tls` runs each mode
# twice in one go: plaintext, then PostgreSQL, Redis and RabbitMQ over verified TLS
# (scripts/bench-tls.sh adds TLS listeners to the same servers for the run).
args=() modes=() transports=(plain)
while [ $# -gt 0 ]; do
  if [ "$1" = --mode ] && [ $# -ge 2 ]; then
    case $2 in both) modes=(split single) ;; *) modes=("$2") ;; esac
    shift 2
  elif [ "$1" = --tls ]; then
    transports=(plain tls); shift
  else
    args+=("$1"); shift
  fi
done
[ ${#modes[@]} -gt 0 ] || modes=(split)

if [ "${transports[*]}" = "plain tls" ]; then
  pki=$(mktemp -d /tmp/courier-bench-pki-XXXXXX)
  trap 'bash scripts/bench-tls.sh down "$pki"' EXIT
  bash scripts/bench-tls.sh up "$pki"
fi

status=0
for mode in "${modes[@]}"; do
  for transport in "${transports[@]}"; do
    tls_args=()
    [ "$transport" = plain ] || tls_args=(--tls-ca "$pki/ca.pem" --redis-tls-port 6390 --amqps-port 5671)
    rc=0
    bench/target/release/bench "${args[@]}" "${tls_args[@]}" --mode "$mode" --bin-dir "$bin_dir" || rc=$?
    [ "$rc" -le "$status" ] || status=$rc
  done
done
exit "$status"

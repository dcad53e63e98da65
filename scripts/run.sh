#!/usr/bin/env bash
# Runs Courier on this machine: services (installed and started if missing), a
# release build, the demo web app (scripts/build-web.sh), migrations, then `courier` (API + worker + gateway on PORT, 3000).
# Configuration comes from .env (created from .env.example with a fresh JWT secret).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f .env ]; then
  secret=$(head -c 32 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
  sed "s/^JWT_SECRET=.*/JWT_SECRET=$secret/" .env.example > .env
  echo "[run] wrote .env from .env.example with a new JWT_SECRET"
fi
set -a; . ./.env; set +a

bash scripts/services.sh
cargo build --release --bins --quiet
bash scripts/build-web.sh   # the demo web app, served at /app/
./target/release/courier migrate
echo "[run] courier on http://127.0.0.1:${PORT:-3000} (REST, /socket.io, /healthz, /readyz; the demo app at /app)"
exec ./target/release/courier

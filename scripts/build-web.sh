#!/usr/bin/env bash
# Builds the SDK (clients/js) and the demo web app (clients/web) into clients/web/dist,
# which api and courier serve at /app/ (WEB_APP_DIR). npm ci from the committed lock
# files; idempotent and quiet (npm ci is skipped while node_modules matches the lock).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v npm >/dev/null 2>&1 || {
  echo "[build-web] npm is missing: apt-get install -y nodejs npm (Node 20+)" >&2
  exit 1
}

# npm ci in $1 unless node_modules was installed from the same lock file.
npm_ci() {
  local dir=$1 stamp=$1/node_modules/.courier-lock
  if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then return; fi
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$dir/package-lock.json" "$stamp"
}

npm_ci clients/js
(cd clients/js && npm run --silent build >/dev/null)
npm_ci clients/web
(cd clients/web && npm run --silent build)

#!/usr/bin/env bash
# Installs Debian's Chromium for the demo web app's browser test (tests/e2e/webapp.test.mjs,
# driven by playwright-core, which never downloads a browser). Idempotent and quiet.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "[browser] /usr/bin/chromium is missing: run as root, or apt-get install -y chromium" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
}

#!/usr/bin/env bash
# Installs Debian's Chromium (and a colour emoji font, for the app's reaction buttons in
# screenshots) for the demo web app's browser test (tests/e2e/webapp.test.mjs, driven by
# playwright-core, which never downloads a browser). Idempotent and quiet.
set -euo pipefail

pkgs=(chromium fonts-noto-color-emoji)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "[browser] missing ${missing[*]}: run as root, or apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

#!/bin/sh
# Entrypoint of the Kong container in docker-compose.yml.
#
# Kong's jwt credential secret cannot be a {vault://...} reference, so kong.yml carries the
# placeholder {vault://env/courier-jwt-secret} and this script replaces it with
# $COURIER_JWT_SECRET (Courier's JWT_SECRET) in a private copy, then starts Kong on that copy
# through the image's own entrypoint. The placeholder is replaced literally (no sed or regex),
# so the secret may contain any character except a double quote, a backslash or a newline
# (it sits inside a double-quoted YAML string).
#
#   KONG_TEMPLATE             the file to render (default /opt/courier-kong/kong.yml)
#   KONG_DECLARATIVE_CONFIG   where the rendered file goes; Kong loads it from there
#   COURIER_JWT_SECRET        the HS256 secret Courier signs access tokens with
#
# `render-config.sh --render-only` writes the file and exits (used by the tests).
set -eu

template=${KONG_TEMPLATE:-/opt/courier-kong/kong.yml}
rendered=${KONG_DECLARATIVE_CONFIG:?KONG_DECLARATIVE_CONFIG must name the rendered file}
placeholder='{vault://env/courier-jwt-secret}'

fail() { echo "render-config: $*" >&2; exit 1; }

[ -r "$template" ] || fail "cannot read $template"
secret=${COURIER_JWT_SECRET:-}
[ -n "$secret" ] || fail "COURIER_JWT_SECRET is empty (set it to Courier's JWT_SECRET)"
# Bytes, as Courier counts them (JWT_SECRET: at least 32 bytes).
bytes=$(printf '%s' "$secret" | LC_ALL=C wc -c | tr -d ' ')
[ "$bytes" -ge 32 ] || fail "COURIER_JWT_SECRET must be at least 32 bytes, like JWT_SECRET (it has $bytes)"
nl='
'
case $secret in
  *'"'* | *'\'* | *"$nl"*) fail "COURIER_JWT_SECRET must not contain a double quote, a backslash or a newline" ;;
esac
grep -qF "$placeholder" "$template" || fail "$template has no $placeholder placeholder"

mkdir -p "$(dirname "$rendered")"
umask 077
awk -v ph="$placeholder" '
  BEGIN { secret = ENVIRON["COURIER_JWT_SECRET"] }
  {
    out = ""; rest = $0
    while ((i = index(rest, ph)) > 0) {
      out = out substr(rest, 1, i - 1) secret
      rest = substr(rest, i + length(ph))
    }
    print out rest
  }' "$template" > "$rendered.tmp"
mv "$rendered.tmp" "$rendered"
unset COURIER_JWT_SECRET

if [ "${1:-}" = "--render-only" ]; then
  exit 0
fi
exec /docker-entrypoint.sh kong docker-start

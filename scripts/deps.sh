#!/usr/bin/env bash
# Installs every Debian 12 package the gateway, its tests, fuzzers and
# packaging need.  Idempotent: apt-get only runs when something is missing.
set -euo pipefail

PKGS=(
  build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
  libwebsockets-dev libwebsockets-evlib-ev libwebsockets-evlib-uv libev-dev
  libuv1-dev libssl-dev
  libjson-c-dev libjwt-dev libcmocka-dev libhiredis-dev redis-server
  openssl ca-certificates curl procps iproute2 libfaketime
  python3 python3-pytest python3-cryptography python3-jwt python3-websockets
)
if [ "${PAV_DEPS_EXTRA:-}" != "" ]; then
  read -r -a extra <<<"$PAV_DEPS_EXTRA"
  PKGS+=("${extra[@]}")
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

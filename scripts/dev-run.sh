#!/usr/bin/env bash
# Builds the gateway and runs it on the default development configuration:
# embedded memory store, a public WSS vhost on 127.0.0.1:8443 with a
# self-signed certificate, an internal API vhost on 127.0.0.1:8081.
# Keys and the certificate are made once under build/dev/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
[ -d build ] || meson setup build >/dev/null
meson compile -C build >/dev/null

dev=build/dev
mkdir -p "$dev/conf.d"
umask 077
[ -f "$dev/tls/cert.pem" ] || {
  mkdir -p "$dev/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dev/tls/key.pem" -out "$dev/tls/cert.pem" -days 365 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
}
[ -f "$dev/jwt.key" ] || head -c 48 /dev/urandom | base64 -w0 > "$dev/jwt.key"
[ -f "$dev/api.keys" ] || { echo "# internal API keys, one per line"; head -c 24 /dev/urandom | base64 -w0 | tr '+/' '-_'; echo; } > "$dev/api.keys"
top=$(pwd)
sed -e "s#@DEV@#$top/$dev#g" -e "s#@PLUGINS@#$top/build/plugins#g" \
  packaging/gateway.dev.json.in > "$dev/gateway.json"
cp -n conf.d/*.json "$dev/conf.d/" 2>/dev/null || true

echo "pavilion-gateway: wss://127.0.0.1:8443/ws  internal API: http://127.0.0.1:8081" >&2
echo "  token:  build/src/pavilion-gateway token -c $dev/gateway.json --sub alice" >&2
echo "  API key: $(grep -v '^#' "$dev/api.keys" | head -1)" >&2
exec build/src/pavilion-gateway -c "$dev/gateway.json"

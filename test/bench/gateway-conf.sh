#!/usr/bin/env bash
# Writes a benchmark configuration for pavilion-gateway into DIR:
#   gateway-conf.sh DIR PLUGIN_DIR WS_PORT API_PORT [TLS_PORT] [EVENT_LOOP]
# DIR gets jwt.key, api.keys, gateway.json (and tls/ when TLS_PORT is set).
# What users run, as the packages and the dev config ship it: all four
# protocol plugins (subscription, notification, chat, presence) with their
# default options, so subscription access follows the JWT claims
# ("zones"/"channels"/"chats": pavbench mints them) and the presence plugin
# runs on every open, close and join.  Changed for a loopback benchmark:
# plain ws on 127.0.0.1 (loopback allows it), per-IP connection and
# handshake limits and the message rate raised (every client comes from
# 127/8), heartbeats out of the way (pavbench does not answer them).
# The outbound queue per connection stays at the gateway's default
# (256 KiB, the slow-consumer limit users get), so 4008 closes show.
# Environment:
#   BENCH_PLUGINS  the vhost's "plugins" object (JSON); default all four,
#                  e.g. '{"subscription": {"policy": "open"}}' for the
#                  subscription plugin alone
#   BENCH_OUTBOUND_QUEUE_BYTES  outbound queue per connection (default:
#                  the gateway's own, 262144)
#   BENCH_STORE    the "store" object (JSON); default {"backend": "memory"},
#                  e.g. '{"backend": "redis", "url": "redis://127.0.0.1:6379"}'
#   BENCH_HEARTBEAT_S  heartbeat_interval_s (default 3600: out of the way;
#                  pavbench counts heartbeats by type, never as deliveries)
set -euo pipefail
dir=$1 plugins=$2 ws_port=$3 api_port=$4 tls_port=${5:-} loop=${6:-ev}
mkdir -p "$dir"
[ -f "$dir/jwt.key" ] || head -c 48 /dev/urandom | base64 -w0 >"$dir/jwt.key"
[ -f "$dir/api.keys" ] || { echo "# bench"; head -c 24 /dev/urandom | base64 -w0 | tr '+/' '-_'; echo; } >"$dir/api.keys"

limits='"limits": {"max_connections_per_ip": 100000, "handshakes_per_s_per_ip": 100000,
                 "messages_per_s": 100000, "burst": 100000, "max_connections_per_user": 16,
                 "handshake_timeout_s": 60'"${BENCH_OUTBOUND_QUEUE_BYTES:+, \"outbound_queue_bytes\": $BENCH_OUTBOUND_QUEUE_BYTES}"'}'
ws='"websocket": {"path": "/ws", "heartbeat_interval_s": '"${BENCH_HEARTBEAT_S:-3600}"', "idle_timeout_s": 86400}'
auth="\"auth\": {\"algorithms\": [\"HS256\"], \"key_file\": \"$dir/jwt.key\", \"leeway_s\": 30}"
all_four='{"subscription": {}, "notification": {}, "chat": {}, "presence": {}}'
plugins_on="\"plugins\": ${BENCH_PLUGINS:-$all_four}"
memory='{"backend": "memory"}'

tls_vhost=
if [ -n "$tls_port" ]; then
  if [ ! -f "$dir/tls/cert.pem" ]; then
    mkdir -p "$dir/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
      -subj /CN=localhost -keyout "$dir/tls/key.pem" -out "$dir/tls/cert.pem" 2>/dev/null
  fi
  tls_vhost=",
    {\"name\": \"public-tls\", \"listen\": \"127.0.0.1:$tls_port\", \"namespace\": \"default\",
     \"tls\": {\"cert\": \"$dir/tls/cert.pem\", \"key\": \"$dir/tls/key.pem\"},
     $ws, $auth, $limits, $plugins_on}"
fi

cat >"$dir/gateway.json" <<JSON
{
  "plugin_dirs": ["$plugins"],
  "log": {"level": "warn", "format": "text"},
  "store": ${BENCH_STORE:-$memory},
  "event_loop": "$loop",
  "vhosts": [
    {"name": "public", "listen": "127.0.0.1:$ws_port", "namespace": "default",
     $ws, $auth, $limits, $plugins_on}$tls_vhost,
    {"name": "internal", "listen": "127.0.0.1:$api_port", "namespace": "default",
     "api": {"keys_file": "$dir/api.keys"}}
  ]
}
JSON

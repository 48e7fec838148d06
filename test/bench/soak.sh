#!/usr/bin/env bash
# soak.sh [SECONDS] — build, start pavilion-gateway on a temporary config, run soak.py
# against it for SECONDS (default 600), stop the gateway and print the figures.
# Env: CONNECTIONS (3000), BUILD (build), KEEP=1 keeps the temporary directory.
# Not part of the test suite (see README-soak.md).
set -euo pipefail
secs=${1:-600}
conns=${CONNECTIONS:-3000}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${BUILD:-$repo/build}

if [ ! -f "$build/build.ninja" ]; then meson setup "$build" "$repo" >/dev/null; fi
if ! out=$(meson compile -C "$build" 2>&1); then
  echo "$out" | tail -20
  echo "soak.sh: the build failed" >&2
  exit 1
fi
bin=$build/src/pavilion-gateway

dir=$(mktemp -d /tmp/pavilion-soak.XXXXXX)
# a snapshot of the binary and plugins: a rebuild during the soak cannot disturb it
mkdir -p "$dir/plugins"
cp "$bin" "$dir/pavilion-gateway"
cp "$build"/plugins/*.so "$dir/plugins/"
head -c 48 /dev/urandom | base64 -w0 >"$dir/jwt.key"
key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '# soak\n%s\n' "$key" >"$dir/api.keys"
read -r ws_port api_port < <(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

# Public vhost: plain ws on loopback; per-IP limits raised for the soak's own address
# (soak.py spreads its clients over 127.0.0.2-9); message rate, size, per-user and queue limits are the
# defaults, so the abusive clients meet them.
cat >"$dir/gateway.json" <<JSON
{
  "plugin_dirs": ["$dir/plugins"],
  "log": {"level": "warn", "format": "text"},
  "store": {"backend": "memory"},
  "vhosts": [
    {"name": "public", "listen": "127.0.0.1:$ws_port", "namespace": "default",
     "websocket": {"path": "/ws", "heartbeat_interval_s": 30, "idle_timeout_s": 90,
                   "max_message_bytes": 16384},
     "auth": {"algorithms": ["HS256"], "key_file": "$dir/jwt.key", "leeway_s": 30},
     "limits": {"max_connections_per_ip": 100000, "handshakes_per_s_per_ip": 100000},
     "plugins": {"subscription": {"policy": "claims"}}},
    {"name": "internal", "listen": "127.0.0.1:$api_port", "namespace": "default",
     "api": {"keys_file": "$dir/api.keys"}}
  ]
}
JSON

ulimit -n 20000
"$dir/pavilion-gateway" -c "$dir/gateway.json" 2>"$dir/gateway.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  if /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$api_port),0.2)" 2>/dev/null; then break; fi
  sleep 0.1
done
echo "gateway_pid: $pid"
echo "workdir: $dir"
echo "duration_s: $secs"
echo "connections: $conns"

/usr/bin/python3 "$here/soak.py" --host 127.0.0.1 --port "$ws_port" --api-port "$api_port" \
  --api-key="$key" --jwt-key-file "$dir/jwt.key" --server-pid "$pid" \
  --duration "$secs" --connections "$conns" || echo "soak_exit: $?"

t0=$(date +%s.%N)
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
trap - EXIT
t1=$(date +%s.%N)
echo "--- gateway stop ---"
echo "gateway_exit_code: $rc"
echo "gateway_stop_s: $(echo "$t1 - $t0" | bc)"
echo "gateway_log_lines: $(wc -l <"$dir/gateway.log")"
echo "gateway_log_errors: $(grep -c ' error ' "$dir/gateway.log" || true)"
echo "gateway_log_slow_consumer: $(grep -c 'closing 4008' "$dir/gateway.log" || true)"
echo "gateway_log_rate_abuse: $(grep -c 'rate-limit abuse' "$dir/gateway.log" || true)"
if [ "${KEEP:-0}" = 1 ]; then echo "kept: $dir"; else rm -rf "$dir"; fi

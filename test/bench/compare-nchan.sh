#!/usr/bin/env bash
# Side-by-side: nginx + nchan against pavilion-gateway, same machine, same
# client, same load.  Each server runs alone, pinned to CPU 0 (one nginx
# worker; the gateway is single-threaded); pavbench runs pinned to CPU 1.
#
#   bash test/bench/compare-nchan.sh [--loop poll|uv|both] [--quick]
#   bash test/bench/compare-nchan.sh --table DIR
#
# Scenarios (environment overrides in brackets):
#   idle      IDLE_N [10000] plain ws connections held; handshakes/s, RSS/conn
#   idle-tls  the same over TLS (ECDSA P-256 certificate)
#   fan-1k    FAN1K_PUBS [1000] publications back to back to 1,000 subscribers
#   fan-10k   FAN10K_PUBS [100] publications back to back to FAN10K_N [10000]
#   p99-10k   P99_PUBS [50] publications at P99_RATE [5]/s to FAN10K_N subscribers
# --quick divides the counts by 10 (a check of the script, not a figure).
# --table DIR prints the table again from an earlier run's raw outputs.
# BENCH_SCHED [rt]: how servers and client are scheduled, so that other
# work on the machine does not skew either side: rt = SCHED_FIFO priority
# 10 (chrt; the kernel's RT throttling still leaves 5% to others), nice =
# nice -20, none = as started.  On a busy shared machine only rt gives
# stable figures (measured here: nchan fan-1k 13k/s plain, 16k/s nice,
# 108k/s rt, at load average 13).
# Prints each run's raw output into $OUT (default build-logs/bench-<time>/)
# and a table: figure, nchan, gateway, ratio gateway/nchan, better.
# Needs root (apt-get, nice) and Debian 12.  Bounded: every pavbench run has
# its own --timeout; servers are stopped on exit.
set -uo pipefail

# ---- table (also printed alone by --table DIR) ------------------------------
print_table() {
val() { awk -F': ' -v k="$2" '$1 == k { print $2; exit }' "$OUT/$1.txt" 2>/dev/null; }

# figure | scenario | key | higher is better (1) or lower (0)
ROWS=(
  "idle handshakes/s|idle|handshakes_per_s|1"
  "idle failed handshakes|idle|failed|0"
  "idle RSS KiB/conn|idle|rss_per_conn_kib|0"
  "tls handshakes/s|idle-tls|handshakes_per_s|1"
  "tls failed handshakes|idle-tls|failed|0"
  "tls RSS KiB/conn|idle-tls|rss_per_conn_kib|0"
  "fan-1k deliveries/s|fan-1k|deliveries_per_s|1"
  "fan-1k p50 ms|fan-1k|latency_p50_ms|0"
  "fan-1k p99 ms|fan-1k|latency_p99_ms|0"
  "fan-1k missing|fan-1k|missing|0"
  "fan-10k deliveries/s|fan-10k|deliveries_per_s|1"
  "fan-10k p50 ms|fan-10k|latency_p50_ms|0"
  "fan-10k p99 ms|fan-10k|latency_p99_ms|0"
  "fan-10k missing|fan-10k|missing|0"
  "${P99_RATE}/s-10k p50 ms|p99-10k|latency_p50_ms|0"
  "${P99_RATE}/s-10k p99 ms|p99-10k|latency_p99_ms|0"
  "${P99_RATE}/s-10k max ms|p99-10k|latency_max_ms|0"
  "${P99_RATE}/s-10k missing|p99-10k|missing|0"
)
{
  echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r)"
  echo "# gateway: $(cat "$OUT/gw_rev" 2>/dev/null); $BDIR --buildtype=release"
  echo "# load average at the end: $(cat "$OUT/loadavg" 2>/dev/null); scheduling: $BENCH_SCHED"
  echo "# idle/tls: $IDLE_N conns; fan-1k: $FAN1K_N subs x $FAN1K_PUBS pubs; fan-10k: $FAN10K_N x $FAN10K_PUBS;" \
       "p99: $FAN10K_N x $P99_PUBS at $P99_RATE/s; ~100-byte bodies"
  printf '%-24s %12s' figure nchan
  for g in "${GW_LABELS[@]}"; do printf ' %12s %8s %6s' "$g" ratio better; done
  echo
  for row in "${ROWS[@]}"; do
    IFS='|' read -r label sc key hib <<<"$row"
    n=$(val "nchan-$sc" "$key")
    printf '%-24s %12s' "$label" "${n:--}"
    for g in "${GW_LABELS[@]}"; do
      v=$(val "$g-$sc" "$key")
      read -r ratio better < <(awk -v a="$v" -v b="$n" -v h="$hib" 'BEGIN {
        if (a == "" || b == "") { print "- -"; exit }
        r = (b + 0 != 0) ? sprintf("%.2f", a / b) : "-"
        if (a + 0 == b + 0) w = "same"; else w = ((h == 1) == (a + 0 > b + 0)) ? "gw" : "nchan"
        print r, w }')
      printf ' %12s %8s %6s' "${v:--}" "$ratio" "$better"
    done
    echo
  done
} | tee "$OUT/table.txt"
}

main() {
cd "$(dirname "$0")/../.."
top=$(pwd)

LOOPS=poll
QUICK=0
TABLE_ONLY=
while [ $# -gt 0 ]; do
  case $1 in
  --loop) LOOPS=$2; shift 2 ;;
  --quick) QUICK=1; shift ;;
  --table) TABLE_ONLY=$2; shift 2 ;;
  *) echo "usage: $0 [--loop poll|uv|both] [--quick] | --table DIR" >&2; exit 2 ;;
  esac
done
[ "$LOOPS" = both ] && LOOPS="poll uv"

IDLE_N=${IDLE_N:-10000}
FAN1K_N=${FAN1K_N:-1000}
FAN1K_PUBS=${FAN1K_PUBS:-1000}
FAN10K_N=${FAN10K_N:-10000}
FAN10K_PUBS=${FAN10K_PUBS:-100}
P99_PUBS=${P99_PUBS:-50}
P99_RATE=${P99_RATE:-5}
BENCH_SCHED=${BENCH_SCHED:-rt}
if [ "$QUICK" = 1 ]; then
  IDLE_N=$((IDLE_N / 10)); FAN1K_PUBS=$((FAN1K_PUBS / 10))
  FAN10K_N=$((FAN10K_N / 10)); FAN10K_PUBS=$((FAN10K_PUBS / 10)); P99_PUBS=$((P99_PUBS / 5))
fi

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'compare-nchan: %s\n' "$*" >&2; exit 1; }

if [ -n "$TABLE_ONLY" ]; then # an earlier run's raw outputs
  OUT=$TABLE_ONLY BDIR=build-release BENCH_SCHED="$BENCH_SCHED (unless that run said otherwise)"
  GW_LABELS=()
  for f in "$OUT"/gw-*-idle.txt; do [ -f "$f" ] && GW_LABELS+=("$(basename "$f" -idle.txt)"); done
  print_table
  return 0
fi

# ---- prerequisites --------------------------------------------------------
NCHAN_SO=/usr/lib/nginx/modules/ngx_nchan_module.so
if ! command -v nginx >/dev/null || [ ! -f "$NCHAN_SO" ]; then
  say "installing nginx-light and libnginx-mod-nchan"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nginx-light libnginx-mod-nchan >/dev/null ||
    die "apt-get install nginx-light libnginx-mod-nchan failed"
  # the package may start a system nginx on :80; it is not ours to keep
  [ -f /run/nginx.pid ] && kill "$(cat /run/nginx.pid)" 2>/dev/null
fi
command -v taskset >/dev/null || die "taskset (util-linux) is missing"
ulimit -n 20000 || die "cannot raise the open-file limit to 20000"
[ "$(nproc)" -ge 2 ] || die "needs two CPUs (server on CPU 0, client on CPU 1)"

# ---- release build ----------------------------------------------------------
# -Dwerror=false: gcc -O3 reports a maybe-uninitialized false positive in
# src/config.c (parse_include -> resolve) that -O2 does not.
BDIR=build-release
if [ ! -d "$BDIR" ]; then
  meson setup "$BDIR" --buildtype=release -Dwerror=false >/dev/null || die "meson setup $BDIR failed"
fi
meson compile -C "$BDIR" >/dev/null || die "build failed (meson compile -C $BDIR)"
GW=$top/$BDIR/src/pavilion-gateway
GW_REV="commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
[ -n "$(git status --porcelain -- src plugins include 2>/dev/null)" ] && GW_REV="$GW_REV + uncommitted changes in src/plugins/include"
BENCH=$top/$BDIR/test/bench/pavbench

case $BENCH_SCHED in
rt) NICE=(chrt -f 10) ;;
nice) NICE=(nice -n -20) ;;
none) NICE=() ;;
*) die "BENCH_SCHED must be rt, nice or none" ;;
esac
SRV=("${NICE[@]}" taskset -c 0)
CLI=("${NICE[@]}" taskset -c 1 "$BENCH")

OUT=${OUT:-$top/build-logs/bench-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
TMP=$(mktemp -d /tmp/pavbench-compare.XXXXXX)
SRVPID=
stop_server() {
  [ -n "$SRVPID" ] || return 0
  kill "$SRVPID" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$SRVPID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SRVPID" 2>/dev/null
  wait "$SRVPID" 2>/dev/null
  SRVPID=
}
trap 'stop_server; rm -rf "$TMP"' EXIT

free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 30000))
    [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return; }
  done
  die "no free port"
}
WS_PORT=$(free_port); TLS_PORT=$(free_port); API_PORT=$(free_port)

wait_port() { # port
  for _ in $(seq 100); do
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  return 1
}

# one run: name target args...  (output in $OUT/<name>.txt)
run() {
  local name=$1; shift
  say "$name: pavbench $*"
  # a channel of its own per run: nchan replays a channel's buffered
  # messages to new subscribers
  "${CLI[@]}" "$@" --channel "${name//-/_}" >"$OUT/$name.txt" 2>"$OUT/$name.err"
  echo "rc: $?" >>"$OUT/$name.txt"
  grep -E '^(connected|failed|deliveries_per_s|latency_p50_ms|latency_p99_ms|missing|rss_per_conn_kib|handshakes_per_s):' \
    "$OUT/$name.txt" | tr '\n' ' ' >&2
  echo >&2
  sleep 2 # let the server settle (closed sockets, TIME_WAIT) between runs
}

# the same five scenarios for one server; $1 = label, $2 = pid for RSS,
# $3 ws port, $4 tls port, then extra pavbench arguments
scenarios() {
  local label=$1 pid=$2 port=$3 tport=$4; shift 4
  run "$label-idle" idle -n "$IDLE_N" --port "$port" --server-pid "$pid" \
    --hold 2 --settle 2 --timeout 120 "$@"
  run "$label-idle-tls" idle -n "$IDLE_N" --tls --port "$tport" --server-pid "$pid" \
    --hold 2 --settle 2 --timeout 180 "$@"
  run "$label-fan-1k" fanout -n "$FAN1K_N" -m "$FAN1K_PUBS" --rate 0 --port "$port" \
    --server-pid "$pid" --timeout 300 --drain 30 "$@"
  run "$label-fan-10k" fanout -n "$FAN10K_N" -m "$FAN10K_PUBS" --rate 0 --port "$port" \
    --server-pid "$pid" --timeout 300 --drain 30 "$@"
  run "$label-p99-10k" fanout -n "$FAN10K_N" -m "$P99_PUBS" --rate "$P99_RATE" --port "$port" \
    --server-pid "$pid" --timeout 300 --drain 30 "$@"
}

# ---- TLS material (shared by both servers) --------------------------------
mkdir -p "$TMP/gw/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj /CN=localhost -keyout "$TMP/gw/tls/key.pem" -out "$TMP/gw/tls/cert.pem" 2>/dev/null ||
  die "openssl req failed"

# ---- nginx + nchan ----------------------------------------------------------
NG=$TMP/nginx
mkdir -p "$NG"
cat >"$NG/nginx.conf" <<EOF
load_module $NCHAN_SO;
user root;
worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile 20000;
daemon off;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 20000; use epoll; multi_accept on; }
http {
  access_log off;
  client_body_temp_path $NG/body;
  proxy_temp_path $NG/proxy;
  fastcgi_temp_path $NG/fastcgi;
  uwsgi_temp_path $NG/uwsgi;
  scgi_temp_path $NG/scgi;
  server {
    listen 127.0.0.1:$WS_PORT backlog=4096;
    listen 127.0.0.1:$TLS_PORT ssl backlog=4096;
    ssl_certificate $TMP/gw/tls/cert.pem;
    ssl_certificate_key $TMP/gw/tls/key.pem;
    location ~ ^/sub/(\\w+)\$ { nchan_subscriber websocket; nchan_subscriber_first_message newest; nchan_channel_id \$1; }
    location ~ ^/pub/(\\w+)\$ { nchan_publisher; nchan_channel_id \$1; }
  }
}
EOF
say "nchan: nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null)"
"${SRV[@]}" nginx -c "$NG/nginx.conf" -p "$NG" >"$NG/stdout.log" 2>&1 &
SRVPID=$!
wait_port "$WS_PORT" || { cat "$NG/error.log" "$NG/stdout.log"; die "nginx did not start"; }
sleep 0.5
NGW=$(pgrep -P "$(cat "$NG/nginx.pid")" | head -1)
[ -n "$NGW" ] || die "no nginx worker process"
scenarios nchan "$NGW" "$WS_PORT" "$TLS_PORT" --target nchan
stop_server

# ---- pavilion-gateway -------------------------------------------------------
uv_wired=0
grep -q LWS_SERVER_OPTION_LIBUV src/server.c && uv_wired=1
GW_LABELS=()
for loop in $LOOPS; do
  if [ "$loop" = uv ] && [ "$uv_wired" = 0 ]; then
    say "event_loop uv: not wired in src/server.c (no LWS_SERVER_OPTION_LIBUV): skipped"
    continue
  fi
  d=$TMP/gw-$loop
  mkdir -p "$d"
  cp -r "$TMP/gw/tls" "$d/"
  bash test/bench/gateway-conf.sh "$d" "$top/$BDIR/plugins" "$WS_PORT" "$API_PORT" "$TLS_PORT" "$loop" ||
    die "gateway config"
  "$GW" --check -c "$d/gateway.json" >/dev/null 2>&1 || { "$GW" --check -c "$d/gateway.json"; die "config refused"; }
  say "gateway ($loop): $("$GW" --version 2>&1 | head -1)"
  "${SRV[@]}" "$GW" -c "$d/gateway.json" >"$OUT/gateway-$loop.log" 2>&1 &
  SRVPID=$!
  wait_port "$API_PORT" || { cat "$OUT/gateway-$loop.log"; die "gateway did not start"; }
  sleep 0.5
  scenarios "gw-$loop" "$SRVPID" "$WS_PORT" "$TLS_PORT" --api-port "$API_PORT" \
    --secret "$d/jwt.key" --api-key-file "$d/api.keys"
  stop_server
  GW_LABELS+=("gw-$loop")
done

cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg"
echo "$GW_REV" >"$OUT/gw_rev"
print_table
echo "raw outputs: $OUT" >&2
}

# the whole script is read before it runs: editing it during a run is safe
main "$@"
exit $?

#!/usr/bin/env bash
# Side-by-side: nginx + nchan against pavilion-gateway, same machine, same
# client, same load, in the same run.  Each server runs alone, pinned to
# CPU 0 (one nginx worker; the gateway is single-threaded); pavbench runs
# pinned to CPU 1.  Every scenario gets freshly started servers (nchan
# first, then the gateway, unless --gateway-first), so what one run leaves
# behind (closing connections, presence announcements, TIME_WAIT) cannot
# skew the next.
#
#   bash test/bench/compare-nchan.sh [--loop ev|poll|uv|both|all|LIST] [--quick]
#                                    [--gateway-first] [--scenarios a,b,...]
#   bash test/bench/compare-nchan.sh --table DIR
#
# Scenarios (environment overrides in brackets; the gateway runs with all
# four protocol plugins, as shipped: see gateway-conf.sh):
#   fan10k-4p  (a) N10K [10000] subscribers of one zone, PUBLISHERS [4]
#              concurrent back-to-back publishers, PUBS_10K [400] publications
#   fan10k-1p  (b) the same with one back-to-back publisher
#   rate10k    (c) N10K subscribers, P99_PUBS [50] publications at
#              P99_RATE [5]/s: the p99 latency is the figure; the table
#              also shows how long one publication took to reach its last
#              subscriber (min/p50/max over the publications), and the raw
#              output each one (publication_last_each_ms)
#   fan1k-4p   (d) N1K [1000] subscribers, PUBLISHERS publishers, PUBS_1K [1000]
#   idle       (e) IDLE_N [10000] plain ws connections: RSS per connection;
#              then all of them close at once: server CPU per close
#   storm1k    (f) join storm with presence, STORM_SMALL [1000] clients
#   storm10k   (f) join storm with presence, STORM_BIG [10000] clients
#              (gateway only: nchan has no presence, its column says n/a)
#   idle-tls   IDLE_N wss connections (not in the default list)
#   tls10k-4p  (a) over wss: N10K subscribers, PUBLISHERS publishers,
#              PUBS_10K publications (not in the default list)
# --scenarios picks some of them (comma-separated names or letters a-f);
# --quick divides every count by 10 (a check of the script, not a figure).
# --gateway-first runs the gateway before nchan in each scenario (nchan
# goes first by default), so that a series of runs can alternate them.
# --table DIR prints the table again from an earlier run's raw outputs.
# STORM_CONCURRENCY [200]: handshakes in flight during a join storm.
# BENCH_SCHED [rt]: how servers and client are scheduled, so that other
# work on the machine does not skew either side: rt = SCHED_FIFO priority
# 10 (chrt; the kernel's RT throttling still leaves 5% to others), nice =
# nice -20, none = as started.  On a busy shared machine only rt gives
# stable figures (measured here: nchan fan-1k 13k/s plain, 16k/s nice,
# 108k/s rt, at load average 13).
# Each run's raw output goes to $OUT (default build-logs/bench-<time>/);
# then a table: figure, nchan, gateway, ratio gateway/nchan, better.
# Needs root (apt-get, chrt) and Debian 12.  Bounded: every pavbench run
# has its own --timeout; servers are stopped (SIGTERM, then SIGKILL after
# 15 s) after each run and on exit.
set -uo pipefail

ALL_SCENARIOS="fan10k-4p fan10k-1p rate10k fan1k-4p idle storm1k storm10k"
GW_ONLY="storm1k storm10k"

# ---- table (also printed alone by --table DIR) ------------------------------
print_table() {
val() { awk -F': ' -v k="$2" '$1 == k { print $2; exit }' "$OUT/$1.txt" 2>/dev/null; }

# figure | scenario | key | higher is better (1), lower (0), or just shown (-)
ROWS=(
  "(a) ${N10K} subs/${PUBLISHERS} pubs deliveries/s|fan10k-4p|deliveries_per_s|1"
  "(a) p50 ms|fan10k-4p|latency_p50_ms|0"
  "(a) p99 ms|fan10k-4p|latency_p99_ms|0"
  "(a) max ms|fan10k-4p|latency_max_ms|0"
  "(a) missing|fan10k-4p|missing|0"
  "(a) server CPU us/delivery|fan10k-4p|server_cpu_us_per_delivery|0"
  "(a) subscribe all, s|fan10k-4p|connect_s|0"
  "(a) join status_updates|fan10k-4p|messages_status_update|-"
  "(a) 4008 closes|fan10k-4p|closed_4008|0"
  "(a) server RSS peak KiB|fan10k-4p|server_rss_peak_kib|0"
  "(b) ${N10K} subs/1 pub deliveries/s|fan10k-1p|deliveries_per_s|1"
  "(b) p50 ms|fan10k-1p|latency_p50_ms|0"
  "(b) p99 ms|fan10k-1p|latency_p99_ms|0"
  "(b) missing|fan10k-1p|missing|0"
  "(b) server CPU us/delivery|fan10k-1p|server_cpu_us_per_delivery|0"
  "(c) ${P99_RATE}/s to ${N10K} p50 ms|rate10k|latency_p50_ms|0"
  "(c) p99 ms|rate10k|latency_p99_ms|0"
  "(c) max ms|rate10k|latency_max_ms|0"
  "(c) a pub's last delivery: min ms|rate10k|publication_last_min_ms|0"
  "(c) a pub's last delivery: p50 ms|rate10k|publication_last_p50_ms|0"
  "(c) a pub's last delivery: max ms|rate10k|publication_last_max_ms|0"
  "(c) missing|rate10k|missing|0"
  "(c) server CPU us/delivery|rate10k|server_cpu_us_per_delivery|0"
  "(c) of which user space|rate10k|server_cpu_user_us_per_delivery|0"
  "(c) of which kernel|rate10k|server_cpu_kernel_us_per_delivery|0"
  "(c) load CPU wakeup IPIs/delivery|rate10k|load_cpu_wakeup_ipis_per_delivery|-"
  "(d) ${N1K} subs/${PUBLISHERS} pubs deliveries/s|fan1k-4p|deliveries_per_s|1"
  "(d) p50 ms|fan1k-4p|latency_p50_ms|0"
  "(d) p99 ms|fan1k-4p|latency_p99_ms|0"
  "(d) missing|fan1k-4p|missing|0"
  "(e) idle handshakes/s|idle|handshakes_per_s|1"
  "(e) idle failed handshakes|idle|failed|0"
  "(e) idle RSS KiB/conn|idle|rss_per_conn_kib|0"
  "(e) all close at once: CPU us/close|idle|server_cpu_us_per_close|0"
  "tls handshakes/s|idle-tls|handshakes_per_s|1"
  "tls RSS KiB/conn|idle-tls|rss_per_conn_kib|0"
  "tls all close at once: CPU us/close|idle-tls|server_cpu_us_per_close|0"
  "(a) over wss deliveries/s|tls10k-4p|deliveries_per_s|1"
  "(a) over wss p50 ms|tls10k-4p|latency_p50_ms|0"
  "(a) over wss p99 ms|tls10k-4p|latency_p99_ms|0"
  "(a) over wss missing|tls10k-4p|missing|0"
  "(a) over wss server CPU us/delivery|tls10k-4p|server_cpu_us_per_delivery|0"
  "(f) storm ${STORM_SMALL}: all subscribed, s|storm1k|storm_s|0"
  "(f) subscribed|storm1k|subscribed|1"
  "(f) failed handshakes|storm1k|failed_handshake|0"
  "(f) closed before the ack|storm1k|failed_after_upgrade|0"
  "(f) 4008 closes|storm1k|closed_4008|0"
  "(f) status_update msgs|storm1k|messages_status_update|-"
  "(f) server CPU storm s|storm1k|server_cpu_storm_s|0"
  "(f) server CPU total s|storm1k|server_cpu_total_s|0"
  "(f) server RSS peak KiB|storm1k|server_rss_peak_kib|0"
  "(f) storm ${STORM_BIG}: all subscribed, s|storm10k|storm_s|0"
  "(f) subscribed|storm10k|subscribed|1"
  "(f) failed handshakes|storm10k|failed_handshake|0"
  "(f) closed before the ack|storm10k|failed_after_upgrade|0"
  "(f) 4008 closes|storm10k|closed_4008|0"
  "(f) status_update msgs|storm10k|messages_status_update|-"
  "(f) server CPU storm s|storm10k|server_cpu_storm_s|0"
  "(f) server CPU total s|storm10k|server_cpu_total_s|0"
  "(f) server RSS peak KiB|storm10k|server_rss_peak_kib|0"
)
{
  echo "# machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r)"
  echo "# gateway: $(cat "$OUT/gw_rev" 2>/dev/null); $BDIR --buildtype=release; all four plugins"
  echo "# load average at the end: $(cat "$OUT/loadavg" 2>/dev/null); scheduling: $BENCH_SCHED"
  echo "# (a) $N10K subs x $PUBS_10K pubs, $PUBLISHERS publishers; (b) $N10K x $PUBS_10K, 1 publisher;" \
       "(c) $N10K x $P99_PUBS at $P99_RATE/s; (d) $N1K x $PUBS_1K, $PUBLISHERS publishers;" \
       "(e) $IDLE_N idle; (f) storms of $STORM_SMALL and $STORM_BIG; ~100-byte bodies"
  printf '%-34s %12s' figure nchan
  for g in "${GW_LABELS[@]}"; do printf ' %12s %8s %6s' "$g" ratio better; done
  echo
  for row in "${ROWS[@]}"; do
    IFS='|' read -r label sc key hib <<<"$row"
    any=0
    for g in nchan "${GW_LABELS[@]}"; do [ -f "$OUT/$g-$sc.txt" ] && any=1; done
    [ "$any" = 1 ] || continue
    n=$(val "nchan-$sc" "$key")
    [[ " $GW_ONLY " == *" $sc "* ]] && n=n/a
    printf '%-34s %12s' "$label" "${n:--}"
    for g in "${GW_LABELS[@]}"; do
      v=$(val "$g-$sc" "$key")
      read -r ratio better < <(awk -v a="$v" -v b="$n" -v h="$hib" 'BEGIN {
        if (a == "" || b == "" || b == "n/a") { print "- -"; exit }
        r = (b + 0 != 0) ? sprintf("%.2f", a / b) : "-"
        if (h == "-") w = "-"
        else if (a + 0 == b + 0) w = "same"
        else w = ((h == 1) == (a + 0 > b + 0)) ? "gw" : "nchan"
        print r, w }')
      printf ' %12s %8s %6s' "${v:--}" "$ratio" "$better"
    done
    echo
  done
} | tee "$OUT/table.txt"
}

# counts, after the environment and --quick
set_counts() {
  N10K=${N10K:-10000}; PUBS_10K=${PUBS_10K:-400}; PUBLISHERS=${PUBLISHERS:-4}
  P99_PUBS=${P99_PUBS:-50}; P99_RATE=${P99_RATE:-5}
  N1K=${N1K:-1000}; PUBS_1K=${PUBS_1K:-1000}
  IDLE_N=${IDLE_N:-10000}
  STORM_SMALL=${STORM_SMALL:-1000}; STORM_BIG=${STORM_BIG:-10000}
  STORM_CONCURRENCY=${STORM_CONCURRENCY:-200}
  if [ "$QUICK" = 1 ]; then
    N10K=$((N10K / 10)); PUBS_10K=$((PUBS_10K / 10)); P99_PUBS=$((P99_PUBS / 5))
    N1K=$((N1K / 10)); PUBS_1K=$((PUBS_1K / 10)); IDLE_N=$((IDLE_N / 10))
    STORM_SMALL=$((STORM_SMALL / 10)); STORM_BIG=$((STORM_BIG / 10))
  fi
}

main() {
cd "$(dirname "$0")/../.."
top=$(pwd)

LOOPS=ev
QUICK=0
GATEWAY_FIRST=0
TABLE_ONLY=
SCENARIOS=$ALL_SCENARIOS
while [ $# -gt 0 ]; do
  case $1 in
  --loop) LOOPS=$2; shift 2 ;;
  --quick) QUICK=1; shift ;;
  --gateway-first) GATEWAY_FIRST=1; shift ;;
  --table) TABLE_ONLY=$2; shift 2 ;;
  --scenarios) SCENARIOS=$(echo "$2" | tr ',' ' ' | sed 's/\ba\b/fan10k-4p/; s/\bb\b/fan10k-1p/;
      s/\bc\b/rate10k/; s/\bd\b/fan1k-4p/; s/\be\b/idle/; s/\bf\b/storm1k storm10k/'); shift 2 ;;
  *) echo "usage: $0 [--loop ev|poll|uv|both|all|a,b] [--quick] [--gateway-first] [--scenarios a,b,...] | --table DIR" >&2; exit 2 ;;
  esac
done
case $LOOPS in
both) LOOPS="ev poll" ;;
all) LOOPS="ev poll uv" ;;
*) LOOPS=$(echo "$LOOPS" | tr ',' ' ') ;;
esac
BENCH_SCHED=${BENCH_SCHED:-rt}
set_counts

say() { printf '== %s\n' "$*" >&2; }
die() { printf 'compare-nchan: %s\n' "$*" >&2; exit 1; }

for s in $SCENARIOS; do
  [[ " $ALL_SCENARIOS idle-tls tls10k-4p " == *" $s "* ]] || die "unknown scenario $s"
done

if [ -n "$TABLE_ONLY" ]; then # an earlier run's raw outputs
  OUT=$TABLE_ONLY BDIR=build-release BENCH_SCHED="$BENCH_SCHED (unless that run said otherwise)"
  [ -f "$OUT/counts" ] && . "$OUT/counts"
  GW_LABELS=()
  for l in ev poll uv; do ls "$OUT"/gw-"$l"-*.txt >/dev/null 2>&1 && GW_LABELS+=("gw-$l"); done
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
for n in "$N10K" "$N1K" "$IDLE_N" "$STORM_BIG"; do
  [ "$n" -le 19000 ] || die "$n connections: the open-file limit (20,000) allows 19,000 per side"
done

# ---- release build ----------------------------------------------------------
BDIR=${BDIR:-build-release}
if [ ! -d "$BDIR" ]; then
  meson setup "$BDIR" --buildtype=release >/dev/null || die "meson setup $BDIR failed"
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
# SIGTERM, then SIGKILL after 15 s; how long it took goes to $1.stop
stop_server() {
  [ -n "$SRVPID" ] || return 0
  local t0=$SECONDS killed=no
  kill "$SRVPID" 2>/dev/null
  for _ in $(seq 150); do kill -0 "$SRVPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$SRVPID" 2>/dev/null && { kill -9 "$SRVPID" 2>/dev/null; killed=yes; }
  wait "$SRVPID" 2>/dev/null
  [ -n "${1:-}" ] && printf 'stop_s: %s\nsigkill: %s\n' "$((SECONDS - t0))" "$killed" >"$1.stop"
  SRVPID=
}
trap 'stop_server; rm -rf "$TMP"' EXIT

. test/bench/lib.sh
WS_PORT=$(free_port) || die "no free port"
TLS_PORT=$(free_port) || die "no free port"
API_PORT=$(free_port) || die "no free port"

wait_port() { # port
  for _ in $(seq 100); do
    [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  return 1
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
NGW=
start_nchan() {
  "${SRV[@]}" nginx -c "$NG/nginx.conf" -p "$NG" >"$NG/stdout.log" 2>&1 &
  SRVPID=$!
  wait_port "$WS_PORT" || { cat "$NG/error.log" "$NG/stdout.log"; die "nginx did not start"; }
  sleep 0.5
  NGW=$(pgrep -P "$(cat "$NG/nginx.pid")" | head -1)
  [ -n "$NGW" ] || die "no nginx worker process"
}

# ---- pavilion-gateway -------------------------------------------------------
GW_LABELS=()
for loop in $LOOPS; do
  [[ " ev poll uv " == *" $loop "* ]] || die "unknown event loop $loop"
  d=$TMP/gw-$loop
  mkdir -p "$d"
  cp -r "$TMP/gw/tls" "$d/"
  bash test/bench/gateway-conf.sh "$d" "$top/$BDIR/plugins" "$WS_PORT" "$API_PORT" "$TLS_PORT" "$loop" ||
    die "gateway config"
  "$GW" --check -c "$d/gateway.json" >/dev/null 2>&1 || { "$GW" --check -c "$d/gateway.json"; die "config refused"; }
  GW_LABELS+=("gw-$loop")
done
start_gateway() { # loop scenario
  "${SRV[@]}" "$GW" -c "$TMP/gw-$1/gateway.json" >"$OUT/gw-$1-$2.log" 2>&1 &
  SRVPID=$!
  wait_port "$API_PORT" || { cat "$OUT/gw-$1-$2.log"; die "gateway did not start"; }
  sleep 0.5
}
grep -q max_broadcast plugins/presence/presence.c ||
  say "note: the presence plugin has no max_broadcast (DESIGN 7.4) yet: every join to a zone" \
      "sends a status_update to all its subscribers, so the 10k scenarios' subscribe phase" \
      "carries ~N^2/2 = $((N10K * (N10K - 1) / 2)) messages and may take minutes"

# one run: name args...  (output in $OUT/<name>.txt)
run() {
  local name=$1; shift
  say "$name: pavbench $*"
  # a channel of its own per run: nchan replays a channel's buffered
  # messages to new subscribers
  "${CLI[@]}" "$@" --channel "${name//-/_}" >"$OUT/$name.txt" 2>"$OUT/$name.err"
  echo "rc: $?" >>"$OUT/$name.txt"
  grep -E '^(connected|failed|deliveries_per_s|latency_p50_ms|latency_p99_ms|missing|rss_per_conn_kib|handshakes_per_s|storm_s|closed_4008|server_cpu_total_s):' \
    "$OUT/$name.txt" | tr '\n' ' ' >&2
  echo >&2
  [ -s "$OUT/$name.err" ] && grep -v '^pavbench: phase' "$OUT/$name.err" | head -3 >&2
}

# the pavbench arguments of one scenario
scenario_args() { # scenario ws-port tls-port
  case $1 in
  fan10k-4p) echo fanout -n "$N10K" -m "$PUBS_10K" --publishers "$PUBLISHERS" --port "$2" \
               --timeout 1200 --quiet-max 600 --drain 60 ;;
  fan10k-1p) echo fanout -n "$N10K" -m "$PUBS_10K" --publishers 1 --port "$2" \
               --timeout 1200 --quiet-max 600 --drain 60 ;;
  rate10k)   echo fanout -n "$N10K" -m "$P99_PUBS" --rate "$P99_RATE" --port "$2" \
               --timeout 1200 --quiet-max 600 --drain 60 --per-publication ;;
  fan1k-4p)  echo fanout -n "$N1K" -m "$PUBS_1K" --publishers "$PUBLISHERS" --port "$2" \
               --timeout 300 --quiet-max 120 --drain 30 ;;
  idle)      echo idle -n "$IDLE_N" --port "$2" --hold 2 --settle 2 --timeout 120 ;;
  idle-tls)  echo idle -n "$IDLE_N" --tls --port "$3" --hold 2 --settle 2 --timeout 180 ;;
  tls10k-4p) echo fanout --tls -n "$N10K" -m "$PUBS_10K" --publishers "$PUBLISHERS" --port "$3" \
               --timeout 1200 --quiet-max 600 --drain 60 ;;
  storm1k)   echo joinstorm -n "$STORM_SMALL" --concurrency "$STORM_CONCURRENCY" --port "$2" \
               --timeout 600 --quiet 1 --quiet-max 300 ;;
  storm10k)  echo joinstorm -n "$STORM_BIG" --concurrency "$STORM_CONCURRENCY" --port "$2" \
               --timeout 1200 --quiet 1 --quiet-max 600 ;;
  esac
}

say "nchan: nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null)"
say "gateway: $("$GW" --version 2>&1 | head -1), $GW_REV"
# shellcheck disable=SC2046
run_nchan() {
  [[ " $GW_ONLY " == *" $1 "* ]] && return
  start_nchan
  run "nchan-$1" $(scenario_args "$1" "$WS_PORT" "$TLS_PORT") --server-pid "$NGW" --target nchan \
    --api-port "$WS_PORT" # nchan publishes over plain HTTP, also for wss subscribers
  stop_server "$OUT/nchan-$1"
}
# shellcheck disable=SC2046
run_gateways() {
  for g in "${GW_LABELS[@]}"; do
    start_gateway "${g#gw-}" "$1"
    run "$g-$1" $(scenario_args "$1" "$WS_PORT" "$TLS_PORT") --server-pid "$SRVPID" \
      --api-port "$API_PORT" --secret "$TMP/$g/jwt.key" --api-key-file "$TMP/$g/api.keys"
    stop_server "$OUT/$g-$1"
    grep -q 'sigkill: yes' "$OUT/$g-$1.stop" && say "$g-$1: the gateway did not exit within 15 s of SIGTERM"
  done
}
for sc in $SCENARIOS; do
  if [ "$GATEWAY_FIRST" = 1 ]; then
    run_gateways "$sc"; run_nchan "$sc"
  else
    run_nchan "$sc"; run_gateways "$sc"
  fi
done

cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg"
echo "$GW_REV" >"$OUT/gw_rev"
declare -p N10K PUBS_10K PUBLISHERS P99_PUBS P99_RATE N1K PUBS_1K IDLE_N STORM_SMALL STORM_BIG \
  BENCH_SCHED BDIR 2>/dev/null | sed 's/^declare -- //' >"$OUT/counts"
print_table
echo "raw outputs: $OUT" >&2
}

# the whole script is read before it runs: editing it during a run is safe
main "$@"
exit $?

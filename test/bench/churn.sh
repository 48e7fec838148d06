#!/usr/bin/env bash
# What connecting and closing costs the gateway while other connections
# stay open: for each HELD count, one pavbench holds HELD idle connections
# while another opens and closes CYCLES more (500 at a time, each
# authenticated by an idempotent subscribe), and the gateway's CPU time
# (utime + stime from /proc) over those cycles is divided by CYCLES.
#
#   bash test/bench/churn.sh [--tls] [HELD ...]     (default HELD: 0 10000)
#
# The gateway runs as shipped (all four plugins, gateway-conf.sh) on
# CPU 0, pavbench on CPU 1.  --tls: the cycles and the held connections
# use wss (the bench vhost's dev certificate).  CYCLES (4000).
# Output, per HELD: "held: N", "cycles: C", "server_cpu_ms: X",
# "us_per_cycle: Y".  Bounded: every pavbench has a timeout, the held one
# is stopped at the end.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
top=$(pwd)
die() { echo "churn: $*" >&2; exit 1; }
TLS=
[ "${1:-}" = --tls ] && { TLS=1; shift; }
HELDS=("$@")
[ ${#HELDS[@]} -gt 0 ] || HELDS=(0 10000)
CYCLES=${CYCLES:-4000}
BATCH=500
ulimit -n 20000 || die "cannot raise the open-file limit"
command -v taskset >/dev/null || die "taskset (util-linux) is missing"

. test/bench/lib.sh
bench_build_and_out churn
WS=$(free_port) || die "no port"
API=$(free_port) || die "no port"
TLSP=$(free_port) || die "no port"
bash test/bench/gateway-conf.sh "$OUT/conf" "$top/$BDIR/plugins" "$WS" "$API" "$TLSP" ev ||
  die "config"
BENCH=(taskset -c 1 "$BDIR/test/bench/pavbench")
if [ -n "$TLS" ]; then CONN=(--tls --port "$TLSP"); else CONN=(--port "$WS"); fi

PID="" HPID=""
cleanup() {
  [ -n "$HPID" ] && kill "$HPID" 2>/dev/null
  [ -n "$PID" ] && kill "$PID" 2>/dev/null
  wait 2>/dev/null
}
trap cleanup EXIT
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }

for held in "${HELDS[@]}"; do
  taskset -c 0 "$BDIR/src/pavilion-gateway" -c "$OUT/conf/gateway.json" \
    >"$OUT/gateway-$held.log" 2>&1 &
  PID=$!
  for _ in $(seq 300); do [ -n "$(ss -Hltn "sport = :$API")" ] && break; sleep 0.1; done
  [ -n "$(ss -Hltn "sport = :$API")" ] || die "the gateway did not start ($OUT/gateway-$held.log)"
  if [ "$held" -gt 0 ]; then
    # its users (u500000...) are not the cycles' (u0...)
    "${BENCH[@]}" idle -n "$held" "${CONN[@]}" --secret "$OUT/conf/jwt.key" \
      --server-pid "$PID" --id-offset 500000 --hold 600 --timeout 700 \
      >"$OUT/held-$held.txt" 2>&1 &
    HPID=$!
    for _ in $(seq 1200); do
      grep -q '^server_rss_after_kib' "$OUT/held-$held.txt" && break
      kill -0 "$HPID" 2>/dev/null || break
      sleep 0.1
    done
    grep -qx "connected: $held" "$OUT/held-$held.txt" || die "held connections not all open ($OUT/held-$held.txt)"
  fi
  sleep 0.5
  c0=$(cpu_ticks)
  for ((done = 0; done < CYCLES; done += BATCH)); do
    "${BENCH[@]}" idle -n "$BATCH" "${CONN[@]}" --secret "$OUT/conf/jwt.key" \
      --server-pid "$PID" --hold 0 --settle 0 --sources 20 --timeout 60 \
      >"$OUT/cycles-$held-$done.txt" 2>&1
    grep -qx "connected: $BATCH" "$OUT/cycles-$held-$done.txt" ||
      die "a batch of cycles did not all connect ($OUT/cycles-$held-$done.txt)"
  done
  # the last closes are processed
  for _ in $(seq 50); do a=$(cpu_ticks); sleep 0.2; [ "$a" = "$(cpu_ticks)" ] && break; done
  c1=$(cpu_ticks)
  hz=$(getconf CLK_TCK)
  awk -v h="$held" -v c="$CYCLES" -v t=$((c1 - c0)) -v hz="$hz" -v tls="${TLS:+wss}" 'BEGIN {
    ms = t * 1000 / hz
    printf "held: %d\ntransport: %s\ncycles: %d\nserver_cpu_ms: %.0f\nus_per_cycle: %.1f\n",
           h, tls ? tls : "ws", c, ms, ms * 1000 / c }'
  [ -n "$HPID" ] && { kill "$HPID" 2>/dev/null; wait "$HPID" 2>/dev/null; HPID=; }
  kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; PID=
done

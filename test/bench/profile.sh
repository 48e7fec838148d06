#!/usr/bin/env bash
# Profiles the gateway (all four plugins, gateway-conf.sh) during a fan-out
# or a join storm and prints its top functions.
#
#   bash test/bench/profile.sh perf      [SUBS] [PUBS] [ev|poll|uv]  # sampled (cpu-clock)
#   bash test/bench/profile.sh callgrind [SUBS] [PUBS] [ev|poll|uv]  # exact instruction and call counts
#
# SCENARIO=fanout (default): the window is the publish phase only —
# pavbench says "phase publish" on stderr once every subscriber is in and
# the joins' presence messages have gone quiet.  PUBLISHERS (1) concurrent
# publishers.
# SCENARIO=joinstorm: SUBS clients subscribe to one zone with
# parameters.presence; the window starts before the first connect (PUBS
# is not used).
# perf: the gateway runs on CPU 0 and pavbench on CPU 1 (SCHED_FIFO 10, as
# in compare-nchan.sh); perf records the gateway for PERF_SECONDS (15).
# Hardware counters are not needed (software cpu-clock event).  Defaults:
# 10000 subscribers, 200 publications.
# callgrind: counters are zeroed when the window opens and dumped when
# pavbench is done (defaults 2000 x 100: valgrind is ~50x slower).  Shows
# call counts, e.g. malloc calls against deliveries.
# Output files stay in $OUT (default build-logs/profile-<time>/).
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
tool=${1:-perf}
loop=${4:-ev}
case $tool in
perf) SUBS=${2:-10000} PUBS=${3:-200} ;;
callgrind) SUBS=${2:-2000} PUBS=${3:-100} ;;
*) echo "usage: $0 perf|callgrind [SUBS] [PUBS] [ev|poll|uv]" >&2; exit 2 ;;
esac
SCENARIO=${SCENARIO:-fanout}
case $SCENARIO in fanout|joinstorm) ;; *) echo "SCENARIO must be fanout or joinstorm" >&2; exit 2 ;; esac
die() { echo "profile: $*" >&2; exit 1; }
ulimit -n 20000 || die "cannot raise the open-file limit"

. test/bench/lib.sh
bench_build_and_out profile
WS=$(free_port) || die "no port"
API=$(free_port) || die "no port"
bash test/bench/gateway-conf.sh "$OUT/conf" "$top/$BDIR/plugins" "$WS" "$API" "" "$loop" || die "config"

PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; [ -n "${PERFPID:-}" ] && kill -INT "$PERFPID" 2>/dev/null; }
trap cleanup EXIT
if [ "$tool" = perf ]; then
  command -v perf >/dev/null || die "perf is missing (apt-get install linux-perf)"
  chrt -f 10 taskset -c 0 "$BDIR/src/pavilion-gateway" -c "$OUT/conf/gateway.json" >"$OUT/gateway.log" 2>&1 &
else
  command -v valgrind >/dev/null || die "valgrind is missing"
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" \
    "$BDIR/src/pavilion-gateway" -c "$OUT/conf/gateway.json" >"$OUT/gateway.log" 2>&1 &
fi
PID=$!
for _ in $(seq 300); do [ -n "$(ss -Hltn "sport = :$API")" ] && break; sleep 0.1; done

CLI=(taskset -c 1 "$BDIR/test/bench/pavbench")
[ "$tool" = perf ] && CLI=(chrt -f 10 "${CLI[@]}")
if [ "$SCENARIO" = fanout ]; then
  ARGS=(fanout -n "$SUBS" -m "$PUBS" --publishers "${PUBLISHERS:-1}" --api-port "$API"
        --api-key-file "$OUT/conf/api.keys" --settle 2 --quiet-max 600)
else
  ARGS=(joinstorm -n "$SUBS" --quiet 1 --quiet-max 600)
  [ "$tool" = perf ] && PERF_SECONDS=${PERF_SECONDS:-15}
fi
start_bench() {
  "${CLI[@]}" "${ARGS[@]}" --port "$WS" --secret "$OUT/conf/jwt.key" --server-pid "$PID" \
    --concurrency $([ "$tool" = perf ] && echo 200 || echo 50) --timeout 1200 \
    >"$OUT/pavbench.txt" 2>&1 &
  BPID=$!
}
if [ "$SCENARIO" = fanout ]; then
  start_bench
  # the publish phase: every subscriber in, the joins' messages quiet
  for _ in $(seq 12000); do
    grep -q 'phase publish' "$OUT/pavbench.txt" 2>/dev/null && break
    kill -0 "$BPID" 2>/dev/null || break
    sleep 0.1
  done
fi
SUMMARY='^(connected|deliveries|deliveries_per_s|latency_p50_ms|latency_p99_ms|missing|storm_s|closed_4008|messages_status_update|server_cpu_s|server_cpu_total_s):'
if [ "$tool" = perf ]; then
  if [ "$SCENARIO" = joinstorm ]; then
    perf record -e cpu-clock -F 2000 -g -p "$PID" -o "$OUT/perf.data" -- sleep "$PERF_SECONDS" >/dev/null 2>&1 &
    PERFPID=$!
    sleep 0.5
    start_bench
    wait "$PERFPID"
    PERFPID=
  else
    perf record -e cpu-clock -F 2000 -g -p "$PID" -o "$OUT/perf.data" -- sleep "${PERF_SECONDS:-15}" >/dev/null 2>&1
  fi
  wait "$BPID"
  grep -E "$SUMMARY" "$OUT/pavbench.txt"
  perf report -i "$OUT/perf.data" --no-children --sort dso,symbol -g none 2>/dev/null |
    grep -v '^#' | grep '%' | head -n "${TOP:-30}" | tee "$OUT/top.txt"
else
  callgrind_control -z "$PID" >/dev/null
  [ "$SCENARIO" = joinstorm ] && start_bench
  wait "$BPID"
  callgrind_control -d "$PID" >/dev/null
  grep -E "$SUMMARY" "$OUT/pavbench.txt"
  f=$(ls -S "$OUT"/callgrind.out.* 2>/dev/null | head -1)
  [ -n "$f" ] || die "no callgrind dump"
  callgrind_annotate --inclusive=yes "$f" 2>/dev/null | sed -n '/^Ir/,$p' | head -n "${TOP:-30}" | tee "$OUT/top.txt"
  echo "-- malloc callers (calls in the fan-out window):"
  callgrind_annotate --threshold=100 --tree=caller "$f" 2>/dev/null |
    grep -B12 '\*  ./malloc/./malloc/malloc.c:malloc \[' | grep '<' | tee "$OUT/malloc.txt"
fi
echo "files: $OUT" >&2

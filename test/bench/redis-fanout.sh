#!/usr/bin/env bash
# Fan-out over two gateway processes on one Redis, against one process on
# the memory store: N subscribers (N/2 on each process), M publications
# back to back through the first process's API.  Prints the pavbench
# outputs and a summary (deliveries/s over both, p50/p99 per process).
#   redis-fanout.sh [N] [M]          (10000, 100)
#   PAV_BUILD  build directory (default: build)
#   REDIS_TLS=1  Redis on a TLS port only, the gateways on rediss:// (a
#                certificate made for the run)
# A benchmark, not a test: nothing is asserted but "missing: 0".
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
bdir=${PAV_BUILD:-build}
N=${1:-10000}
M=${2:-100}
half=$((N / 2))
gw=$top/$bdir/src/pavilion-gateway
bench=$top/$bdir/test/bench/pavbench
[ -x "$gw" ] && [ -x "$bench" ] || { echo "build $bdir first"; exit 1; }

tmp=$(mktemp -d /tmp/pav-redis-fanout.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
ulimit -n 20000 2>/dev/null || true

. test/bench/lib.sh
wait_http() { # port
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
val() { grep -E "^$1: " "$2" | head -n 1 | awk '{print $2}'; }

# ---- two processes on one Redis
rport=$(free_port) || exit 1
tls=() cli_tls=() scheme=redis store_tls=
if [ "${REDIS_TLS:-0}" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$tmp/redis.key" -out "$tmp/redis.pem" -days 2 -subj /CN=localhost \
    -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1 || { echo "openssl failed"; exit 1; }
  tls=(--port 0 --tls-port "$rport" --tls-cert-file "$tmp/redis.pem"
       --tls-key-file "$tmp/redis.key" --tls-ca-cert-file "$tmp/redis.pem"
       --tls-auth-clients no)
  cli_tls=(--tls --cacert "$tmp/redis.pem")
  scheme=rediss
  store_tls=", \"tls_ca_file\": \"$tmp/redis.pem\""
fi
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$tmp" "${tls[@]}" >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  redis-cli "${cli_tls[@]}" -p "$rport" ping >/dev/null 2>&1 && break
  sleep 0.05
done

declare -A WS API
for i in a b; do
  WS[$i]=$(free_port) || exit 1
  API[$i]=$(free_port) || exit 1
  mkdir -p "$tmp/$i"
  if [ "$i" = b ]; then cp "$tmp/a/jwt.key" "$tmp/a/api.keys" "$tmp/b/"; fi
  BENCH_STORE="{\"backend\": \"redis\", \"url\": \"$scheme://127.0.0.1:$rport\"$store_tls}" \
    bash test/bench/gateway-conf.sh "$tmp/$i" "$top/$bdir/plugins" "${WS[$i]}" "${API[$i]}"
  "$gw" -c "$tmp/$i/gateway.json" >"$tmp/$i/gateway.log" 2>&1 &
  pids+=($!)
  eval "pid_$i=$!"
  wait_http "${API[$i]}" || { cat "$tmp/$i/gateway.log"; exit 1; }
done

# the listener (process b) first, then the publisher (process a)
"$bench" fanout -n "$half" -m "$M" --listen-only --port "${WS[b]}" \
  --api-port "${API[b]}" --secret "$tmp/a/jwt.key" --api-key-file "$tmp/a/api.keys" \
  --id-offset "$half" --server-pid "$pid_b" --drain 30 >"$tmp/b.out" 2>"$tmp/b.err" &
lpid=$!
for _ in $(seq 600); do grep -q listening "$tmp/b.err" && break; sleep 0.1; done
"$bench" fanout -n "$half" -m "$M" --port "${WS[a]}" --api-port "${API[a]}" \
  --secret "$tmp/a/jwt.key" --api-key-file "$tmp/a/api.keys" --server-pid "$pid_a" \
  >"$tmp/a.out" 2>"$tmp/a.err"
wait "$lpid"
echo "== $scheme, 2 processes: publisher + $half subscribers on process a"
cat "$tmp/a.out"
echo "== redis, 2 processes: $half subscribers on process b (listen only)"
cat "$tmp/b.out"
first=$(val first_sent_ns "$tmp/a.out")
last=$(printf '%s\n%s\n' "$(val last_delivery_ns "$tmp/a.out")" "$(val last_delivery_ns "$tmp/b.out")" | sort -n | tail -n 1)
total=$(( $(val deliveries "$tmp/a.out") + $(val deliveries "$tmp/b.out") ))
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
pids=()
sleep 1

# ---- one process on the memory store
ws=$(free_port) || exit 1
api=$(free_port) || exit 1
mkdir -p "$tmp/m"
bash test/bench/gateway-conf.sh "$tmp/m" "$top/$bdir/plugins" "$ws" "$api"
"$gw" -c "$tmp/m/gateway.json" >"$tmp/m/gateway.log" 2>&1 &
pids+=($!)
mpid=$!
wait_http "$api" || { cat "$tmp/m/gateway.log"; exit 1; }
"$bench" fanout -n "$N" -m "$M" --port "$ws" --api-port "$api" --secret "$tmp/m/jwt.key" \
  --api-key-file "$tmp/m/api.keys" --server-pid "$mpid" >"$tmp/m.out" 2>"$tmp/m.err"
echo "== memory, 1 process: $N subscribers"
cat "$tmp/m.out"

echo "== summary"
awk -v s="$scheme" -v t="$total" -v f="$first" -v l="$last" 'BEGIN {
  d = (l - f) / 1e9
  printf "%s 2 processes: deliveries %d in %.3f s: %.0f deliveries/s\n", s, t, d, (d > 0 ? t / d : 0) }'
echo "redis process a: p50 $(val latency_p50_ms "$tmp/a.out") ms, p99 $(val latency_p99_ms "$tmp/a.out") ms, missing $(val missing "$tmp/a.out")"
echo "redis process b: p50 $(val latency_p50_ms "$tmp/b.out") ms, p99 $(val latency_p99_ms "$tmp/b.out") ms, missing $(val missing "$tmp/b.out")"
echo "memory 1 process: $(val deliveries_per_s "$tmp/m.out") deliveries/s, p50 $(val latency_p50_ms "$tmp/m.out") ms, p99 $(val latency_p99_ms "$tmp/m.out") ms, missing $(val missing "$tmp/m.out")"

#!/usr/bin/env bash
# Benchmark smoke run: builds, starts the gateway on a temporary config
# with all four protocol plugins (as shipped), then with pavbench:
#   1. fans 20 publications from 2 concurrent keep-alive publishers out to
#      200 subscribers of one zone; every subscriber must connect and every
#      delivery arrive ("missing: 0"), and each publication (its own send
#      time) is timed once: --per-publication prints one figure per
#      publication, none above the largest latency;
#   2. a join storm: 200 clients subscribe to another zone with
#      parameters.presence (the presence plugin's snapshot and join
#      announcements); every one must be subscribed, with no failed
#      handshake and no close (no 4008 slow-consumer close);
#   3. 200 idle connections, then all close at once: pavbench must print
#      the server's CPU per close, and the gateway's /metrics must count
#      no open connection afterwards.
# No speed is asserted.  Bounded: about 90 s at most.
#   PAV_BUILD  build directory (default: build)
#   SMOKE_SUBSCRIBERS, SMOKE_PUBLICATIONS, SMOKE_PUBLISHERS, SMOKE_STORM,
#   SMOKE_IDLE
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
bdir=${PAV_BUILD:-build}
SUBS=${SMOKE_SUBSCRIBERS:-200}
PUBS=${SMOKE_PUBLICATIONS:-20}
PUBLISHERS=${SMOKE_PUBLISHERS:-2}
STORM=${SMOKE_STORM:-200}
IDLE=${SMOKE_IDLE:-200}

fail() { echo "smoke: FAIL: $*"; exit 1; }

if [ ! -d "$bdir" ]; then
  meson setup "$bdir" >/dev/null || fail "meson setup $bdir"
fi
timeout 300 meson compile -C "$bdir" >/dev/null || fail "build failed (meson compile -C $bdir)"
gw=$top/$bdir/src/pavilion-gateway
bench=$top/$bdir/test/bench/pavbench
[ -x "$gw" ] && [ -x "$bench" ] || fail "missing $gw or $bench"

tmp=$(mktemp -d /tmp/pavbench-smoke.XXXXXX)
gwpid=
cleanup() {
  if [ -n "$gwpid" ]; then
    kill "$gwpid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$gwpid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$gwpid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

. test/bench/lib.sh
ws_port=$(free_port) || fail "no free port"
api_port=$(free_port) || fail "no free port"
while [ "$api_port" = "$ws_port" ]; do api_port=$(free_port) || fail "no free port"; done

bash test/bench/gateway-conf.sh "$tmp" "$top/$bdir/plugins" "$ws_port" "$api_port" || fail "config"
ulimit -n 4096 2>/dev/null || true
"$gw" -c "$tmp/gateway.json" >"$tmp/gateway.log" 2>&1 &
gwpid=$!
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$api_port/healthz" >/dev/null 2>&1 && break
  kill -0 "$gwpid" 2>/dev/null || { cat "$tmp/gateway.log"; fail "gateway exited"; }
  sleep 0.1
done
curl -fs "http://127.0.0.1:$api_port/healthz" >/dev/null || { cat "$tmp/gateway.log"; fail "gateway not ready"; }

# pinned, as compare-nchan.sh runs it, so that it counts its CPU's wakeup
# IPIs: to the first CPU this shell may use
cpu=$(taskset -pc $$ | sed 's/.*: //; s/[-,].*//')
out=$(timeout 45 taskset -c "$cpu" "$bench" fanout -n "$SUBS" -m "$PUBS" --publishers "$PUBLISHERS" --rate 0 \
  --port "$ws_port" --api-port "$api_port" --secret "$tmp/jwt.key" --channel smoke_fan \
  --api-key-file "$tmp/api.keys" --server-pid "$gwpid" --timeout 40 --drain 10 --quiet-max 10 \
  --per-publication)
rc=$?
echo "$out"
grep -qx "connected: $SUBS" <<<"$out" || { tail -n 20 "$tmp/gateway.log"; fail "not every subscriber connected (pavbench rc=$rc)"; }
grep -qx "failed: 0" <<<"$out" || fail "failed handshakes"
grep -qx "publications_ok: $PUBS" <<<"$out" || fail "not every publication accepted"
grep -qx "missing: 0" <<<"$out" || { tail -n 20 "$tmp/gateway.log"; fail "deliveries missing"; }
grep -qx "closes_received: 0" <<<"$out" || fail "the gateway closed subscribers"
grep -qx "publications_timed: $PUBS" <<<"$out" || fail "not every publication timed"
# the publish phase's CPU per delivery and its user and kernel parts
awk -F': ' '
  $1 == "server_cpu_us_per_delivery" { all = $2; n++ }
  $1 == "server_cpu_user_us_per_delivery" { user = $2; n++ }
  $1 == "server_cpu_kernel_us_per_delivery" { kern = $2; n++ }
  END { d = all - user - kern; exit !(n == 3 && user >= 0 && kern >= 0 && d < 0.02 && d > -0.02) }' <<<"$out" ||
  fail "CPU per delivery: no user and kernel parts that add up to the whole"
# the load CPU's wakeup IPIs: a count, and that count over the deliveries
# (where the kernel counts them: RES and CAL in /proc/interrupts, as on x86)
if [ "$(grep -cE '^ *(RES|CAL):' /proc/interrupts 2>/dev/null)" = 2 ]; then
  awk -F': ' -v want="$cpu" '
    $1 == "load_cpu" { cpu = $2 }
    $1 == "deliveries" { d = $2 }
    $1 == "load_cpu_wakeup_ipis" { ipis = $2; n++ }
    $1 == "load_cpu_wakeup_ipis_per_delivery" { per = $2; n++ }
    END {
      if (cpu != want || n != 2 || ipis !~ /^[0-9]+$/ || d <= 0) exit 1
      e = ipis / d - per; exit !(e < 0.001 && e > -0.001)
    }' <<<"$out" || fail "wakeup IPIs of the load CPU: missing or not the count over the deliveries"
fi
awk -F': ' -v n="$PUBS" '
  $1 == "latency_max_ms" { max = $2 }
  $1 == "publication_last_max_ms" { last = $2 }
  $1 == "publication_last_each_ms" { k = split($2, v, " ") }
  END {
    if (k != n) { print "publication_last_each_ms has " k " figures, not " n; exit 1 }
    for (i = 1; i <= k; i++) if (v[i] < 0 || v[i] > last + 0.05) { print "figure " v[i] " out of range"; exit 1 }
    if (last > max + 0.0005) { print "a publication last reached later than the largest latency"; exit 1 }
  }' <<<"$out" || fail "per-publication figures"
[ "$rc" -eq 0 ] || fail "pavbench fanout exited $rc"

out=$(timeout 45 "$bench" joinstorm -n "$STORM" --snapshot --port "$ws_port" --secret "$tmp/jwt.key" \
  --channel smoke_storm --server-pid "$gwpid" --timeout 40 --quiet-max 10)
rc=$?
echo "$out"
grep -qx "subscribed: $STORM" <<<"$out" || { tail -n 20 "$tmp/gateway.log"; fail "join storm: not every client subscribed (pavbench rc=$rc)"; }
grep -qx "failed: 0" <<<"$out" || fail "join storm: failed handshakes"
grep -qx "closed_4008: 0" <<<"$out" || fail "join storm: 4008 slow-consumer closes"
grep -qx "closes_received: 0" <<<"$out" || fail "join storm: the gateway closed clients"
# every client's presence snapshot lists at least itself
su=$(awk -F': ' '$1 == "messages_status_update" { print $2 }' <<<"$out")
[ "${su:-0}" -ge "$STORM" ] || fail "join storm: $su status_update messages for $STORM clients"
[ "$rc" -eq 0 ] || fail "pavbench joinstorm exited $rc"

out=$(timeout 45 "$bench" idle -n "$IDLE" --port "$ws_port" --secret "$tmp/jwt.key" \
  --server-pid "$gwpid" --hold 0.2 --timeout 40 --quiet-max 10)
rc=$?
echo "$out"
grep -qx "connected: $IDLE" <<<"$out" || fail "idle: not every client connected (pavbench rc=$rc)"
grep -qx "closed_at_once: $IDLE" <<<"$out" || fail "idle: not every client closed at once"
grep -q "^server_cpu_us_per_close: [0-9]" <<<"$out" || fail "idle: no CPU per close"
[ "$rc" -eq 0 ] || fail "pavbench idle exited $rc"
# the gateway saw every close: none of those connections is still counted
key=$(grep -v '^#' "$tmp/api.keys" | head -n 1)
open=
for _ in $(seq 50); do
  open=$(curl -fs -H "Authorization: Bearer $key" "http://127.0.0.1:$api_port/metrics" |
    awk '$1 == "pavilion_connections" { print $2 }')
  [ "$open" = 0 ] && break
  sleep 0.1
done
[ "$open" = 0 ] || fail "idle: $open connections still open after all closed"
echo "smoke: OK"

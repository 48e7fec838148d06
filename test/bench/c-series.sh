#!/usr/bin/env bash
# Goal (c) run after run: compare-nchan.sh --scenarios c, N times in a row,
# and each run's p99.  Odd runs start nchan first, even runs the gateway
# (--gateway-first), so that neither server always gets the later stretch
# of the machine.  One run says little about (c): both servers' fan-outs
# vary with the host's speed from one stretch of seconds to the next
# (README, Performance).
#
#   bash test/bench/c-series.sh [N] [ev|poll|uv]      (defaults: 8, ev)
#
# Output ("key: value" lines): per run "run: I first: nchan|gateway
# nchan_p99_ms: X gateway_p99_ms: Y ratio: R", then each server's CPU per
# delivery in the publish phase, the kernel part of each, cpu_ratio
# (gateway / nchan) and floor (the gateway's kernel part / nchan's whole:
# the CPU ratio a gateway with no user-space work at all would have had),
# and each server's wakeup IPIs to the load CPU per delivery (pavbench,
# README of test/bench); then runs, met (ratio at or under 0.80, the goal),
# ratio_min, ratio_median, ratio_max, the median ratio of the runs that
# started each server first, and floor_over_goal (runs whose floor was
# above 0.80).
# Each run's raw outputs stay in its own build-logs/bench-<time>/
# (compare-nchan.sh prints which).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
N=${1:-8}
LOOP=${2:-ev}
die() { echo "c-series: $*" >&2; exit 1; }
case $N in '' | *[!0-9]*) die "N must be a whole number" ;; esac
[ "$N" -ge 1 ] && [ "$N" -le 100 ] || die "N must be 1-100"
case $LOOP in ev | poll | uv) ;; *) die "the loop is ev, poll or uv" ;; esac

ratios=()
for i in $(seq "$N"); do
  first=nchan order=()
  [ $((i % 2)) = 0 ] && first=gateway order=(--gateway-first)
  out=$(bash test/bench/compare-nchan.sh --loop "$LOOP" "${order[@]}" --scenarios c 2>&1) ||
    die "run $i failed: $(tail -n 5 <<<"$out")"
  # "(c) p99 ms   <nchan>   <gateway>   <ratio>   <better>"
  read -r np gp < <(awk '/^\(c\) p99 ms/ {print $4, $5}' <<<"$out")
  [ -n "${gp:-}" ] || die "run $i: no (c) p99 row in the table"
  # "(c) server CPU us/delivery <nchan> <gateway> ..." and "(c) of which kernel ..."
  read -r nc gc < <(awk '/^\(c\) server CPU us\/delivery/ {print $5, $6}' <<<"$out")
  read -r nk gk < <(awk '/^\(c\) of which kernel/ {print $5, $6}' <<<"$out")
  [ -n "${gk:-}" ] || die "run $i: no (c) CPU rows in the table"
  # "(c) load CPU wakeup IPIs/delivery <nchan> <gateway> ..."
  read -r ni gi < <(awk '/^\(c\) load CPU wakeup IPIs\/delivery/ {print $6, $7}' <<<"$out")
  [ -n "${gi:-}" ] || die "run $i: no (c) wakeup IPI row in the table"
  r=$(awk -v n="$np" -v g="$gp" 'BEGIN {printf "%.4f", g / n}')
  # the gateway's whole and its kernel part, each over nchan's whole
  read -r cpu_ratio floor < <(awk -v n="$nc" -v g="$gc" -v k="$gk" \
    'BEGIN {if (n > 0) printf "%.2f %.2f\n", g / n, k / n; else print "0 0"}')
  ratios+=("$r $first $floor")
  echo "run: $i first: $first nchan_p99_ms: $np gateway_p99_ms: $gp ratio: $(printf '%.2f' "$r")" \
    "nchan_cpu_us: $nc gateway_cpu_us: $gc nchan_kernel_us: $nk gateway_kernel_us: $gk" \
    "cpu_ratio: $cpu_ratio floor: $floor nchan_ipis: $ni gateway_ipis: $gi"
done
printf '%s\n' "${ratios[@]}" | sort -n | awk '
  function median(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  { r[NR] = $1; if ($1 <= 0.8) met++; if ($3 > 0.8) over++; by[$2, ++k[$2]] = $1 }
  END {
    printf "runs: %d\nmet: %d\nratio_min: %.2f\nratio_median: %.2f\nratio_max: %.2f\n",
      NR, met + 0, r[1], median(r, NR), r[NR]
    printf "floor_over_goal: %d\n", over + 0
    for (f = 0; f < 2; f++) {
      s = f ? "gateway" : "nchan"
      if (!k[s]) continue
      delete a
      for (i = 1; i <= k[s]; i++) a[i] = by[s, i]
      printf "ratio_median_%s_first: %.2f\n", s, median(a, k[s])
    }
  }'

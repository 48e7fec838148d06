#!/usr/bin/env bash
# Runs every test: unit (cmocka), integration (the real binary, real
# clients), the integration suite again on the redis store, the same under
# ASan+UBSan with leak detection, fuzz targets for a bounded time,
# packaging, and a benchmark smoke run.  Installs what it
# needs first.  The last line is "N passed, M failed" over all of them.
#
#   PAV_STAGES   stages to run (default: all of them, in this order)
#   FUZZ_SECONDS seconds per fuzz target (default 60)
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)

STAGES=${PAV_STAGES:-"unit integration integration-redis js asan fuzz package bench"}
PASSED=0
FAILED=0
PY=/usr/bin/python3
log=$top/build-logs
mkdir -p "$log"

say() { printf '\n=== %s\n' "$*"; }
count() { PASSED=$((PASSED + $1)); FAILED=$((FAILED + $2)); echo "--- $3: $1 passed, $2 failed"; }

bash scripts/deps.sh || { echo "dependency installation failed"; echo "0 passed, 1 failed"; exit 1; }

build() { # dir [meson options...]
  local dir=$1; shift
  [ -d "$dir" ] || meson setup "$dir" "$@" >"$log/setup-$(basename "$dir").txt" 2>&1 || return 1
  meson compile -C "$dir" >"$log/compile-$(basename "$dir").txt" 2>&1
}

build_failed() { # dir label: the compiler's last words, and one failure
  tail -n 30 "$log/compile-$1.txt"; count 0 1 "$2"
}

# cmocka's own totals, from meson's test log; a crashed executable counts once
unit_counts() { # dir label
  local dir=$1 p f mf
  meson test -C "$dir" --print-errorlogs >"$log/unit-$2.txt" 2>&1
  p=$(grep -ao '\[  PASSED  \] [0-9]*' "$dir/meson-logs/testlog.txt" | awk '{s+=$4} END {print s+0}')
  f=$(grep -ao '\[  FAILED  \] [0-9]* test' "$dir/meson-logs/testlog.txt" | awk '{s+=$4} END {print s+0}')
  mf=$(grep -aE '^(Fail|Timeout):' "$log/unit-$2.txt" | awk '{s+=$2} END {print s+0}')
  [ "$mf" -gt "$f" ] && f=$mf
  grep -aE '^ *[0-9]+/[0-9]+ ' "$log/unit-$2.txt" | tail -n 20
  # what failed, and where: cmocka's messages and any sanitizer report
  [ "$f" -gt 0 ] && grep -aE '^\[  (ERROR|FAILED) +\]|^\[  FAILED  \] |: error: |Failure!|ERROR: (Address|Leak)Sanitizer|runtime error|^SUMMARY' \
    "$dir/meson-logs/testlog.txt" | head -n 40
  count "$p" "$f" "unit ($2)"
}

pytest_counts() { # label, pytest args...
  local label=$1; shift
  local out="$log/pytest-$label.txt" line p f e
  $PY -m pytest -q -p no:cacheprovider "$@" >"$out" 2>&1
  line=$(grep -aE '[0-9]+ (passed|failed|error)' "$out" | tail -n 1)
  p=$(grep -oE '[0-9]+ passed' <<<"$line" | awk '{print $1}'); p=${p:-0}
  f=$(grep -oE '[0-9]+ failed' <<<"$line" | awk '{print $1}'); f=${f:-0}
  e=$(grep -oE '[0-9]+ errors?' <<<"$line" | awk '{print $1}'); e=${e:-0}
  [ -z "$line" ] && f=1
  grep -aE '^(FAILED|ERROR) ' "$out" | head -n 30
  count "$p" $((f + e)) "$label"
}

for stage in $STAGES; do
  case $stage in
  unit)
    say "unit tests (gcc, -Werror)"
    if build build; then unit_counts build gcc; else build_failed build "build"; fi
    say "build with clang (-Werror)"
    if CC=clang build build-clang; then count 1 0 "clang build"; else build_failed build-clang "clang build"; fi
    ;;
  integration)
    say "integration tests (real binary, real sockets)"
    if build build; then PAVILION_BUILD=$top/build pytest_counts integration test/integration
    else build_failed build "integration build"; fi
    ;;
  integration-redis)
    # the whole suite again with store.backend "redis" (one node each, on one
    # redis-server the session starts); test_redis_* ran in `integration`
    say "integration tests on the redis store (real redis-server)"
    if build build; then PAVILION_BUILD=$top/build PAVILION_STORE=redis pytest_counts integration-redis \
      test/integration --ignore-glob='test/integration/test_redis_*'
    else build_failed build "integration-redis build"; fi
    ;;
  js)
    say "JavaScript client (clients/js: node --test against the real binary, headless Chromium)"
    if build build; then
      # the two-node tests need redis-server (scripts/deps.sh installs it)
      PAVILION_JS_REDIS=1 bash clients/js/scripts/ci.sh "$top/build" >"$log/js.txt" 2>&1
      p=$(grep -aE '^# pass [0-9]+$' "$log/js.txt" | tail -n 1 | awk '{print $3}')
      f=$(grep -aE '^# (fail|cancelled) [0-9]+$' "$log/js.txt" | tail -n 2 | awk '{s+=$3} END {print s+0}')
      grep -aE '^ *not ok ' "$log/js.txt" | head -n 30
      [ -z "$p" ] && { tail -n 20 "$log/js.txt"; f=$((f + 1)); }
      count "${p:-0}" "$f" "js"
    else build_failed build "js build"; fi
    ;;
  asan)
    say "ASan+UBSan build: unit and integration tests (memory and redis stores), leak detection on"
    if build build-asan -Dsanitize=true; then
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
      export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
      export LSAN_OPTIONS=suppressions=$top/test/lsan.supp
      unit_counts build-asan asan
      PAVILION_BUILD=$top/build-asan PAVILION_SANITIZED=1 pytest_counts integration-asan test/integration
      # and on the redis store, as in integration-redis
      PAVILION_BUILD=$top/build-asan PAVILION_SANITIZED=1 PAVILION_STORE=redis pytest_counts integration-asan-redis \
        test/integration --ignore-glob='test/integration/test_redis_*'
      unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
    else
      build_failed build-asan "asan build"
    fi
    ;;
  fuzz)
    say "fuzz targets (libFuzzer + ASan/UBSan, ${FUZZ_SECONDS:-60} s each)"
    if [ -x test/fuzz/run.sh ]; then
      out=$(bash test/fuzz/run.sh "${FUZZ_SECONDS:-60}" 2>&1 | tee "$log/fuzz.txt" | tail -n 1)
      p=$(grep -oE '^[0-9]+ passed' <<<"$out" | awk '{print $1}')
      f=$(grep -oE '[0-9]+ failed' <<<"$out" | awk '{print $1}')
      grep -E '^(fuzz|FAIL)' "$log/fuzz.txt" | tail -n 20
      count "${p:-0}" "${f:-1}" "fuzz"
    fi
    ;;
  package)
    say "packaging (.deb install/run/purge, .rpm file lists)"
    if [ -x packaging/test.sh ]; then
      out=$(bash packaging/test.sh 2>&1 | tee "$log/package.txt" | tail -n 1)
      p=$(grep -oE '^[0-9]+ passed' <<<"$out" | awk '{print $1}')
      f=$(grep -oE '[0-9]+ failed' <<<"$out" | awk '{print $1}')
      grep -E '^(ok|not ok|FAIL)' "$log/package.txt" | tail -n 30
      count "${p:-0}" "${f:-1}" "package"
    fi
    ;;
  bench)
    say "benchmark smoke run (checks every delivery arrives; no timing asserted)"
    if [ -x test/bench/smoke.sh ]; then
      if bash test/bench/smoke.sh >"$log/bench.txt" 2>&1; then count 1 0 "bench smoke"
      else tail -n 20 "$log/bench.txt"; count 0 1 "bench smoke"; fi
    fi
    ;;
  esac
done

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]

# shellcheck shell=bash
# Sourced by the benchmark scripts (from the repository's top directory).

# A loopback TCP port no socket uses now (listening, connected or in
# TIME-WAIT), on stdout; fails after 200 tries.  Drawn below the kernel's
# ephemeral range (32768-60999), where pavbench's own client sockets live.
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((10000 + RANDOM % 22000))
    [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
  done
  echo "no free port" >&2
  return 1
}

# Builds $BDIR (default build-release, configured when missing) and makes
# $OUT (default build-logs/NAME-<UTC time>/): the start of a benchmark
# script run from the top directory ($top), with its own die().
bench_build_and_out() { # NAME
  BDIR=${BDIR:-build-release}
  [ -d "$BDIR" ] || meson setup "$BDIR" --buildtype=release >/dev/null || die "meson setup"
  meson compile -C "$BDIR" >/dev/null || die "build failed"
  OUT=${OUT:-$top/build-logs/$1-$(date -u +%Y%m%dT%H%M%SZ)}
  mkdir -p "$OUT"
}

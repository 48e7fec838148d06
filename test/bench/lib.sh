# shellcheck shell=bash
# Sourced by the benchmark scripts (from the repository's top directory).

# A loopback TCP port nothing listens on now, on stdout; fails after 200 tries.
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 30000))
    [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] && { echo "$p"; return 0; }
  done
  echo "no free port" >&2
  return 1
}

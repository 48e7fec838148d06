#!/usr/bin/env bash
# Runs the JavaScript client's tests as CI does: installs what is missing
# (Debian's nodejs/npm only where node/npm are absent, chromium), then
# npm ci, the build, and node --test against the gateway of BUILD_DIR.
# Idempotent; prints the test runner's TAP (its "# pass N" / "# fail N").
#
#   bash clients/js/scripts/ci.sh [BUILD_DIR]   (default: <repo>/build)
#   PAVILION_JS_REDIS=1 also runs the two-node Redis tests.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(cd ../.. && pwd)
build=$(cd "${1:-$repo/build}" && pwd) || { echo "no build directory: ${1:-$repo/build}"; exit 1; }

extra="chromium"
command -v node >/dev/null 2>&1 || extra+=" nodejs"
command -v npm >/dev/null 2>&1 || extra+=" npm"
PAV_DEPS_EXTRA="$extra" bash "$repo/scripts/deps.sh" || { echo "js: package installation failed"; exit 1; }

echo "js: node $(node --version), npm $(npm --version), $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
npm ci --no-audit --no-fund || { echo "js: npm ci failed"; exit 1; }
npm run build || { echo "js: build failed"; exit 1; }
PAVILION_BUILD="$build" timeout 1200 node --test --test-reporter=tap test/*.test.mjs

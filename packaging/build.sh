#!/usr/bin/env bash
# Builds the .deb and .rpm packages of pavilion-gateway from a clean copy
# of the tree into build-pkg/ (gitignored).  The copy is the working tree's
# tracked and untracked-but-not-ignored files, so uncommitted work is built
# too; build directories and other ignored files never get in.
#
#   bash packaging/build.sh [deb] [rpm]     (default: both)
#
#   PAV_PKG_CHECK=1  run the unit tests inside the .deb build (dh_auto_test);
#                    off by default: scripts/test.sh runs them in its own stage.
# Needs: dpkg-dev, debhelper, fakeroot, rpm (rpmbuild), the build deps.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
out=$top/build-pkg
want=${*:-deb rpm}

version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" meson.build | head -n 1)
[ -n "$version" ] || { echo "build.sh: no version in meson.build" >&2; exit 1; }
debver=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' packaging/debian/changelog)
[ "${debver%%-*}" = "$version" ] ||
  echo "build.sh: warning: debian/changelog is at $debver, meson.build at $version" >&2

work=$(mktemp -d /tmp/pavilion-pkg.XXXXXX)
trap 'rm -rf "$work"' EXIT
name=pavilion-gateway-$version
src=$work/$name
mkdir -p "$src" "$out/logs"

# The clean copy: listed files that exist (a deleted tracked file is listed
# by git until the deletion is committed).
list_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z -co --exclude-standard
  else # a tarball of the tree: everything but build outputs
    find . \( -path './build*' -o -path './.git' -o -name __pycache__ \) -prune -o \
      \( -type f -o -type l \) -printf '%P\0'
  fi
}
list_files |
  while IFS= read -r -d '' f; do [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"; done |
  tar -c --null -T - -f - | tar -x -C "$src" -f -
tar -C "$work" -czf "$work/$name.tar.gz" "$name"

build_deb() {
  local opts="parallel=$(nproc)"
  [ "${PAV_PKG_CHECK:-0}" = 1 ] || opts="$opts nocheck"
  rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo "$out/logs/deb.txt"
  rm -rf "$src/debian"
  cp -a "$src/packaging/debian" "$src/debian"
  echo "build.sh: dpkg-buildpackage (log: build-pkg/logs/deb.txt)" >&2
  if ! (cd "$src" && DEB_BUILD_OPTIONS=$opts dpkg-buildpackage -us -uc -b) \
      >"$out/logs/deb.txt" 2>&1; then
    tail -n 40 "$out/logs/deb.txt" >&2
    return 1
  fi
  cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$out/"
}

build_rpm() {
  local rb=$work/rpmbuild
  rm -f "$out"/*.rpm "$out/logs/rpm.txt"
  mkdir -p "$rb"/{SOURCES,SPECS,BUILD,RPMS,SRPMS,tmp}
  cp "$work/$name.tar.gz" "$rb/SOURCES/"
  cp "$src/packaging/rpm/pavilion-gateway.spec" "$rb/SPECS/"
  echo "build.sh: rpmbuild (log: build-pkg/logs/rpm.txt)" >&2
  # _tmppath: scriptlet files of a failed build stay in $work, not /var/tmp
  if ! rpmbuild -bb --nodeps --define "_topdir $rb" --define "_tmppath $rb/tmp" \
      --define "pav_version $version" \
      --define 'debug_package %{nil}' "$rb/SPECS/pavilion-gateway.spec" \
      >"$out/logs/rpm.txt" 2>&1; then
    tail -n 40 "$out/logs/rpm.txt" >&2
    return 1
  fi
  cp "$rb"/RPMS/*/*.rpm "$out/"
}

rc=0
for w in $want; do
  case $w in
  deb) build_deb || rc=1 ;;
  rpm) build_rpm || rc=1 ;;
  *) echo "build.sh: unknown target $w (deb, rpm)" >&2; exit 2 ;;
  esac
done
ls -1 "$out" | grep -E '\.(deb|rpm)$' >&2 || true
exit $rc

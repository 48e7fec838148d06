#!/usr/bin/env bash
# test/fuzz/run.sh SECONDS — build the libFuzzer targets (clang, ASan and
# UBSan) in build-fuzz/ and run each one for SECONDS on a copy of its seed
# corpus (test/fuzz/corpus/<name>/) in a temporary directory; nothing is
# written into the repository besides build-fuzz/ (git-ignored).
#
# One line per target: "fuzz <name>: ok (N execs)" or "FAIL fuzz <name>: ..."
# with the path of the crash/leak/timeout input, then as the last line
# "N passed, M failed".  Exit status 0 only when every target passed.
# The temporary directory is removed when all passed and kept (its path is
# printed) when one failed, so the reproducers stay available.
set -u

targets=(envelope api_body config jwt redis_url redis_wire redis_sentinel api_path proxy)
declare -A max_len=([envelope]=4096 [api_body]=4096 [config]=4096 [jwt]=9000
	[redis_url]=1024 [redis_wire]=1024 [redis_sentinel]=1024 [api_path]=4096
	[proxy]=1024)

secs=${1:-}
if ! [[ $secs =~ ^[1-9][0-9]*$ ]]; then
	echo "usage: $0 SECONDS" >&2
	exit 2
fi

top=$(cd "$(dirname "$0")/../.." && pwd)
build=$top/build-fuzz
passed=0
failed=0

fail_all() {
	for t in "${targets[@]}"; do
		echo "FAIL fuzz $t: $1"
		failed=$((failed + 1))
	done
	echo "$passed passed, $failed failed"
	exit 1
}

# Configure build-fuzz with clang, or fix an existing one.
configure() {
	local cc_id

	if [ ! -f "$build/build.ninja" ]; then
		CC=clang meson setup "$build" "$top" -Dfuzz=true -Dsanitize=true
		return
	fi
	cc_id=$(meson introspect --compilers "$build" 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["host"]["c"]["id"])' \
			2>/dev/null)
	if [ "$cc_id" != clang ]; then
		CC=clang meson setup --wipe "$build" "$top" -Dfuzz=true \
			-Dsanitize=true
		return
	fi
	meson configure "$build" -Dfuzz=true -Dsanitize=true
}

command -v clang >/dev/null 2>&1 || fail_all "clang not found"
log=$(mktemp -t pav-fuzz-build.XXXXXX) || fail_all "mktemp failed"
if ! { configure && timeout 1800 meson compile -C "$build"; } >"$log" 2>&1; then
	tail -n 20 "$log" >&2
	rm -f "$log"
	fail_all "build failed (build-fuzz)"
fi
rm -f "$log"

work=$(mktemp -d -t pav-fuzz.XXXXXX) || fail_all "mktemp failed"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
if [ -f "$top/test/lsan.supp" ]; then
	export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/test/lsan.supp}
fi

for t in "${targets[@]}"; do
	exe=$build/test/fuzz/fuzz_$t
	dir=$work/$t
	mkdir -p "$dir/corpus" "$dir/artifacts"
	if [ ! -x "$exe" ]; then
		echo "FAIL fuzz $t: $exe not built"
		failed=$((failed + 1))
		continue
	fi
	if [ -d "$top/test/fuzz/corpus/$t" ]; then
		cp -R "$top/test/fuzz/corpus/$t/." "$dir/corpus/"
	fi
	# libFuzzer stops itself after SECONDS; the outer bound catches a hang
	# outside its watch (start-up, corpus loading, a stuck merge).
	timeout --kill-after=10 $((secs * 2 + 120)) \
		"$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len="${max_len[$t]}" -print_final_stats=1 \
		-artifact_prefix="$dir/artifacts/" "$dir/corpus" \
		>"$dir/log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" |
		tail -n 1)
	if [ -z "$execs" ]; then
		execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$dir/log" |
			tail -n 1)
	fi
	art=$(find "$dir/artifacts" -type f 2>/dev/null | head -n 1)
	if [ "$rc" -eq 0 ] && [ -z "$art" ]; then
		echo "fuzz $t: ok (${execs:-0} execs)"
		passed=$((passed + 1))
		continue
	fi
	failed=$((failed + 1))
	why=$(grep -m 1 -E '^==[0-9]+==ERROR|^SUMMARY|runtime error|deadly signal|ERROR: libFuzzer' \
		"$dir/log" | cut -c 1-160)
	[ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && why="killed after $((secs * 2 + 120)) s"
	echo "FAIL fuzz $t: exit $rc${why:+: $why}; input ${art:-(none written)}; log $dir/log"
done

if [ "$failed" -eq 0 ]; then
	rm -rf "$work"
else
	echo "reproducers and logs kept in $work" >&2
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

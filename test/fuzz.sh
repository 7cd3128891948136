#!/usr/bin/env bash
# Short runs of every Go fuzz target and of the shim's C fuzz targets
# (libFuzzer, test/cshim/fuzz_*.c, seeds from Go in test/cshim/corpus),
# FUZZTIME each (default 5s).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-5s}
GO=${GO:-go}
rc=0
for pkg in $($GO list ./...); do
	dir=$($GO list -f '{{.Dir}}' "$pkg")
	for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}'); do
		echo "fuzz $pkg $f ($t)"
		for try in 1 2; do
			if $GO test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" >/tmp/ghost-fuzz.$$ 2>&1; then
				break
			fi
			# Go's fuzz coordinator before 1.27 can end a -fuzztime run
			# with a bare "context deadline exceeded" when a starved
			# worker misses the deadline (golang/go#75804): no input
			# failed and none is written. Such a run is repeated once;
			# a real finding (a failing input, a panic) fails at once.
			if [ "$try" = 1 ] && grep -q "context deadline exceeded" /tmp/ghost-fuzz.$$ &&
				! grep -qE "Failing input written|panic:|_test\.go:[0-9]+:" /tmp/ghost-fuzz.$$; then
				echo "  $f: the fuzz coordinator's deadline race (golang/go#75804, no failing input): once more"
				continue
			fi
			cat /tmp/ghost-fuzz.$$
			rc=1
			break
		done
		tail -1 /tmp/ghost-fuzz.$$
	done
done
rm -f /tmp/ghost-fuzz.$$

# The C targets: seconds from FUZZTIME (5s, 2m, ...).
case $t in
*m) secs=$((${t%m} * 60)) ;;
*s) secs=${t%s} ;;
*) secs=5 ;;
esac
if ! command -v "${FUZZ_CC:-clang}" >/dev/null; then
	echo "fuzz vmod-shim: ${FUZZ_CC:-clang} not found (make deps-test installs clang and libclang-rt-dev)"
	exit 1
fi
work=$(mktemp -d /tmp/ghost-cfuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
for f in answer key; do
	if ! make -s "build/cshim/fuzz_$f" >"$work/build.log" 2>&1; then
		cat "$work/build.log"
		rc=1
		continue
	fi
	echo "fuzz vmod-shim fuzz_$f (${secs}s)"
	mkdir -p "$work/$f"
	# new inputs go to the scratch corpus; test/cshim/corpus stays as Go made it
	if build/cshim/fuzz_$f -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$work/" "$work/$f" "test/cshim/corpus/$f" >"$work/$f.log" 2>&1; then
		grep -E "^stat::number_of_executed_units" "$work/$f.log" | sed 's/^/  /'
	else
		tail -40 "$work/$f.log"
		for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
			[ -e "$a" ] && cp "$a" build/cshim/ && echo "  input kept: build/cshim/$(basename "$a")"
		done
		rc=1
	fi
done
exit $rc

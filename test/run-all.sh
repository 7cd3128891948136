#!/usr/bin/env bash
# make test: every suite, in order; a failing suite does not stop the others.
# Prints each suite's own summary, then one closing line for all of them.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}
pass=0; fail=0; failed=()
step() {
	local name=$1; shift
	echo "=== suite: $name"
	local t0=$SECONDS
	if "$@"; then pass=$((pass+1)); echo "--- suite $name: ok ($((SECONDS-t0))s)"
	else fail=$((fail+1)); failed+=("$name"); echo "--- suite $name: FAILED ($((SECONDS-t0))s)"; fi
}
unit_pkgs=$($GO list ./... | grep -v -e /test/e2e -e /test/fault -e /test/bench -e /test/cluster)
step gofmt make -s fmt
step vet $GO vet ./...
step shim-layers bash test/shim-layers.sh
step shim-c make -s test-c
step unit $GO test -race -count=1 $unit_pkgs
step fuzz bash test/fuzz.sh "${FUZZTIME:-5s}"
[ -d test/vtc ] && ls test/vtc/*.vtc >/dev/null 2>&1 && step vtc bash test/vtc/run.sh
ls test/e2e/*_test.go >/dev/null 2>&1 && step e2e $GO test -count=1 -timeout 400s ./test/e2e/
ls test/cluster/*_test.go >/dev/null 2>&1 && step cluster $GO test -count=1 -timeout 300s ./test/cluster/
ls test/fault/*_test.go >/dev/null 2>&1 && step fault $GO test -count=1 -timeout 400s ./test/fault/
[ -x test/dist/check.sh ] && step dist bash test/dist/check.sh
echo
[ ${#failed[@]} -gt 0 ] && echo "failed suites: ${failed[*]}"
echo "suites: $pass passed, $fail failed"
[ $fail -eq 0 ]

#!/usr/bin/env bash
# Short runs of every Go fuzz target (FUZZTIME each, default 5s).
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-5s}
GO=${GO:-go}
rc=0
for pkg in $($GO list ./...); do
	dir=$($GO list -f '{{.Dir}}' "$pkg")
	for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}'); do
		echo "fuzz $pkg $f ($t)"
		$GO test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" >/tmp/ghost-fuzz.$$ 2>&1 || { cat /tmp/ghost-fuzz.$$; rc=1; }
		tail -1 /tmp/ghost-fuzz.$$
	done
done
rm -f /tmp/ghost-fuzz.$$
exit $rc

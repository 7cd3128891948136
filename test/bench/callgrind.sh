#!/usr/bin/env bash
# Instruction counts of the varnishd child for one make-bench variant,
# under callgrind (valgrind): deterministic where req/s on a shared VM is
# not. Used for the instruction figures in docs/benchmarks.md.
#
#   bash test/bench/callgrind.sh V3 pass [SECONDS]     # V0..V4, hit|pass
#
# Starts nginx (the bench upstreams), ghostd for V3/V4 and varnishd under
# callgrind, warms the cache and the memo (25 s), tries to zero the
# counters, measures SECONDS (default 30) with wrk -c4, stops everything
# and prints per-request inclusive costs of the VCL methods and of the
# shim's entry points (divided by the calls of VCL_recv_method). The
# zeroing does not reach the forked cache child here, so the counts
# include the warm-up (its 5,000 misses, each a fetch and, for V3, a
# round trip to ghostd): compare per-call costs of functions
# (callgrind_annotate --tree=calling on the printed profile) rather
# than the totals. The profile stays in the printed directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
v=${1:?variant V0..V4}; mode=${2:?hit or pass}; dur=${3:-30}
n=${v#V}
make -s build >/dev/null
S=$(mktemp -d /tmp/ghost-cg.XXXXXX)
chmod 0755 "$S"
mkdir -p "$S/nginx-tmp"
B=$((29600 + n * 50))
[ "$mode" = pass ] && B=$((B + 25))
python3 test/bench/gen.py variants "$S" $((B + 1))
install -m 0644 build/libvmod_ghost.so vcl/ghost.vcl "$S/"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$S/nginx.pid" ] && kill "$(cat "$S/nginx.pid")" 2>/dev/null || true
}
trap cleanup EXIT
nginx -e "$S/nginx-error.log" -p "$S" -c "$S/nginx.conf"
if [ "$n" = 3 ] || [ "$n" = 4 ]; then
	cfg=ghost.json sock=g.sock
	[ "$n" = 4 ] && { cfg=ghost-cp.json; sock=g4.sock; }
	build/ghostd -config "$S/$cfg" -socket "$S/$sock" -socket-mode 0666 \
		-metrics "" -log-level warn -watch=false 2>"$S/ghostd.log" &
	PIDS+=($!)
	sleep 0.5
fi
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$S/secret"
chmod 600 "$S/secret"
valgrind --tool=callgrind --callgrind-out-file="$S/cg.%p.out" varnishd -F -j none \
	-n "$S/vn" -a 127.0.0.1:$((B + 20)) -T 127.0.0.1:$((B + 21)) -S "$S/secret" \
	-f "$S/v$n.vcl" -s malloc,256m >"$S/vg.log" 2>&1 &
VG=$!
PIDS+=("$VG")
for _ in $(seq 120); do curl -s -o /dev/null "http://127.0.0.1:$((B + 20))/" && break; sleep 0.5; done
wrk -t1 -c4 -d25s -s "$S/$mode.lua" "http://127.0.0.1:$((B + 20))" >/dev/null
# zero the cache child's counters (the manager's child under valgrind)
for c in $(pgrep -P "$VG"); do callgrind_control -z "$c" >/dev/null || true; done
wrk -t1 -c4 -d"${dur}s" -s "$S/$mode.lua" "http://127.0.0.1:$((B + 20))" | grep -E "requests in|Non-2xx" || true
varnishadm -T 127.0.0.1:$((B + 21)) -S "$S/secret" stop >/dev/null || true
sleep 5
kill "$VG" 2>/dev/null || true
wait "$VG" 2>/dev/null || true
out=$(ls -S "$S"/cg.*.out | head -1)
calls=$(callgrind_annotate --inclusive=yes --tree=calling "$out" 2>/dev/null |
	grep -A1 '\*  ???:VCL_recv_method' | tail -1 | sed 's/.*(\([0-9,]*\)x).*/\1/' | tr -d ,)
echo "profile: $out ($calls requests counted)"
callgrind_annotate --inclusive=yes "$out" 2>/dev/null |
	grep -E 'PROGRAM TOTALS|VCL_[a-z_]+_method|vmod_(recv|cache|hash|prepare|route|response|deliver) ' |
	sed 's/\[.*//' | awk -v n="$calls" '{gsub(",", "", $1); printf "%9.0f  %s\n", $1 / n, $NF}'

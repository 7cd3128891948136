#!/usr/bin/env bash
# Instruction counts of the varnishd child per request for one make-bench
# variant and workload, under callgrind (valgrind): deterministic where
# req/s on a shared VM is not. Used for the instruction figures in
# docs/benchmarks.md.
#
#   bash test/bench/callgrind.sh V3 hit [SECONDS]   # V0..V4, V6; hit|pass|ltpass|ltmiss|rxpass
#
# Starts nginx (the bench upstreams), ghostd for V3/V4 and varnishd under
# callgrind, warms the cache and the memo (WARM seconds, default 25),
# (hits: then until 10 s bring no cache miss), measures SECONDS (default 30) with wrk -c4, stops everything and prints
# per-request inclusive costs (instructions) of the whole child, of the
# VCL methods and of the shim's entry points, divided by the requests the
# child counted (calls of VCL_recv_method).
#
# Only the measured window is counted, warm-up excluded: callgrind dumps
# (and zeroes) its counters before every CLI command the child answers
# (--dump-before=VCLI_WriteResult; varnishd is stripped, so an exported
# symbol; the manager's pings every 3 s count too), so a `backend.list`
# right before and right after the measurement brackets it, and the dumps
# in between are summed. (callgrind_control cannot reach varnishd's forked
# child: it has no vgdb pipe.) The profiles stay in the printed directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
v=${1:?variant V0..V4 or V6}; mode=${2:?hit, pass, ltpass, ltmiss or rxpass}; dur=${3:-30}
warm=${WARM:-25}
n=${v#V}
case "$n" in [0-46]) ;; *) echo "callgrind.sh: variant must be V0..V4 or V6" >&2; exit 2 ;; esac
case "$mode" in hit|pass|ltpass|ltmiss|rxpass) ;;
*) echo "callgrind.sh: mode must be hit, pass, ltpass, ltmiss or rxpass" >&2; exit 2 ;; esac
make -s build >/dev/null
S=$(mktemp -d /tmp/ghost-cg.XXXXXX)
chmod 0755 "$S"
mkdir -p "$S/nginx-tmp"
# CG_PORT: base port (default 29600), so that engineers sharing a machine
# can run the same variant at once
B=$((${CG_PORT:-29600} + n * 50))
[ "$mode" != hit ] && B=$((B + 25))
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
	if [ "$n" = 4 ]; then cfg=ghost-cp.json; sock=g4.sock; fi
	build/ghostd -config "$S/$cfg" -socket "$S/$sock" -socket-mode 0666 \
		-metrics "" -log-level warn -watch=false 2>"$S/ghostd.log" &
	PIDS+=($!)
	sleep 0.5
fi
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$S/secret"
chmod 600 "$S/secret"
# CG_VARNISHD: another varnishd binary of the same release, e.g. one built
# with symbols from the varnish-7.1.1 tag (Debian's is stripped: varnishd's
# own functions show as addresses); CG_VARNISHD_ARGS: its extra arguments
# (-p vmod_path=... so that it finds Debian's VMODs too). CG_STORAGE: the
# malloc storage size (default 256m; a small one measures misses that evict).
# CG_VGOPTS: more valgrind options, e.g. "--cache-sim=yes --branch-sim=yes"
# (simulated cache misses and mispredicted branches: what instruction
# counts miss; cgsum.py --events prints them per request)
# shellcheck disable=SC2086
valgrind --tool=callgrind --dump-before=VCLI_WriteResult ${CG_VGOPTS:-} \
	--callgrind-out-file="$S/cg.%p.out" "${CG_VARNISHD:-varnishd}" -F -j none ${CG_VARNISHD_ARGS:-} \
	-n "$S/vn" -a 127.0.0.1:$((B + 20)) -T 127.0.0.1:$((B + 21)) -S "$S/secret" \
	-f "$S/v$n.vcl" -s malloc,${CG_STORAGE:-256m} >"$S/vg.log" 2>&1 &
VG=$!
PIDS+=("$VG")
adm() { varnishadm -T 127.0.0.1:$((B + 21)) -S "$S/secret" "$@"; }
for _ in $(seq 120); do curl -s -o /dev/null "http://127.0.0.1:$((B + 20))/" && break; sleep 0.5; done
child=$(pgrep -P "$VG" | head -1)
# the newest dump of the child (0 when none)
last() { ls "$S" | sed -n "s/^cg\.$child\.out\.\([0-9]*\)$/\1/p" | sort -n | tail -1; }
# the long-tail URLs' run id: fixed width (a 5- or 7-digit PID changed
# every URL's length, and with it the hash's and the lookup's counts)
BENCH_RUN=w$(printf %07d $$)
export BENCH_RUN
wrk -t1 -c4 -d"${warm}s" -s "$S/$mode.lua" "http://127.0.0.1:$((B + 20))" >/dev/null
# hits: warm until a round fetches nothing (every object and decision in)
misses() { varnishstat -n "$S/vn" -1 -f MAIN.cache_miss | awk '{print $2}'; }
for _ in $(seq 12); do
	[ "$mode" = hit ] || break
	m=$(misses)
	wrk -t1 -c4 -d10s -s "$S/$mode.lua" "http://127.0.0.1:$((B + 20))" >/dev/null
	[ "$(misses)" = "$m" ] && break
done
adm backend.list >/dev/null
sleep 1
first=$(last)
BENCH_RUN=m$(printf %07d $$)
wrk -t1 -c4 -d"${dur}s" -s "$S/$mode.lua" "http://127.0.0.1:$((B + 20))" |
	grep -E "requests in|Non-2xx" || true
adm backend.list >/dev/null
sleep 1
end=$(last)
adm stop >/dev/null || true
sleep 5
kill "$VG" 2>/dev/null || true
wait "$VG" 2>/dev/null || true
files=()
for i in $(seq $((first + 1)) "$end"); do files+=("$S/cg.$child.out.$i"); done
tree=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
git diff --quiet HEAD -- vmod-shim vcl 2>/dev/null || tree="$tree + changes"
echo "profile: ${files[*]} (tree $tree)"
hits=()
[ "$mode" = hit ] && hits=(--hits-only)
python3 test/bench/cgsum.py "${hits[@]}" "${files[@]}"

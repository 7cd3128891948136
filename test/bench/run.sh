#!/usr/bin/env bash
# make bench: ghost against a static backend, an if-chain and vmod_selector,
# all on loopback in one run, then ghostd's socket throughput and its reload
# time and RSS. Prints a markdown report and writes it to the "make bench"
# sections of docs/benchmarks.md.
#
#   V0 static    one static backend, no routing (the limit)
#   V1 if-chain  100 vhosts x 10 path-prefix routes as if/elsif in vcl_recv
#   V2 selector  the same routes with vmod_selector (host set -> per-vhost
#                prefix set, longest match)
#   V4 ghost+cp  V3 with a cache_policy on every route (ghost-cp.json, its
#                own ghostd): the client-side cache decision on every hit
#                (a short hit figure: BENCH_VARIANTS="V0 V3 V4" BENCH_MODES=hit)
#   V3 ghost     the same routes as ghost.json through ghostd + the shim +
#                vcl/ghost.vcl (routing on the backend side)
#   V5 ghost+rs  V3 with timeouts, retry and an active probe on every route
#                (ghost-rs.json, its own ghostd): run in BENCH_V5_MODES only
#   V6 one pool  (diagnostic, only when named in BENCH_VARIANTS) V2's VCL
#                with every backend on the first upstream: V2's routing work
#                with V0's single connection pool
#   V7 one pool  (diagnostic, only when named in BENCH_VARIANTS) V3 with
#                every route on the first upstream (ghost-1p.json, its own
#                ghostd): ghost's routing work with V0's single pool
#                (default pass), judged against V3 in the same rounds
#
# Each variant runs in its own varnishd (all started once, side by side);
# runs alternate V0 V1 V2 V3 for each workload (hits, pass, the long
# tail: every request a new URL, in pass mode and as cache misses, and the
# long tail on a vhost with regex path routes), for BENCH_ROUNDS rounds,
# each round starting one variant further on (V1 V2 V3 V0, ...), so that
# drift on the machine hits every variant alike. V3's ghostd counts its
# decisions (Prometheus on a loopback port), so the report gives ghostd
# calls per request.
#
# Environment:
#   BENCH_DURATION=7       seconds per measured wrk run
#   BENCH_ROUNDS=9         rounds (each: every variant, hits and pass; fewer
#                          rounds gave medians 5-10 % apart between runs)
#   BENCH_CONNECTIONS=64   wrk connections (1 wrk thread; 64 as in issue 16's
#                          measurement; the sessions before the twelfth used 16)
#   BENCH_PORT_BASE=29300  ports BASE+1..10 upstream, +20..25 varnishd, +30..35 admin
#                          (keep them below the ephemeral range, 32768+)
#   BENCH_VARIANTS="V0 V1 V2 V3 V4 V5"
#   BENCH_V5_MODES="pass"  the workloads V5 runs (it only differs from V3
#                          on fetches)
#   BENCH_MODES="hit pass ltpass ltmiss rxpass"   workloads (a subset for a
#                          short run, e.g. BENCH_MODES=ltpass BENCH_ROUNDS=3)
#   BENCH_SOCKLOAD=1       ghostd's socket throughput after the runs (0 = skip)
#   BENCH_RELOAD_SIZES="1000 10000 100000"   vhosts per reload test ("" = skip)
#   BENCH_RELOAD_ROUTES="10 2"   routes per vhost in the reload configs (one test per value)
#   BENCH_SOCK_DURATION=5  seconds per connection count of test/bench/sockload
#   BENCH_GOBENCH=1        run the Go benchmarks of protocol/ (0 = skip)
#   BENCH_WRITE_DOCS=1     update docs/benchmarks.md (0 = only print)
#   BENCH_KEEP=0           keep the staging directory
#   BENCH_GHOST_MEMO=N     experiments: ghost.init(memo=N) in V3 (default: the shim's)
#   BENCH_CLUSTER=1        clustering row: 3 nodes sharded vs 3 independent, same
#                          stream, and the extra hop (test/bench/cluster; 0 = skip)
#   BENCH_CLUSTER_ARGS="-requests 30000 -objects 3000 -hop 3000"   its size
#   BENCH_PAIRS=24         paired runs per workload, V3 against V0 (0 = skip):
#                          after the rounds, V0 and V3 alternate in short
#                          runs (V0 V3, V3 V0, ...; BENCH_PAIR_DURATION s
#                          each), and each pair's ratio (req/s, and CPU per
#                          request from the children's scheduler run time)
#                          is one sample; the report gives the median and
#                          its 95 % bootstrap interval: the V3-vs-V0 verdicts
#                          with a stated precision (docs/benchmarks.md)
#   BENCH_PAIR_DURATION=2  seconds per paired run
#   BENCH_PAIR_BLOCKS=1    split each workload's pairs into this many blocks and
#                          restart the paired variants' varnishd children
#                          (varnishadm stop/start, then the warm-up again)
#                          before each block after the first: a fresh process
#                          has a fresh memory layout, and a difference that
#                          belongs to one process instance (seen as medians
#                          moving by more than their intervals between runs)
#                          then falls on several instances of each variant
#   BENCH_PAIR_MODES="hit ltpass ltmiss"   workloads of the paired runs
#   BENCH_PAIR_WITH="V3"   the variants paired against V0 (each pair runs V0
#                          and all of them, the order reversed every pair;
#                          e.g. "V3 V7 V6" for the one-pool diagnostics)
#   BENCH_STORAGE=1g       each varnishd's -s malloc size: large enough that no
#                          variant evicts during the runs (a long-tail miss
#                          stores an object per request; with 256m, used until
#                          the thirteenth session, the storage filled during
#                          the paired miss runs, V3's larger objects (its ban
#                          line) a few seconds before V0's, so the pairs
#                          compared a growing cache with an evicting one).
#                          The report gives each variant's evictions and bytes
#                          per stored object at the end.
#   BENCH_PIN=1            varnishd (manager and child) on the last CPU, wrk,
#                          nginx and ghostd on the others (needs 2+ CPUs;
#                          0 = let the scheduler place them). Pinned, a
#                          variant's req/s follows varnishd's CPU per
#                          request instead of where the scheduler put wrk.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export PATH="$PATH:/usr/local/go/bin"
GO=${GO:-go}

DUR=${BENCH_DURATION:-7}
ROUNDS=${BENCH_ROUNDS:-9}
CONNS=${BENCH_CONNECTIONS:-64}
BASE=${BENCH_PORT_BASE:-29300}
VARIANTS=${BENCH_VARIANTS:-V0 V1 V2 V3 V4 V5}
V5_MODES=${BENCH_V5_MODES:-pass}
MODES=${BENCH_MODES:-hit pass ltpass ltmiss rxpass}
SOCKLOAD=${BENCH_SOCKLOAD:-1}
METRICS_PORT=$((BASE + 40))
RELOAD_SIZES=${BENCH_RELOAD_SIZES-1000 10000 100000}
RELOAD_ROUTES=${BENCH_RELOAD_ROUTES:-10 2}
GOBENCH=${BENCH_GOBENCH:-1}
WRITE_DOCS=${BENCH_WRITE_DOCS:-1}
WARMUP=2
PIN=${BENCH_PIN:-1}
STORAGE=${BENCH_STORAGE:-1g}
PAIRS=${BENCH_PAIRS:-24}
PAIR_DUR=${BENCH_PAIR_DURATION:-2}
PAIR_MODES=${BENCH_PAIR_MODES:-hit ltpass ltmiss}
PAIR_BLOCKS=${BENCH_PAIR_BLOCKS:-1}
PAIR_WITH=${BENCH_PAIR_WITH:-V3}
NCPU=$(nproc)
# VPIN / OPIN: the taskset prefixes for varnishd and for the rest.
VPIN=(); OPIN=()
if [ "$PIN" = 1 ] && [ "$NCPU" -ge 2 ] && command -v taskset >/dev/null; then
	VPIN=(taskset -c "$((NCPU - 1))")
	OPIN=(taskset -c "0-$((NCPU - 2))")
else
	PIN=0
fi
SOCK_DUR=${BENCH_SOCK_DURATION:-5}
UP=$((BASE + 1))

for t in varnishd varnishadm wrk nginx curl python3; do
	command -v $t >/dev/null || { echo "bench: $t is missing (make deps)" >&2; exit 1; }
done
for p in $(seq $UP $((UP + 9))) $(seq $((BASE + 20)) $((BASE + 27))) $(seq $((BASE + 30)) $((BASE + 37))) $METRICS_PORT; do
	if ss -Htln "sport = :$p" | grep -q .; then
		echo "bench: port $p is in use; set BENCH_PORT_BASE" >&2
		exit 1
	fi
done

# Staging: varnishd's child runs as vcache, so the VMOD, VCL and ghostd's
# socket and state file live in a 0755 directory of their own.
STAGE=$(mktemp -d /tmp/ghost-bench.XXXXXX)
chmod 0755 "$STAGE"
RES=$STAGE/results
mkdir -p "$RES" "$STAGE/nginx-tmp"
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for f in "$STAGE"/varnishd*.pid "$STAGE"/nginx.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
	done
	sleep 0.5
	if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $STAGE" >&2; else rm -rf "$STAGE"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "bench: $*" >&2; }
now_ns() { date +%s%N; }
# cpu_ticks PID: utime+stime of the process (all its threads), in clock ticks.
cpu_ticks() {
	local line rest
	read -r line <"/proc/$1/stat" || { echo 0; return; }
	rest=${line##*) }
	set -- $rest
	echo $(( ${12} + ${13} ))
}
# cpu_ns PID: the scheduler's run time of every thread of PID, in ns
# (/proc/PID/task/*/schedstat; exact, where utime+stime are clock ticks).
cpu_ns() {
	local s=0 f x
	for f in /proc/"$1"/task/*/schedstat; do
		read -r x _ <"$f" 2>/dev/null && s=$((s + x))
	done
	echo "$s"
}
# proc_counts PID [BEFORE]: the process's utime and stime (clock ticks),
# minor and major page faults, and the voluntary and involuntary context
# switches of all its threads; with BEFORE (an earlier output), the
# differences: where a paired run's CPU goes (report.py, "kernel share").
proc_counts() {
	local pid=$1 before=${2:-} line rest k x vs=0 nv=0
	read -r line <"/proc/$pid/stat" || { echo "0 0 0 0 0 0"; return; }
	rest=${line##*) }
	set -- $rest
	local now=("${12}" "${13}" "${8}" "${10}")
	while read -r k x; do
		case $k in
		voluntary_ctxt_switches:) vs=$((vs + x)) ;;
		nonvoluntary_ctxt_switches:) nv=$((nv + x)) ;;
		esac
	done < <(cat /proc/"$pid"/task/*/status 2>/dev/null)
	now+=("$vs" "$nv")
	if [ -n "$before" ]; then
		local b=($before) out=() i
		for i in 0 1 2 3 4 5; do out+=($((now[i] - b[i]))); done
		echo "${out[*]}"
	else
		echo "${now[*]}"
	fi
}
rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

python3 test/bench/gen.py variants "$STAGE" "$UP"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STAGE/secret"
chmod 600 "$STAGE/secret"

"${OPIN[@]}" nginx -e "$STAGE/nginx-error.log" -p "$STAGE" -c "$STAGE/nginx.conf"
for i in $(seq 50); do [ -s "$STAGE/nginx.pid" ] && break; sleep 0.1; done
NGINX_PID=$(cat "$STAGE/nginx.pid")

declare -A VPORT VCHILD
GHOSTD_PID=""
GHOSTD4_PID=""  # V4's ghostd (ghost-cp.json, g4.sock)
GHOSTD5_PID=""  # V5's ghostd (ghost-rs.json, g5.sock)
GHOSTD7_PID=""  # V7's ghostd (ghost-1p.json, g7.sock)
# ghostd_of V: the PID of variant V's ghostd ("" for the VCL variants).
ghostd_of() {
	case $1 in
	V3) echo "$GHOSTD_PID" ;; V4) echo "$GHOSTD4_PID" ;;
	V5) echo "$GHOSTD5_PID" ;; V7) echo "$GHOSTD7_PID" ;;
	esac
}
FAILED=()
vnum() { echo "${1#V}"; }

# start_ghostd [V4|V5]: V3's ghostd (ghost.json on g.sock, with metrics for
# the decision counts), V4's (ghost-cp.json on g4.sock) or V5's
# (ghost-rs.json on g5.sock).
start_ghostd() {
	local v=${1:-V3} cfg=ghost.json sock=g.sock metrics="127.0.0.1:$METRICS_PORT" pid
	[ "$v" = V4 ] && { cfg=ghost-cp.json; sock=g4.sock; metrics=""; }
	[ "$v" = V5 ] && { cfg=ghost-rs.json; sock=g5.sock; metrics=""; }
	[ "$v" = V7 ] && { cfg=ghost-1p.json; sock=g7.sock; metrics=""; }
	[ -x build/ghostd ] || { log "$v: build/ghostd missing"; return 1; }
	[ -f build/libvmod_ghost.so ] || { log "$v: build/libvmod_ghost.so missing"; return 1; }
	[ -f vcl/ghost.vcl ] || { log "$v: vcl/ghost.vcl missing"; return 1; }
	install -m 0644 build/libvmod_ghost.so vcl/ghost.vcl "$STAGE/"
	"${OPIN[@]}" build/ghostd -config "$STAGE/$cfg" -socket "$STAGE/$sock" -socket-mode 0666 \
		-metrics "$metrics" -log-level warn -watch=false 2>"$STAGE/ghostd-$v.log" &
	pid=$!
	PIDS+=("$pid")
	case $v in
	V4) GHOSTD4_PID=$pid ;;
	V5) GHOSTD5_PID=$pid ;;
	V7) GHOSTD7_PID=$pid ;;
	*) GHOSTD_PID=$pid ;;
	esac
	for i in $(seq 100); do [ -S "$STAGE/$sock" ] && return 0; sleep 0.05; done
	log "$v: ghostd did not open its socket:"; cat "$STAGE/ghostd-$v.log" >&2
	return 1
}

start_varnish() {
	local v=$1 n
	n=$(vnum "$v")
	VPORT[$v]=$((BASE + 20 + n))
	if ! "${VPIN[@]}" varnishd -n "$STAGE/vn$n" -a "127.0.0.1:${VPORT[$v]}" -T "127.0.0.1:$((BASE + 30 + n))" \
		-S "$STAGE/secret" -f "$STAGE/v$n.vcl" -s "malloc,$STORAGE" -P "$STAGE/varnishd$n.pid" \
		>"$STAGE/varnishd$n.log" 2>&1; then
		log "$v: varnishd did not start:"; cat "$STAGE/varnishd$n.log" >&2
		return 1
	fi
	local mgr c
	mgr=$(cat "$STAGE/varnishd$n.pid")
	for i in $(seq 100); do
		for c in $(pgrep -P "$mgr" || true); do
			if [ "$(cat "/proc/$c/comm" 2>/dev/null)" = cache-main ]; then VCHILD[$v]=$c; return 0; fi
		done
		sleep 0.05
	done
	log "$v: no varnishd child process"
	return 1
}

# check V: the samples route to the right upstream (pass, so every request
# is routed), an unknown host gets 404 (V1-V3).
check() {
	local v=$1 host url port body code
	while read -r host url port; do
		body=$(curl -s -m 5 -H "Host: $host" -H "X-Bench-Pass: 1" "http://127.0.0.1:${VPORT[$v]}$url" || true)
		if [ "$v" != V0 ] && [ "$v" != V6 ] && [ "$v" != V7 ] && [[ $body != *"upstream $port:"* ]]; then
			log "$v: $host$url should reach upstream $port, got: ${body:0:200}"
			return 1
		fi
		[ -n "$body" ] || { log "$v: $host$url: no answer"; return 1; }
	done <"$STAGE/samples.txt"
	if [ "$v" != V0 ]; then
		code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Host: unknown.bench.test" "http://127.0.0.1:${VPORT[$v]}/r1/x" || true)
		[ "$code" = 404 ] || { log "$v: unknown host answered $code, want 404"; return 1; }
	fi
}

ACTIVE=()
for v in $VARIANTS; do
	ok=1
	if [ "$v" = V3 ]; then start_ghostd || ok=0; fi
	if [ "$v" = V4 ]; then start_ghostd V4 || ok=0; fi
	if [ "$v" = V5 ]; then start_ghostd V5 || ok=0; fi
	if [ "$v" = V7 ]; then start_ghostd V7 || ok=0; fi
	if [ $ok = 1 ]; then start_varnish "$v" || ok=0; fi
	if [ $ok = 1 ]; then check "$v" || ok=0; fi
	if [ $ok = 1 ]; then ACTIVE+=("$v"); else FAILED+=("$v"); log "$v: left out of this run"; fi
done
[ ${#ACTIVE[@]} -gt 0 ] || { log "no variant works"; exit 1; }

# decisions: ghostd's decision count (every route request it answered).
decisions() {
	curl -s -m 2 "http://127.0.0.1:$METRICS_PORT/metrics" |
		awk '/^ghost_decisions_total/ { s += $NF } END { printf "%d\n", s }'
}

# run_wrk V MODE SECONDS OUT: one wrk run; CPU deltas (and V3's ghostd
# decisions) go to OUT.cpu. BENCH_RUN makes the long-tail URLs unique.
run_wrk() {
	local v=$1 mode=$2 secs=$3 out=$4 vc0 vc1 gc0=0 gc1=0 d0=0 d1=0 t0 t1
	if [ "$v" = V3 ]; then gc0=$(cpu_ticks "$GHOSTD_PID"); d0=$(decisions); fi
	if [ "$v" = V4 ]; then gc0=$(cpu_ticks "$GHOSTD4_PID"); fi
	if [ "$v" = V5 ]; then gc0=$(cpu_ticks "$GHOSTD5_PID"); fi
	if [ "$v" = V7 ]; then gc0=$(cpu_ticks "$GHOSTD7_PID"); fi
	vc0=$(cpu_ticks "${VCHILD[$v]}")
	t0=$(now_ns)
	BENCH_RUN="$t0" "${OPIN[@]}" wrk -t1 -c"$CONNS" -d"${secs}s" --latency -s "$STAGE/$mode.lua" \
		"http://127.0.0.1:${VPORT[$v]}" >"$out" 2>&1 || true
	t1=$(now_ns)
	vc1=$(cpu_ticks "${VCHILD[$v]}")
	if [ "$v" = V3 ]; then gc1=$(cpu_ticks "$GHOSTD_PID"); d1=$(decisions); fi
	if [ "$v" = V4 ]; then gc1=$(cpu_ticks "$GHOSTD4_PID"); fi
	if [ "$v" = V5 ]; then gc1=$(cpu_ticks "$GHOSTD5_PID"); fi
	if [ "$v" = V7 ]; then gc1=$(cpu_ticks "$GHOSTD7_PID"); fi
	echo "$((vc1 - vc0)) $((gc1 - gc0)) $(( (t1 - t0) / 1000000 )) $((d1 - d0))" >"$out.cpu"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "warm-up: ${ACTIVE[*]} (hits fill the caches, pass fills connection pools and decision memos)"
# Warm-up until every one of the 5,000 requests was sent at least once
# (1.5 cycles), at most 5 x WARMUP s.
warm() {
	local v=$1 mode=$2 total=0 i n
	for i in 1 2 3 4 5; do
		run_wrk "$v" "$mode" "$WARMUP" "$RES/warm-$v-$mode-$i.txt"
		n=$(awk '/requests in/ {print $1}' "$RES/warm-$v-$mode-$i.txt")
		total=$((total + ${n:-0}))
		[ $total -ge 7500 ] && return 0
	done
	log "$v $mode: warm-up sent only $total requests"
}
# runs V MODE: whether variant V runs workload MODE (V5: BENCH_V5_MODES).
runs() { [ "$1" != V5 ] || [[ " $V5_MODES " == *" $2 "* ]]; }
for mode in $MODES; do
	for v in "${ACTIVE[@]}"; do runs "$v" "$mode" && warm "$v" "$mode"; done
done
log "measuring: $ROUNDS rounds x ${#ACTIVE[@]} variants x {$MODES} x ${DUR}s, wrk -t1 -c$CONNS"
# Each round starts one variant further on (V0 V1 V2 V3, V1 V2 V3 V0,
# ...): a variant's place in the round changes every round, so that an
# effect of the place (the previous run's aftermath, drift within a
# round) does not always fall on the same variant.
for r in $(seq "$ROUNDS"); do
	k=$(( (r - 1) % ${#ACTIVE[@]} ))
	ORDER=("${ACTIVE[@]:$k}" "${ACTIVE[@]:0:$k}")
	for mode in $MODES; do
		for v in "${ORDER[@]}"; do
			runs "$v" "$mode" || continue
			run_wrk "$v" "$mode" "$DUR" "$RES/run-$r-$mode-$v.txt"
			log "round $r $mode $v: $(awk '/^Requests\/sec/ {print $2 " req/s"}' "$RES/run-$r-$mode-$v.txt")"
			sleep 0.5
		done
	done
done

# Paired runs: V0 and V3 (and any other variant of BENCH_PAIR_WITH)
# alternate in short runs, the order reversed every pair (V0 V3, V3 V0,
# ...), so that drift on the machine (seconds to minutes on a shared VM)
# falls on every run of a pair alike; each pair's ratio is one sample
# (report.py: median and a bootstrap interval).
run_pair() {
	local v=$1 mode=$2 out=$3 c0 c1 g0=0 g1=0 gp k0
	gp=$(ghostd_of "$v")
	k0=$(proc_counts "${VCHILD[$v]}")
	c0=$(cpu_ns "${VCHILD[$v]}")
	[ -n "$gp" ] && g0=$(cpu_ns "$gp")
	BENCH_RUN="p$(now_ns)" "${OPIN[@]}" wrk -t1 -c"$CONNS" -d"${PAIR_DUR}s" -s "$STAGE/$mode.lua" \
		"http://127.0.0.1:${VPORT[$v]}" >"$out" 2>&1 || true
	c1=$(cpu_ns "${VCHILD[$v]}")
	[ -n "$gp" ] && g1=$(cpu_ns "$gp")
	echo "$((c1 - c0)) $((g1 - g0))" >"$out.ns"
	echo "$(proc_counts "${VCHILD[$v]}" "$k0")" >"$out.k"
}
# restart_child V: a new varnishd child for variant V (the manager stays;
# the child's memory, cache and ghost's memo are new), VCHILD updated.
restart_child() {
	local v=$1 n old c i
	n=$(vnum "$v")
	old=${VCHILD[$v]}
	adm() { varnishadm -T "127.0.0.1:$((BASE + 30 + n))" -S "$STAGE/secret" "$@"; }
	adm stop >/dev/null 2>&1 || true
	for i in $(seq 200); do
		adm status 2>/dev/null | grep -q stopped && break
		sleep 0.05
	done
	for i in $(seq 20); do
		adm start >/dev/null 2>&1 && break
		sleep 0.25
	done
	for i in $(seq 200); do
		for c in $(pgrep -P "$(cat "$STAGE/varnishd$n.pid")" || true); do
			if [ "$c" != "$old" ] && [ "$(cat "/proc/$c/comm" 2>/dev/null)" = cache-main ]; then
				VCHILD[$v]=$c
				for _ in $(seq 100); do
					curl -s -m 1 -o /dev/null "http://127.0.0.1:${VPORT[$v]}/" && return 0
					sleep 0.05
				done
				return 0
			fi
		done
		sleep 0.05
	done
	log "$v: no new varnishd child"
	return 1
}
PAIRED=(V0)
for v in $PAIR_WITH; do [ -n "${VCHILD[$v]:-}" ] && [ "$v" != V0 ] && PAIRED+=("$v"); done
if [ "$PAIRS" -gt 0 ] && [ -n "${VCHILD[V0]:-}" ] && [ ${#PAIRED[@]} -gt 1 ]; then
	REVERSED=()
	for ((j = ${#PAIRED[@]} - 1; j >= 0; j--)); do REVERSED+=("${PAIRED[$j]}"); done
	for mode in $PAIR_MODES; do
		if [[ " $MODES " != *" $mode "* ]]; then
			for v in "${PAIRED[@]}"; do warm "$v" "$mode"; done
		fi
		log "paired runs: $mode, $PAIRS pairs of ${PAIRED[*]} x ${PAIR_DUR}s (the order reversed every pair)"
		per=$(( (PAIRS + PAIR_BLOCKS - 1) / PAIR_BLOCKS ))
		for i in $(seq "$PAIRS"); do
			if [ "$PAIR_BLOCKS" -gt 1 ] && [ "$i" -gt 1 ] && [ $(( (i - 1) % per )) = 0 ]; then
				log "paired runs: $mode, new varnishd children before pair $i"
				for v in "${PAIRED[@]}"; do restart_child "$v"; done
				for v in "${PAIRED[@]}"; do warm "$v" "$mode"; done
			fi
			if [ $((i % 2)) = 1 ]; then ORDER=("${PAIRED[@]}"); else ORDER=("${REVERSED[@]}"); fi
			for v in "${ORDER[@]}"; do
				run_pair "$v" "$mode" "$RES/pair-$mode-$i-$v.txt"
				sleep 0.2
			done
		done
	done
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
# Storage at the end: evictions (n_lru_nuked), stored objects and bytes.
for v in "${ACTIVE[@]}"; do
	varnishstat -n "$STAGE/vn$(vnum "$v")" -1 -f MAIN.n_lru_nuked -f MAIN.n_object -f SMA.s0.g_bytes 2>/dev/null |
		awk -v v="$v" '{ c[$1] = $2 } END { print v, c["MAIN.n_lru_nuked"] + 0, c["MAIN.n_object"] + 0, c["SMA.s0.g_bytes"] + 0 }' >>"$RES/storage.txt" || true
done
# V3's memo at the end: lookups it served, and those the host table did not
# (GHOST.memo_host_miss: a host's first request of a generation, or a host
# whose table slot another host took).
if [ -n "${VCHILD[V3]:-}" ]; then
	varnishstat -n "$STAGE/vn3" -1 -f 'GHOST.*memo_hit' -f 'GHOST.*memo_host_miss' 2>/dev/null |
		awk '{ n = split($1, p, "."); c[p[n]] += $2 } END { print c["memo_hit"] + 0, c["memo_host_miss"] + 0 }' >"$RES/memo-host.txt" || true
fi
[ -n "$GHOSTD_PID" ] && echo "$(rss_kb "$GHOSTD_PID" VmRSS)" >"$RES/ghostd-bench-rss"

# Memo diagnostic (not measured): one more V3 pass run with varnishlog
# counting where the shim's decisions came from ("ghost: 200 ... (memo|ghostd").
if [ -n "$GHOSTD_PID" ] && [ -n "${VCHILD[V3]:-}" ] && [[ " $MODES " == *" pass "* ]]; then
	varnishlog -n "$STAGE/vn3" -g raw -i VCL_Log >"$RES/memo-vsl.txt" 2>/dev/null &
	VSLPID=$!
	PIDS+=("$VSLPID")
	sleep 0.5
	run_wrk V3 pass "$WARMUP" "$RES/memo-wrk.txt"
	sleep 0.5
	kill "$VSLPID" 2>/dev/null || true
	wait "$VSLPID" 2>/dev/null || true
	echo "memo $(grep -c '(memo, gen' "$RES/memo-vsl.txt" || true) ghostd $(grep -c '(ghostd, gen' "$RES/memo-vsl.txt" || true)" >"$RES/memo.txt"
fi

# ghostd's decision throughput over its socket (the V3 ghostd and table,
# varnishd idle): test/bench/sockload, 1 and 4 connections.
if [ -n "$GHOSTD_PID" ] && [ "$SOCKLOAD" = 1 ]; then
	log "ghostd over its socket: sockload -conns 1,4 -duration ${SOCK_DUR}s"
	if $GO build -o "$STAGE/sockload" ./test/bench/sockload 2>"$RES/sockload.txt"; then
		"$STAGE/sockload" -socket "$STAGE/g.sock" -pid "$GHOSTD_PID" -conns 1,4 -duration "${SOCK_DUR}s" \
			>"$RES/sockload.txt" 2>&1 || log "sockload failed (see report)"
	else
		log "sockload did not build (see report)"
	fi
fi

for v in "${ACTIVE[@]}"; do
	n=$(vnum "$v")
	kill "$(cat "$STAGE/varnishd$n.pid")" 2>/dev/null || true
done
kill "$NGINX_PID" 2>/dev/null || true
for g in "$GHOSTD_PID" "$GHOSTD4_PID"; do
	if [ -n "$g" ]; then kill "$g" 2>/dev/null || true; wait "$g" 2>/dev/null || true; fi
done
sleep 0.5

# Clustering: 3 varnishd + 3 ghostd sharded against 3 independent, the same
# request stream, and the cost of the extra hop (test/bench/cluster, its
# own processes and ports, after the variants are stopped).
if [ "${BENCH_CLUSTER:-1}" = 1 ]; then
	log "clustering: go run ./test/bench/cluster ${BENCH_CLUSTER_ARGS:-}"
	# shellcheck disable=SC2086
	$GO run ./test/bench/cluster ${BENCH_CLUSTER_ARGS:-} >"$RES/cluster.txt" 2>"$RES/cluster.err" ||
		{ log "cluster bench failed (see report)"; cat "$RES/cluster.err" >>"$RES/cluster.txt"; }
fi

# ghostd's decision throughput over its socket: the Go benchmarks of protocol/.
if [ "$GOBENCH" = 1 ]; then
	if ls protocol/*_test.go >/dev/null 2>&1 && grep -qs '^func Benchmark' protocol/*_test.go; then
		log "go test -run '^\$' -bench . -benchmem ./protocol/"
		$GO test -run '^$' -bench . -benchmem ./protocol/ >"$RES/gobench.txt" 2>&1 || log "protocol benchmarks failed (see report)"
	else
		echo "no Go benchmarks in protocol/ at this commit" >"$RES/gobench.txt"
	fi
fi

# Reload time and RSS: ghostd starts on a 1-vhost file; the file is then
# replaced by N vhosts x R routes and `ghostd reload` is timed, three times:
# 1 vhost -> A, A -> B, B -> A (A and B differ in their upstream ports;
# ghostd skips a reload of an unchanged file). RSS is sampled right after
# each reload and 1 s and 5 s after the last one.
reload_test() {
	local n=$1 r=$2 cfg=$STAGE/reload.json sock=$STAGE/r.sock pid out t0 t1 i ok src f
	f=$RES/reload-$n-$r.txt
	python3 test/bench/gen.py ghostjson 1 1 "$cfg"
	python3 test/bench/gen.py ghostjson "$n" "$r" "$STAGE/reload-a.json" 20000
	python3 test/bench/gen.py ghostjson "$n" "$r" "$STAGE/reload-b.json" 30000
	rm -f "$sock"
	build/ghostd -config "$cfg" -socket "$sock" -socket-mode 0666 -metrics "" -log-level info -watch=false \
		2>"$RES/ghostd-reload-$n-$r.log" &
	pid=$!
	PIDS+=("$pid")
	for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
	echo "rss0 $(rss_kb $pid VmRSS)" >"$f"
	echo "bytes $(stat -c %s "$STAGE/reload-a.json")" >>"$f"
	for i in 1 2 3; do
		src=a; [ $i = 2 ] && src=b
		cp "$STAGE/reload-$src.json" "$cfg"
		t0=$(now_ns)
		ok=0
		out=$(build/ghostd reload -socket "$sock" 2>&1) && ok=1
		t1=$(now_ns)
		echo "reload $i $(( (t1 - t0) / 1000 )) $ok $(rss_kb $pid VmRSS) $(rss_kb $pid VmHWM) ${out//$'\n'/ }" >>"$f"
		[ $i = 3 ] || sleep 0.5
	done
	sleep 1
	echo "rss_1s $(rss_kb $pid VmRSS) $(rss_kb $pid VmHWM)" >>"$f"
	sleep 4
	echo "rss_5s $(rss_kb $pid VmRSS) $(rss_kb $pid VmHWM)" >>"$f"
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	rm -f "$STAGE/reload-a.json" "$STAGE/reload-b.json"
}
if [ -n "$RELOAD_SIZES" ]; then
	if [ -x build/ghostd ]; then
		for r in $RELOAD_ROUTES; do
			for n in $RELOAD_SIZES; do
				log "reload: $n vhosts x $r routes"
				reload_test "$n" "$r" || log "reload test $n x $r failed"
			done
		done
	else
		log "reload: build/ghostd missing"
	fi
fi

cat >"$RES/meta" <<EOF
command=make bench (BENCH_DURATION=$DUR BENCH_ROUNDS=$ROUNDS BENCH_CONNECTIONS=$CONNS$([ "$PIN" = 1 ] || echo " BENCH_PIN=0")$([ "$STORAGE" = 1g ] || echo " BENCH_STORAGE=$STORAGE")$([ "$MODES" = "hit pass ltpass ltmiss rxpass" ] || echo " BENCH_MODES=\"$MODES\""))
modes=$MODES
date=$(date -u '+%Y-%m-%d %H:%M UTC')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (+ uncommitted changes in the tree)')
nproc=$(nproc)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
kernel=$(uname -r)
varnish=$(varnishd -V 2>&1 | head -1)
nginx=$(nginx -v 2>&1)
wrk=$(wrk -v 2>&1 | head -1)
go=$($GO version)
load_before=$LOAD_BEFORE
load_after=$LOAD_AFTER
duration=$DUR
rounds=$ROUNDS
pairs=$PAIRS
pair_blocks=$PAIR_BLOCKS
pair_duration=$PAIR_DUR
conns=$CONNS
pin=$PIN
storage=$STORAGE
reload_routes=$RELOAD_ROUTES
sock_duration=$SOCK_DUR
warmup=$WARMUP
ghost_memo=${BENCH_GHOST_MEMO:-}
clk_tck=$(getconf CLK_TCK)
active=${ACTIVE[*]}
failed=${FAILED[*]:-}
EOF

docs=""
[ "$WRITE_DOCS" = 1 ] && [ ${#FAILED[@]} -eq 0 ] && docs=docs/benchmarks.md
[ "$WRITE_DOCS" = 1 ] && [ ${#FAILED[@]} -gt 0 ] && log "not writing docs/benchmarks.md: ${FAILED[*]} left out"
python3 test/bench/report.py "$RES" $docs
[ ${#FAILED[@]} -eq 0 ]

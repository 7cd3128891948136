#!/usr/bin/env bash
# `make run`: the ghost demo. Starts demo upstreams (build/upstream), ghostd
# and varnishd on loopback with vcl/ghost.vcl, prints curl commands that
# show each feature, and waits; Ctrl-C stops everything it started and
# removes the staging directory. Installs nothing (make run already ran
# dist/deps.sh and make build).
#
#   DEMO_PORT=6081          varnishd listen port (a free one is used when busy)
#   DEMO_DIR=/tmp/ghost-demo  staging directory (must be reachable by vcache)
#   DEMO_SMOKE=1            start, run every printed check, stop; exit 0/1
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${DEMO_DIR:-/tmp/ghost-demo}
PORT=${DEMO_PORT:-6081}
SMOKE=${DEMO_SMOKE:-0}

die() { echo "demo: $*" >&2; exit 1; }

for f in build/ghostd build/upstream build/libvmod_ghost.so vcl/ghost.vcl; do
	[ -e "$ROOT/$f" ] || die "$f is missing; run 'make build' (or 'make run', which builds first)"
done
command -v varnishd >/dev/null || die "varnishd not installed; run 'make deps'"
command -v curl >/dev/null || die "curl not installed"

# port_free PORT: nothing accepts connections on 127.0.0.1:PORT
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
taken=" "
# free_port VAR START: set VAR to the first free port from START on that we
# have not handed out (not in a $(...) subshell: `taken` must be updated)
free_port() {
	local -n out=$1
	local p=$2
	while ! port_free "$p" || [[ $taken == *" $p "* ]]; do p=$((p + 1)); done
	taken+="$p "
	out=$p
}

if ! port_free "$PORT"; then
	old=$PORT
	free_port PORT 16081
	echo "demo: port $old is busy, using $PORT"
fi
taken+="$PORT "
free_port ADMIN $((PORT + 1000))
free_port METRICS 19192
free_port P_API 19101
free_port P_STABLE 19102
free_port P_CANARY 19103
free_port P_BETA 19104
free_port P_LEGACY 19105

if [ -e "$DIR/upstream.pid" ] && kill -0 "$(cat "$DIR/upstream.pid")" 2>/dev/null; then
	die "another demo is running with $DIR (stop it, or set DEMO_DIR)"
fi

PIDS=()
cleanup() {
	trap - EXIT INT TERM
	local i
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[i]}" 2>/dev/null || true
	done
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		for _ in $(seq 100); do kill -0 "${PIDS[i]}" 2>/dev/null || break; sleep 0.1; done
		kill -9 "${PIDS[i]}" 2>/dev/null || true
	done
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'echo; echo "demo: stopping"; exit 130' INT TERM

rm -rf "$DIR"
mkdir -p "$DIR"
chmod 0755 "$DIR"
cp "$ROOT/build/libvmod_ghost.so" "$ROOT/vcl/ghost.vcl" "$DIR/"
chmod 0644 "$DIR/libvmod_ghost.so" "$DIR/ghost.vcl"
SOCK=$DIR/ghostd.sock

cat >"$DIR/main.vcl" <<EOF
vcl 4.1;

import ghost from "$DIR/libvmod_ghost.so";
include "$DIR/ghost.vcl";

sub vcl_init {
	ghost.init("$SOCK");
}

# The demo's own code runs after ghost's: show cache hits and misses.
sub vcl_deliver {
	if (obj.hits > 0) {
		set resp.http.X-Cache = "HIT";
	} else {
		set resp.http.X-Cache = "MISS";
	}
}
EOF

cat >"$DIR/ghost.json" <<EOF
{
  "version": 2,
  "vhosts": {
    "shop.localhost": {
      "routes": [
        {"path_match": {"type": "PathPrefix", "value": "/"},
         "backends": [{"address": "127.0.0.1", "port": $P_STABLE, "weight": 90},
                      {"address": "127.0.0.1", "port": $P_CANARY, "weight": 10}]},
        {"path_match": {"type": "PathPrefix", "value": "/api"},
         "backends": [{"address": "127.0.0.1", "port": $P_API}],
         "filters": {"response_header_modifier": {"set": [{"name": "x-route", "value": "api"}]}}},
        {"headers": [{"name": "x-beta", "value": "1", "type": "Exact"}],
         "backends": [{"address": "127.0.0.1", "port": $P_BETA}]},
        {"path_match": {"type": "PathPrefix", "value": "/legacy"},
         "backends": [{"address": "127.0.0.1", "port": $P_LEGACY}],
         "filters": {"url_rewrite": {"path_type": "ReplacePrefixMatch", "replace_prefix_match": "/v1"},
                     "request_header_modifier": {"set": [{"name": "x-rewritten-by", "value": "ghost"}]}}}
      ]
    },
    "old.localhost": {
      "routes": [
        {"filters": {"request_redirect": {"hostname": "shop.localhost", "status_code": 301}}}
      ]
    },
    "secure.localhost": {
      "routes": [
        {"filters": {"request_redirect": {"scheme": "https", "status_code": 308}}}
      ]
    }
  }
}
EOF
chmod 0644 "$DIR/ghost.json" "$DIR/main.vcl"

"$ROOT/build/upstream" \
	-listen "127.0.0.1:$P_API=api" \
	-listen "127.0.0.1:$P_STABLE=web-stable" \
	-listen "127.0.0.1:$P_CANARY=web-canary" \
	-listen "127.0.0.1:$P_BETA=beta" \
	-listen "127.0.0.1:$P_LEGACY=legacy" \
	>"$DIR/upstream.log" 2>&1 &
PIDS+=($!)
echo $! >"$DIR/upstream.pid"

"$ROOT/build/ghostd" -config "$DIR/ghost.json" -socket "$SOCK" -socket-mode 0666 \
	-metrics "127.0.0.1:$METRICS" -log-level info \
	>"$DIR/ghostd.log" 2>&1 &
PIDS+=($!)
GHOSTD_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || { cat "$DIR/ghostd.log" >&2; die "ghostd did not create $SOCK"; }

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$DIR/secret"
chmod 0600 "$DIR/secret"
varnishd -F -n "$DIR/varnish" -a "http=127.0.0.1:$PORT" -T "127.0.0.1:$ADMIN" -S "$DIR/secret" \
	-f "$DIR/main.vcl" -s malloc,64m -P "$DIR/varnishd.pid" \
	>"$DIR/varnishd.log" 2>&1 &
PIDS+=($!)
VARNISH_PID=$!
ready=0
for _ in $(seq 300); do
	kill -0 "$VARNISH_PID" 2>/dev/null || break
	if curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT/"; then ready=1; break; fi
	sleep 0.1
done
[ $ready = 1 ] || { cat "$DIR/varnishd.log" >&2; die "varnishd did not start"; }

URL="http://127.0.0.1:$PORT"
ADM="varnishadm -T 127.0.0.1:$ADMIN -S $DIR/secret"

cat <<EOF

ghost demo is up: varnishd $URL  ->  ghostd $SOCK  ->  demo upstreams
(every upstream answers with "X-Upstream: <name>" and a JSON echo of what it received)

  # path split: /api goes to the api upstream (and the route sets x-route: api on the response)
  curl -si -H 'Host: shop.localhost' $URL/api/items | grep -i -e '^HTTP' -e '^x-upstream' -e '^x-route'

  # weighted canary: / is 90% web-stable, 10% web-canary
  for i in \$(seq 20); do curl -s -o /dev/null -D - -H 'Host: shop.localhost' "$URL/?i=\$i" | grep -i '^x-upstream'; done | sort | uniq -c

  # header route: x-beta: 1 goes to the beta upstream
  curl -si -H 'Host: shop.localhost' -H 'x-beta: 1' $URL/ | grep -i '^x-upstream'

  # URL rewrite: /legacy/page?x=1 reaches the legacy upstream as /v1/page?x=1 (query kept)
  curl -s -H 'Host: shop.localhost' '$URL/legacy/page?x=1'

  # redirect: old.localhost -> shop.localhost, 301, path and query kept
  curl -si -H 'Host: old.localhost' '$URL/sale?x=1' | grep -i -e '^HTTP' -e '^location'

  # redirect to https: secure.localhost -> https://secure.localhost/..., 308
  curl -si -H 'Host: secure.localhost' $URL/login | grep -i -e '^HTTP' -e '^location'

  # no route: unknown host -> 404 "no route"
  curl -si -H 'Host: nothing.example' $URL/

  # caching is on: the same URL twice -> X-Cache: MISS then HIT; x-beta never gets the cached web page
  curl -si -H 'Host: shop.localhost' -H 'X-Want-Cache-Control: max-age=60' $URL/cached | grep -i -e '^x-upstream' -e '^x-cache'

Edit the routing table, then reload (ghostd also reloads by itself when the file changes):
  \${EDITOR:-vi} $DIR/ghost.json
  curl -si $URL/.varnish-ghost/reload          # 200, or 500 with x-ghost-error: <why>
  $ROOT/build/ghostd reload -socket $SOCK
  $ROOT/build/ghostd status -socket $SOCK
  $ROOT/build/ghostd route -config $DIR/ghost.json -host shop.localhost /api/x

Watch it work:
  varnishlog -n $DIR/varnish -g request -q 'ReqHeader:Host ~ "localhost"'
  $ADM backend.list          # native backends ghost created (ghost.127.0.0.1:<port>)
  curl -s http://127.0.0.1:$METRICS/metrics | grep ghost
  logs: $DIR/ghostd.log $DIR/varnishd.log $DIR/upstream.log

EOF

if [ "$SMOKE" != 1 ]; then
	echo "Ctrl-C stops everything."
	# wait until Ctrl-C, or until one of the processes dies
	while kill -0 "$VARNISH_PID" 2>/dev/null && kill -0 "$GHOSTD_PID" 2>/dev/null; do
		sleep 1 &
		wait $! || true
	done
	echo "demo: a process exited; see the logs above" >&2
	tail -n 20 "$DIR"/*.log >&2 || true
	exit 1
fi

# ---- DEMO_SMOKE=1: run every command above and check its answer ----
fail=0
ok() { echo "smoke ok:   $*"; }
bad() { echo "smoke FAIL: $*"; fail=1; }
# req ARGS...: fills $code, $hdrs, $body
req() {
	local out
	out=$(curl -s -m 5 -D "$DIR/h" -o "$DIR/b" -w '%{http_code}' "$@") || out=000
	code=$out
	hdrs=$(tr -d '\r' <"$DIR/h" 2>/dev/null || true)
	body=$(cat "$DIR/b" 2>/dev/null || true)
}
hdr() { printf '%s\n' "$hdrs" | grep -i "^$1:" | head -n1 | cut -d: -f2- | sed 's/^ //'; }

req -H 'Host: shop.localhost' "$URL/api/items"
[ "$code" = 200 ] && [ "$(hdr x-upstream)" = api ] && [ "$(hdr x-route)" = api ] &&
	ok "path split /api -> api" || bad "path split: $code x-upstream=$(hdr x-upstream) x-route=$(hdr x-route)"

stable=0 canary=0 other=0
for i in $(seq 100); do
	req -H 'Host: shop.localhost' "$URL/?i=$i"
	case "$(hdr x-upstream)" in web-stable) stable=$((stable + 1)) ;; web-canary) canary=$((canary + 1)) ;; *) other=$((other + 1)) ;; esac
done
[ $other = 0 ] && [ $canary -ge 1 ] && [ $canary -le 30 ] &&
	ok "canary: $stable web-stable, $canary web-canary of 100" || bad "canary: $stable stable, $canary canary, $other other"

req -H 'Host: shop.localhost' -H 'x-beta: 1' "$URL/"
[ "$code" = 200 ] && [ "$(hdr x-upstream)" = beta ] && ok "header route x-beta: 1 -> beta" || bad "header route: $code $(hdr x-upstream)"

req -H 'Host: shop.localhost' "$URL/legacy/page?x=1"
[ "$code" = 200 ] && [[ $body == *'"url":"/v1/page?x=1"'* ]] && [[ $body == *'"upstream":"legacy"'* ]] &&
	ok "rewrite /legacy/page?x=1 -> /v1/page?x=1" || bad "rewrite: $code $body"

req -H 'Host: old.localhost' "$URL/sale?x=1"
[ "$code" = 301 ] && [ "$(hdr location)" = "http://shop.localhost/sale?x=1" ] &&
	ok "redirect old.localhost -> $(hdr location)" || bad "redirect: $code location=$(hdr location)"

req -H 'Host: secure.localhost' "$URL/login"
[ "$code" = 308 ] && [ "$(hdr location)" = "https://secure.localhost/login" ] &&
	ok "https redirect -> $(hdr location)" || bad "https redirect: $code location=$(hdr location)"

req -H 'Host: nothing.example' "$URL/"
[ "$code" = 404 ] && [ "$body" = "no route" ] && ok "unknown host -> 404 no route" || bad "404: $code '$body'"

req -H 'Host: shop.localhost' -H 'X-Want-Cache-Control: max-age=60' "$URL/cached"
first=$(hdr x-upstream)
req -H 'Host: shop.localhost' -H 'X-Want-Cache-Control: max-age=60' "$URL/cached"
[ "$(hdr x-cache)" = HIT ] && [ "$(hdr x-upstream)" = "$first" ] && ok "cache: second request is a HIT" || bad "cache: x-cache=$(hdr x-cache)"
req -H 'Host: shop.localhost' -H 'x-beta: 1' -H 'X-Want-Cache-Control: max-age=60' "$URL/cached"
[ "$(hdr x-upstream)" = beta ] && ok "cache: x-beta: 1 still goes to beta" || bad "cache crossed routes: $(hdr x-upstream)"

req "$URL/.varnish-ghost/reload"
[ "$code" = 200 ] && ok "reload endpoint -> 200" || bad "reload: $code $(hdr x-ghost-error)"

if "$ROOT/build/ghostd" reload -socket "$SOCK" >/dev/null 2>&1; then ok "ghostd reload -socket"; else bad "ghostd reload -socket"; fi

bl=$($ADM backend.list 2>&1 || true)
[[ $bl == *"127.0.0.1:$P_API"* ]] && ok "backend.list shows ghost's native backends" || bad "backend.list: $bl"

if [ $fail = 0 ]; then echo "demo smoke: all checks passed"; else echo "demo smoke: FAILED"; tail -n 20 "$DIR/ghostd.log" "$DIR/varnishd.log" || true; fi
exit $fail

#!/usr/bin/env bash
# make test, suite "dist": what ships beside the code — dist/deps.sh's
# choices, make install (paths, man page, systemd units as systemd reads
# them), the Kubernetes example and the LICENSE. Needs a finished make build.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
tmp=$(mktemp -d /tmp/ghost-dist-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "dist: FAIL: $*"; fail=1; }
ok() { echo "dist: ok: $*"; }

# --- dist/deps.sh, dry run, on a PATH that has everything but wrk, nginx
# and a usable Go (a go 1.19 that cannot build go.mod's release).
fake=$tmp/bin
mkdir -p "$fake"
for c in varnishd pkg-config cc rst2man curl systemd-socket-activate prometheus-varnish-exporter; do
	printf '#!/bin/sh\nexit 0\n' >"$fake/$c"
	chmod +x "$fake/$c"
done
ln -s "$(command -v python3)" "$fake/python3"
# Only the tools deps.sh itself uses, so that wrk, nginx and go elsewhere on
# this machine stay out of sight.
core=$tmp/core
mkdir -p "$core"
for c in bash env grep id tee; do ln -s "$(command -v $c)" "$core/$c"; done
printf '#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo go1.19.8\nexit 0\n' >"$fake/go"
chmod +x "$fake/go"
deps() { env -i PATH="$fake:$core" GHOST_DEPS_DRY_RUN=1 "$core/bash" dist/deps.sh "$@" 2>&1; }
out=$(deps build)
if grep -q "golang-go/bookworm-backports" <<<"$out" && grep -q -- "-t bookworm-backports golang-go" <<<"$out" &&
	! grep -qE "wrk|nginx|varnish-selector" <<<"$out"; then
	ok "deps.sh build: Go from bookworm-backports for go 1.19, no benchmark packages"
else
	bad "deps.sh build:"$'\n'"$out"
fi
out=$(deps bench)
grep -q "wrk" <<<"$out" && grep -q "nginx-light" <<<"$out" && ok "deps.sh bench: wrk and nginx" || bad "deps.sh bench:"$'\n'"$out"
printf '#!/bin/sh\n[ "$1 $2" = "env GOVERSION" ] && echo go1.23.5\nexit 0\n' >"$fake/go"
out=$(deps test)
grep -q "golang-go" <<<"$out" && bad "deps.sh test with go 1.23 installs Go:"$'\n'"$out" || ok "deps.sh: go 1.23 (toolchain switching) is enough"
if grep -qE '^(build|install):.*deps-(test|bench)' Makefile; then bad "make build/install pull test or benchmark packages"; else ok "make build/install: build packages only"; fi

# --- make install into a staging root
dest=$tmp/root
make -s install DESTDIR="$dest" PREFIX=/opt/ghost >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; bad "make install"; }
vmoddir=$(pkg-config --variable=vmoddir varnishapi)
for f in /opt/ghost/bin/ghostd "$vmoddir/libvmod_ghost.so" /opt/ghost/share/man/man3/vmod_ghost.3 \
	/etc/varnish/ghost.vcl /etc/varnish/ghost.json /etc/systemd/system/ghostd.service /etc/systemd/system/ghostd.socket; do
	[ -f "$dest$f" ] || bad "make install did not install $f"
done
if grep -q '^\.TH "VMOD_GHOST" 3' "$dest/opt/ghost/share/man/man3/vmod_ghost.3" &&
	MANWIDTH=80 man -l "$dest/opt/ghost/share/man/man3/vmod_ghost.3" 2>/dev/null | grep -q "VOID init(STRING socket"; then
	ok "vmod_ghost(3) installed and renders"
else
	bad "vmod_ghost(3) man page"
fi
svc=$dest/etc/systemd/system/ghostd.service
grep -q '^ExecStart=/opt/ghost/bin/ghostd ' "$svc" && ok "ExecStart= from the install prefix" || bad "ExecStart= not rewritten to PREFIX: $(grep ExecStart= "$svc")"
for want in '^StartLimitIntervalSec=0$' '^Restart=always$' '^Type=notify$' '^WatchdogSec=[0-9]' '^DynamicUser=yes$' \
	'^IPAddressDeny=any$' '^IPAddressAllow=localhost$'; do
	grep -qE "$want" "$svc" || bad "ghostd.service lacks $want"
done
# systemd's own parser: unknown keys, bad values, missing executables and
# the Documentation= man page all produce output.
mkdir -p "$tmp/units"
for u in ghostd.service ghostd.socket; do
	sed "s|/opt/ghost|$dest/opt/ghost|g" "$dest/etc/systemd/system/$u" >"$tmp/units/$u"
done
if command -v systemd-analyze >/dev/null; then
	out=$(MANPATH="$dest/opt/ghost/share/man" SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$tmp/units/ghostd.service" "$tmp/units/ghostd.socket" 2>&1) &&
		[ -z "$out" ] && ok "systemd-analyze verify: clean" || bad "systemd-analyze verify:"$'\n'"$out"
else
	bad "systemd-analyze missing (dist/deps.sh test installs systemd)"
fi

# --- the Kubernetes example
python3 test/dist/k8s_check.py dist/kubernetes/ghost.yaml && ok "dist/kubernetes/ghost.yaml" || bad "dist/kubernetes/ghost.yaml"

# --- LICENSE
head -1 LICENSE | grep -q "BSD 2-Clause" && ok "LICENSE" || bad "LICENSE missing or not BSD-2-Clause"

exit $fail

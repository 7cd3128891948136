#!/usr/bin/env bash
# Installs what ghost needs, when it is missing, from Debian's archive only.
#
#   dist/deps.sh [build|run|test|bench]     (default: build)
#
#   build  make build / make install: varnish 7.1 + its VMOD headers,
#          varnish-modules (vmod_xkey: ghost.vcl imports it for tag and URL
#          purges), vmodtool (python3), a C compiler, pkg-config, rst2man
#          (python3-docutils, for the vmod_ghost(3) man page) and Go.
#   run    build + curl (make run prints and runs curl commands).
#   test   run + systemd-socket-activate and systemd-analyze (systemd),
#          prometheus-varnish-exporter (the counters test), python3-yaml
#          (the Kubernetes example is checked as YAML), clang with its
#          libFuzzer runtime (libclang-rt-dev: the shim's C fuzz targets).
#   bench  test + wrk, nginx (benchmark upstream) and vmod_selector
#          (benchmark comparison). Only make bench installs these.
#
# Go: go.mod names the Go release the module needs (go 1.26). A go command
# of 1.21 or later builds it anyway: its toolchain switching (GOTOOLCHAIN=auto,
# Debian's default) fetches that release from the Go module proxy on first
# use. Debian 12's own golang-go is 1.19, which cannot; so on bookworm this
# script enables bookworm-backports (if no source has it yet) and installs
# golang-go from there (1.23). A go already in PATH or in /usr/local/go is
# used when it is recent enough.
#
# GHOST_DEPS_DRY_RUN=1 prints what would be done instead of doing it.
set -euo pipefail
profile=${1:-build}
case $profile in build | run | test | bench) ;; *)
	echo "usage: $0 [build|run|test|bench]" >&2
	exit 2
	;;
esac
dry=${GHOST_DEPS_DRY_RUN:-0}
at_least() { # at_least PROFILE: the profile asked for includes PROFILE
	local order=" build run test bench "
	local want=${order%% "$1" *} have=${order%% "$profile" *}
	[ ${#have} -ge ${#want} ]
}

need=()
command -v varnishd >/dev/null || need+=(varnish)
[ -f /usr/include/varnish/vrt.h ] || need+=(libvarnishapi-dev)
[ -f /usr/lib/x86_64-linux-gnu/varnish/vmods/libvmod_xkey.so ] || need+=(varnish-modules)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v python3 >/dev/null || need+=(python3)
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v rst2man >/dev/null || need+=(python3-docutils)
if at_least run; then
	command -v curl >/dev/null || need+=(curl)
fi
if at_least test; then
	command -v systemd-socket-activate >/dev/null || need+=(systemd)
	command -v prometheus-varnish-exporter >/dev/null || need+=(prometheus-varnish-exporter)
	python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
	command -v clang >/dev/null || need+=(clang)
	ls "$(clang -print-resource-dir 2>/dev/null || echo /none)"/lib/linux/libclang_rt.fuzzer-*.a \
		>/dev/null 2>&1 || need+=(libclang-rt-dev)
fi
if at_least bench; then
	command -v wrk >/dev/null || need+=(wrk)
	command -v nginx >/dev/null || need+=(nginx-light)
	[ -f /usr/lib/x86_64-linux-gnu/varnish/vmods/libvmod_selector.so ] || need+=(varnish-selector)
fi

# go_minor GO: the minor version of a go command (1.19 → 19), 0 if unknown.
go_minor() {
	local v
	v=$("$1" env GOVERSION 2>/dev/null || true)
	v=${v#go1.}
	v=${v%%[!0-9]*}
	echo "${v:-0}"
}
gocmd=$(command -v go || true)
[ -n "$gocmd" ] || { [ -x /usr/local/go/bin/go ] && gocmd=/usr/local/go/bin/go; } || true
backports=""
if [ -z "$gocmd" ] || [ "$(go_minor "$gocmd")" -lt 21 ]; then
	codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
	if [ "$codename" = bookworm ]; then
		backports=bookworm-backports
	else
		need+=(golang-go)
	fi
fi

run() {
	if [ "$dry" = 1 ]; then
		echo "would run: $*"
	else
		"$@"
	fi
}
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if [ -n "$backports" ]; then
	if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
		echo "deps: enabling bookworm-backports for a Go that can build go.mod's release"
		src="Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
		if [ "$dry" = 1 ]; then
			echo "would write /etc/apt/sources.list.d/ghost-bookworm-backports.sources"
		else
			echo "$src" | $SUDO tee /etc/apt/sources.list.d/ghost-bookworm-backports.sources >/dev/null
		fi
	fi
fi
if [ ${#need[@]} -gt 0 ] || [ -n "$backports" ]; then
	echo "deps ($profile): installing ${need[*]}${backports:+ golang-go/$backports}"
	run $SUDO apt-get update -qq
	if [ ${#need[@]} -gt 0 ]; then
		run env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
	fi
	if [ -n "$backports" ]; then
		run env DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends -t "$backports" golang-go
	fi
fi
if [ "$dry" != 1 ] && gocmd=$(command -v go || echo /usr/local/go/bin/go) && [ -x "$gocmd" ] &&
	[ "$("$gocmd" env GOTOOLCHAIN 2>/dev/null)" = local ]; then
	echo "deps: note: GOTOOLCHAIN=local; if $("$gocmd" env GOVERSION) is older than go.mod's go line," \
		"the build fails: unset it (go env -u GOTOOLCHAIN) so Go can fetch that release" >&2
fi
# Debian starts some services on install where systemd runs; ghost's tests
# and demo start their own instances on private ports.
exit 0

#!/usr/bin/env bash
# Installs what ghost needs to build and test, when it is missing.
# Debian 12: varnish 7.1 + its VMOD headers, vmodtool (python3), wrk for
# benchmarks, systemd-socket-activate, nginx (benchmark upstream) and
# vmod_selector (benchmark comparison).
set -euo pipefail
need=()
command -v varnishd >/dev/null || need+=(varnish)
[ -f /usr/include/varnish/vrt.h ] || need+=(libvarnishapi-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v python3 >/dev/null || need+=(python3)
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v wrk >/dev/null || need+=(wrk)
command -v systemd-socket-activate >/dev/null || need+=(systemd)
command -v nginx >/dev/null || need+=(nginx-light)
[ -f /usr/lib/x86_64-linux-gnu/varnish/vmods/libvmod_selector.so ] || need+=(varnish-selector)
if ! command -v go >/dev/null && [ ! -x /usr/local/go/bin/go ]; then need+=(golang-go); fi
if [ ${#need[@]} -gt 0 ]; then
	echo "deps: installing ${need[*]}"
	SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts these services on install where systemd runs; ghost's tests
# and demo start their own instances on private ports.
exit 0

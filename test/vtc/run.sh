#!/usr/bin/env bash
# Run the varnishtest suites (test/vtc/*.vtc) against the real varnishd and
# the real ghostd. `make test-vtc` / `make test` call this.
#
#   bash test/vtc/run.sh                 # every suite
#   bash test/vtc/run.sh test/vtc/a.vtc  # some of them
#   VTC_JOBS=4 VTC_VERBOSE=1 bash test/vtc/run.sh
#
# varnishd's child runs as user vcache (default jail), so the VMOD and
# ghost.vcl are staged into a 0755 directory it can read; every suite
# makes its ${tmpdir} traversable so vcache reaches ghostd's socket.
#
# The preamble every suite with a ghostd shares (varnishtest 7.1 has no
# include; the macros point at test/vtc/ghostd.sh):
#
#   shell {chmod 755 ${tmpdir}}
#   shell {cat > ${tmpdir}/ghost.json <<EOT ... EOT}
#   process p1 {exec ${ghostd_run} ${tmpdir}} -start
#   shell {${ghostd_wait} ${tmpdir}}
#   varnish v1 -vcl {
#   	vcl 4.1;
#   	import ghost from "${vmod}";
#   	include "${ghost_vcl}";
#   	sub vcl_init { ghost.init("${tmpdir}/g.sock"); }
#   } -start
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/go/bin"

for t in build/libvmod_ghost.so build/ghostd build/upstream; do
	make -s "$t" >/dev/null
done

stage=$(mktemp -d /tmp/ghost-vtc.XXXXXX)
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"
install -m 0644 build/libvmod_ghost.so vcl/ghost.vcl vcl/example.vcl "$stage/"
vmoddir=$(pkg-config --variable=vmoddir varnishapi 2>/dev/null ||
	echo /usr/lib/x86_64-linux-gnu/varnish/vmods)

if [ $# -eq 0 ]; then
	set -- test/vtc/*.vtc
fi
args=(-j"${VTC_JOBS:-2}" -t "${VTC_TIMEOUT:-120}")
[ -n "${VTC_VERBOSE:-}" ] && args+=(-v)
exec varnishtest "${args[@]}" \
	-Dvmod="$stage/libvmod_ghost.so" \
	-Dghost_vcl="$stage/ghost.vcl" \
	-Dstage="$stage" \
	-Dvmod_path="$stage:$vmoddir" \
	-Dghostd="$PWD/build/ghostd" \
	-Dghostd_run="$PWD/test/vtc/ghostd.sh run" \
	-Dghostd_wait="$PWD/test/vtc/ghostd.sh wait" \
	-Dghost_upstream="$PWD/build/upstream" \
	"$@"

#!/bin/sh
# The ghostd half of every VTC's preamble. test/vtc/run.sh passes
# "ghostd.sh run" as ${ghostd_run} and "ghostd.sh wait" as ${ghostd_wait}:
#
#   process p1 {exec ${ghostd_run} ${tmpdir}} -start
#   shell {${ghostd_wait} ${tmpdir}}
#
# run DIR [FLAG...]  exec build/ghostd on DIR/ghost.json and DIR/g.sock
#                    (mode 0666, so varnishd's child, user vcache, can
#                    connect; no metrics; no file watching: a VTC reloads
#                    explicitly), with any extra flags after them.
# wait DIR           wait up to 10 s for DIR/g.sock to appear, then until
#                    ghostd answers on it (`ghostd status`): ghostd
#                    creates its socket before it loads the file, so a
#                    socket alone is not a ghostd that serves.
set -eu
cmd=$1 dir=$2
shift 2
case $cmd in
run)
	exec "$(dirname "$0")/../../build/ghostd" -config "$dir/ghost.json" -socket "$dir/g.sock" \
		-socket-mode 0666 -metrics "" -watch=false "$@"
	;;
wait)
	i=0
	while [ $i -lt 200 ]; do
		[ -S "$dir/g.sock" ] && break
		sleep 0.05
		i=$((i + 1))
	done
	if [ ! -S "$dir/g.sock" ]; then
		echo "ghostd did not create $dir/g.sock within 10 s" >&2
		exit 1
	fi
	# any status answer will do (exit 1 also means "answered, but no
	# table loaded": a suite may start ghostd on a bad file on purpose)
	out=$("$(dirname "$0")/../../build/ghostd" status -json -socket "$dir/g.sock" 2>&1) || true
	case $out in
	\{*) exit 0 ;;
	esac
	echo "ghostd does not answer on $dir/g.sock: $out" >&2
	exit 1
	;;
*)
	echo "usage: ghostd.sh run|wait DIR [ghostd flags]" >&2
	exit 2
	;;
esac

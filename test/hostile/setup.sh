# Shared set-up of the issue-18 reproductions (docs/reliability.md,
# "Hostile input"): sourced by the scripts here. Starts two Python
# upstreams (a: "A", b: "B"), ghostd and varnishd (as root, -j none) on free
# loopback ports in a fresh directory; teardown stops them by PID.
# R=<a tree with build/> picks the build (default: this repository);
# VCLDIR=<dir> another ghost.vcl.
R=${R:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
W=$(mktemp -d /tmp/ghost-hostile.XXXXXX); chmod 755 $W; mkdir $W/a $W/b; echo A >$W/a/x; echo B >$W/b/x; for i in $(seq 20); do echo A >$W/a/x$i; done
read PA PB PV < <(python3 -c 'import socket
ss=[socket.socket() for _ in range(3)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(*[s.getsockname()[1] for s in ss])')
for p in a:$PA b:$PB; do python3 -m http.server -p HTTP/1.1 -b 127.0.0.1 -d $W/${p%:*} ${p#*:} >/dev/null 2>&1 & echo $! >> $W/pids; done
echo '{"version":2,"vhosts":{}}' >$W/ghost.json
$R/build/ghostd -config $W/ghost.json -socket $W/g.sock -socket-mode 0666 -metrics "" >$W/ghostd.log 2>&1 & echo $! >> $W/pids
GPID=$!
cp $R/build/libvmod_ghost.so ${VCLDIR:-$R/vcl}/ghost.vcl $W/; chmod 644 $W/*.so $W/ghost.vcl
printf 'vcl 4.1;\nimport ghost from "%s/libvmod_ghost.so";\ninclude "%s/ghost.vcl";\nsub vcl_init { ghost.init("%s/g.sock"); }\n' $W $W $W >$W/main.vcl
sleep 0.5
varnishd -j none -n $W/n -a 127.0.0.1:$PV -f $W/main.vcl -s malloc,64m -P $W/varnishd.pid
load() { echo "$1" >$W/ghost.json; curl -s 127.0.0.1:$PV/.varnish-ghost/reload; }
A='{"address":"127.0.0.1","port":'$PA'}'; B='{"address":"127.0.0.1","port":'$PB'}'
teardown() { kill $(cat $W/varnishd.pid) $(cat $W/pids) 2>/dev/null; sleep 0.5; rm -rf "$W"; }

# Item 2, the pipe bypass: bash test/hostile/pipe_bypass.sh (prints the answers
# read on the connection: one HTTP/1.1 200 when fixed, two and "A" when not)
source "$(dirname "$0")/setup.sh" >/dev/null 2>&1; sleep 1
load '{"version":2,"vhosts":{"a.test":{"routes":[{"path_match":{"type":"Exact","value":"/x"}},{"backends":['$A']}]},"b.test":{"routes":[{"backends":['$B']}]}}}' >/dev/null
exec 3<>/dev/tcp/127.0.0.1/$PV
printf 'GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n' >&3; sleep .5
printf 'GET /x HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n' >&3; timeout 2 cat <&3 | grep -a "^HTTP/\|^[AB]$"
exec 3<&-
teardown

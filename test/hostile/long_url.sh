# Item 6, long URLs with a 14 KB answer: SIZES="30000 31500" bash test/hostile/long_url.sh
source "$(dirname "$0")/setup.sh" >/dev/null 2>&1; sleep 1
load "$(python3 -c '
import json;A={"address":"127.0.0.1","port":'$PA'}
adds=[{"name":"x-a%d"%i,"value":"v"*4000} for i in range(3)]
sets=[{"name":"x-r%d"%i,"value":"r"*1000} for i in range(2)]
f={"request_header_modifier":{"add":adds},"response_header_modifier":{"set":sets}}
print(json.dumps({"version":2,"vhosts":{"rx.test":{"routes":[{"path_match":{"type":"RegularExpression","value":"[0-9]+/item%d$"%i},"filters":f,"backends":[A]} for i in range(20)]+[{"filters":f,"backends":[A]}]}}}))')"
for n in ${SIZES:-20000 25000 28000 30000 31500}; do
  U=$(head -c $n /dev/zero | tr '\0' 9)
  codes=$(for i in $(seq 4); do curl -so/dev/null -w '%{http_code} ' -H 'Host: rx.test' "127.0.0.1:$PV/x$i-$U/item5"; curl -so/dev/null -w '%{http_code} ' -H 'Host: rx.test' "127.0.0.1:$PV/x$i-$U/item5"; done)
  echo "$n: $codes"
done
varnishlog -n $W/n -d -g raw -i Error,FetchError | cut -c20- | sort | uniq -c | head
teardown

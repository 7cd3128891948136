# Item 3, the regex CPU attack: bash test/hostile/regex_attack.sh [lits]
source "$(dirname "$0")/setup.sh"
RX=; sleep 1
load "$(python3 -c 'import json;A={"address":"127.0.0.1","port":'$PA'};print(json.dumps({"version":2,"vhosts":{"rx.test":{"routes":[{"path_match":{"type":"RegularExpression","value":"[0-9]+/item%d$"%i},"backends":[A]} for i in range(100)]},"base.test":{"routes":[{"backends":[A]}]}}}))')" >/dev/null
U=$(head -c 30000 /dev/zero | tr '\0' 9)
# variant "lits": the path carries every regex's literal, so no prefilter helps
[ "${1:-}" = lits ] && U="$(python3 -c 'print("".join("/item%d"%i for i in range(100)))')$U"
T0=$(awk '{print $14+$15}' /proc/$GPID/stat)
for i in $(seq 8); do (for j in $(seq 40); do curl -so/dev/null -w '%{http_code}\n' -H 'Host: rx.test' "127.0.0.1:$PV/$i-$j$U"; done >$W/rx.$i)& RX="$RX $!"; done
sleep 0.3
for i in $(seq 20); do curl -so/dev/null -w '%{http_code} ' -H 'Host: base.test' 127.0.0.1:$PV/x$i; done >$W/base; echo
wait $RX
T1=$(awk '{print $14+$15}' /proc/$GPID/stat)
echo "base.test: $(tr ' ' '\n' <$W/base | grep -c .) requests, $(tr ' ' '\n' <$W/base | grep -c '^5') errors: $(cat $W/base)"
echo "rx.test: $(cat $W/rx.* | sort | uniq -c | tr '\n' ' ')"
echo "ghostd CPU: $(( (T1-T0)*10 )) ms"
teardown

#!/usr/bin/env bash
# The shim's files form layers without cycles (vmod-shim/ghost.h, LAYERS):
# every vmod-shim/*.c is in the table, includes its own header, and
# includes the headers of other files only from lower layers.
set -euo pipefail
cd "$(dirname "$0")/../vmod-shim"
declare -A layer
cur=
while IFS=: read -r n f; do
	[ -n "$n" ] && cur=$n
	layer[$f]=$cur
done < <(sed -n '/^ \* LAYERS/,/^ \* LOCK ORDER/p' ghost.h |
	sed -nE 's/^ \*   ([0-9])  ([a-z_]+\.[ch]) .*/\1:\2/p; s/^ \*      ([a-z_]+\.[ch]) .*/:\1/p')
rc=0
for c in *.c; do
	l=${layer[$c]:-}
	if [ -z "$l" ]; then echo "shim-layers: $c is not in ghost.h's LAYERS table"; rc=1; continue; fi
	own=${c%.c}.h
	if [ -f "$own" ] && ! grep -q "^#include \"$own\"" "$c"; then
		echo "shim-layers: $c does not include $own"; rc=1
	fi
	for h in $(sed -nE 's/^#include "([a-z_]+)\.h"/\1/p' "$c"); do
		[ "$h.h" = "$own" ] && continue
		[ -f "$h.c" ] || continue		# ghost.h, msgpack.h, vcc
		hl=${layer[$h.c]:-}
		if [ -z "$hl" ] || [ "$hl" -ge "$l" ]; then
			echo "shim-layers: $c (layer $l) includes $h.h (layer ${hl:-?}): calls must go down"
			rc=1
		fi
	done
done
# ghost.h makes what follows it hidden (#pragma GCC visibility): in the
# shim and in the C tests built from its files, only the shim's own
# headers (or files) may come after it, else a libc or varnishd function
# declared there would be taken for the shim's own (a fuzzer's free()
# did: ASan's bad-free)
for c in *.c ../test/cshim/*.c; do
	if awk '/^#include "(ghost\.h|[a-z_]+\.c)"/ { g = 1; next }
	    g && /^#include/ && !/^#include "[a-z_]+\.[ch]"/ && !/"tbl\// { bad = 1 }
	    END { exit !bad }' "$c"; then
		echo "shim-layers: $c includes a system or varnishd header after ghost.h"
		rc=1
	fi
done
[ $rc -eq 0 ] && echo "shim-layers: ok (${#layer[@]} files)"
exit $rc

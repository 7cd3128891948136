#!/usr/bin/env python3
"""Per-request instruction counts from callgrind dumps of the varnishd
child (test/bench/callgrind.sh writes them): the dumps given are summed,
requests = calls of VCL_recv_method, and each figure is an inclusive
cost divided by the requests.

    python3 test/bench/cgsum.py cg.<pid>.out.<n> ...
"""
import re
import subprocess
import sys

# VCL methods, the shim's entry points and its decision path
WANT = re.compile(r"(VCL_[a-z_]+_method|vmod_[a-z_]+|ghost_(decide|memo_find|memo_lookup|"
                  r"cache_decide|cache_origin_only|memo_store|roundtrip|state_read))$")
LINE = re.compile(r"^\s*([0-9,]+)(?:\s+\([^)]*\))?\s+(\S+)(?:\s+\[.*\])?$")
CALLS = re.compile(r">\s+\S*VCL_recv_method \(([0-9,]+)x\)")


def annotate(f, *extra):
    # --auto=no: no annotated source (its lines would count twice)
    return subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                           "--auto=no", *extra, f], capture_output=True, text=True).stdout


def main(files):
    tot, fn, calls = 0, {}, 0
    for f in files:
        for line in annotate(f).splitlines():
            if "PROGRAM TOTALS" in line:
                tot += int(line.split()[0].replace(",", ""))
                continue
            m = LINE.match(line)
            if not m:
                continue
            name = m.group(2).split(":")[-1]
            if WANT.search(name):
                fn[name] = fn.get(name, 0) + int(m.group(1).replace(",", ""))
        # "> ???:VCL_recv_method (N x)" under each caller: the requests
        for m in CALLS.finditer(annotate(f, "--tree=calling")):
            calls += int(m.group(1).replace(",", ""))
    if calls == 0:
        sys.exit("cgsum.py: no requests counted in these dumps")
    print("%d requests counted" % calls)
    print("%9.0f  instructions per request (whole child)" % (tot / calls))
    for name, v in sorted(fn.items(), key=lambda kv: -kv[1]):
        print("%9.0f  %s" % (v / calls, name))


if __name__ == "__main__":
    main(sys.argv[1:])

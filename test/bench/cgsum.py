#!/usr/bin/env python3
"""Per-request instruction counts from callgrind dumps of the varnishd
child (test/bench/callgrind.sh writes them): the dumps given are summed,
requests = calls of VCL_recv_method, and each figure is an inclusive
cost divided by the requests.

    python3 test/bench/cgsum.py [--hits-only] cg.<pid>.out.<n> ...

--hits-only: leave out the dumps (~3 s each) in which any request
missed or passed (VCL_miss_method or VCL_pass_method called), so that a
hit run is all hits even when a few objects were still missing.
"""
import re
import subprocess
import sys

# VCL methods, the shim's entry points and its decision path
WANT = re.compile(r"(CNT_Request|HTTP1_DissectRequest|VCL_[a-z_]+_method|vmod_[a-z_]+|ghost_(decide|memo_find|memo_lookup|"
                  r"cache_decide|cache_origin_only|memo_store|roundtrip|state_read))$")
LINE = re.compile(r"^\s*([0-9,]+)(?:\s+\([^)]*\))?\s+(\S+)(?:\s+\[.*\])?$")
CALLS = re.compile(r">\s+\S*VCL_recv_method \(([0-9,]+)x\)")
NOHIT = re.compile(r">\s+\S*VCL_(miss|pass)_method \(")


def annotate(f, *extra):
    # --auto=no and cwd /: no annotated source, whose lines would count
    # twice (callgrind_annotate finds sources relative to its cwd)
    return subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                           "--auto=no", *extra, f], capture_output=True, text=True,
                          cwd="/").stdout


def main(args):
    hits_only = args[:1] == ["--hits-only"]
    files = args[1:] if hits_only else args
    tot, fn, calls, skipped = 0, {}, 0, 0
    for f in files:
        tree = annotate(f, "--tree=calling")
        if hits_only and NOHIT.search(tree):
            skipped += 1
            continue
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
        for m in CALLS.finditer(tree):
            calls += int(m.group(1).replace(",", ""))
    if calls == 0:
        sys.exit("cgsum.py: no requests counted in these dumps")
    print("%d requests counted in %d dumps%s" % (calls, len(files) - skipped,
                                                 " (%d with a miss or pass left out)" % skipped if hits_only else ""))
    print("%9.0f  instructions per request (whole child)" % (tot / calls))
    for name, v in sorted(fn.items(), key=lambda kv: -kv[1]):
        print("%9.0f  %s" % (v / calls, name))


if __name__ == "__main__":
    main(sys.argv[1:])

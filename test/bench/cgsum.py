#!/usr/bin/env python3
"""Per-request instruction counts from callgrind dumps of the varnishd
child (test/bench/callgrind.sh writes them): the dumps given are summed,
requests = calls of VCL_recv_method, and each figure is an inclusive
cost divided by the requests.

    python3 test/bench/cgsum.py [--hits-only] cg.<pid>.out.<n> ...

--hits-only: leave out the dumps (~3 s each) in which any request
missed or passed (VCL_miss_method or VCL_pass_method called), so that a
hit run is all hits even when a few objects were still missing.

Profiles recorded with more events (CG_VGOPTS="--cache-sim=yes
--branch-sim=yes" bash test/bench/callgrind.sh ...) get every event per
request: I1mr/D1mr/D1mw are simulated L1 misses (instruction fetch, data
read, data write), Bcm/Bim mispredicted conditional/indirect branches,
the costs instruction counts do not show.
"""
import re
import subprocess
import sys

# VCL methods, the shim's entry points and its decision path
WANT = re.compile(r"(CNT_Request|HTTP1_DissectRequest|VCL_[a-z_]+_method|vmod_[a-z_]+|ghost_(decide|memo_find|memo_lookup|"
                  r"cache_decide|cache_origin_only|memo_store|roundtrip|state_read))$")
LINE = re.compile(r"^\s*([0-9,]+)(?:\s+\([^)]*\))?\s+(\S+)(?:\s+\[.*\])?$")
# one number per event, each maybe followed by "(12.3%)"; then the name
NUM = re.compile(r"\s*([0-9,]+)(?:\s+\(\s*[0-9.]+%\))?")
EVENTS = re.compile(r"^Events shown:\s+(.*)$", re.M)
CALLS = re.compile(r">\s+\S*VCL_recv_method \(([0-9,]+)x\)")
NOHIT = re.compile(r">\s+\S*VCL_(miss|pass)_method \(")


def annotate(f, *extra):
    # --auto=no and cwd /: no annotated source, whose lines would count
    # twice (callgrind_annotate finds sources relative to its cwd)
    return subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100",
                           "--auto=no", *extra, f], capture_output=True, text=True,
                          cwd="/").stdout


def numbers(line, n):
    """The n event counts at the start of line, and the rest (None: no)."""
    vals, pos = [], 0
    for _ in range(n):
        m = NUM.match(line, pos)
        if not m:
            return None, None
        vals.append(int(m.group(1).replace(",", "")))
        pos = m.end()
    return vals, line[pos:].strip()


def add(acc, key, vals):
    old = acc.get(key)
    acc[key] = vals if old is None else [a + b for a, b in zip(old, vals)]


def main(args):
    hits_only = args[:1] == ["--hits-only"]
    files = args[1:] if hits_only else args
    tot, fn, calls, skipped, events = None, {}, 0, 0, ["Ir"]
    for f in files:
        tree = annotate(f, "--tree=calling")
        if hits_only and NOHIT.search(tree):
            skipped += 1
            continue
        out = annotate(f)
        m = EVENTS.search(out)
        if m:
            events = m.group(1).split()
        for line in out.splitlines():
            vals, rest = numbers(line, len(events))
            if vals is None:
                continue
            if "PROGRAM TOTALS" in rest:
                tot = vals if tot is None else [a + b for a, b in zip(tot, vals)]
                continue
            name = rest.split()[0].split(":")[-1] if rest else ""
            if WANT.search(name):
                add(fn, name, vals)
        # "> ???:VCL_recv_method (N x)" under each caller: the requests
        for m in CALLS.finditer(tree):
            calls += int(m.group(1).replace(",", ""))
    if calls == 0:
        sys.exit("cgsum.py: no requests counted in these dumps")
    print("%d requests counted in %d dumps%s" % (calls, len(files) - skipped,
                                                 " (%d with a miss or pass left out)" % skipped if hits_only else ""))
    if len(events) == 1:
        print("%9.0f  instructions per request (whole child)" % (tot[0] / calls))
        for name, v in sorted(fn.items(), key=lambda kv: -kv[1][0]):
            print("%9.0f  %s" % (v[0] / calls, name))
        return
    print("per request: " + " ".join("%9s" % e for e in events))
    print("whole child  " + " ".join("%9.1f" % (v / calls) for v in tot))
    for name, v in sorted(fn.items(), key=lambda kv: -kv[1][0]):
        print("%-12s " % name[:12] + " ".join("%9.1f" % (x / calls) for x in v) + "  " + name)


if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""Turns the results of test/bench/run.sh into markdown.

    report.py RESULTS_DIR [DOCS_FILE]

Prints the report; with DOCS_FILE, replaces (or appends) the two sections
this harness owns in that file and leaves every other section alone.
"""
import glob
import os
import random
import re
import statistics
import sys

HZ = os.sysconf("SC_CLK_TCK")

SECTION_VARIANTS = "## make bench: Varnish variants"
SECTION_RELOAD = "## reload time and RSS"
NAMES = {"V0": "V0 static", "V1": "V1 if-chain", "V2": "V2 selector", "V3": "V3 ghost",
         "V4": "V4 ghost + cache_policy", "V5": "V5 ghost + timeouts, retry, probes",
         "V6": "V6 = V2, one upstream (diagnostic)",
         "V7": "V7 = V3, one upstream (diagnostic)"}
MODES = {"hit": "cache hits", "pass": "pass",
         "ltpass": "long tail, pass (every request a new URL under the routed prefixes)",
         "ltmiss": "long tail, cache misses (every request a new URL, stored)",
         "rxpass": "long tail, pass, on the vhost with regex path routes"}


def meta(res):
    out = {}
    with open(os.path.join(res, "meta")) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            out[k] = v
    return out


def dur_ms(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", s)
    if not m:
        return None
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]


def parse_wrk(path, cpu=True):
    text = open(path).read()
    r = {"rps": None, "p50": None, "p99": None, "reqs": 0, "bad": 0, "errors": 0}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"^\s+(\d+) requests in", text, re.M)
    if m:
        r["reqs"] = int(m.group(1))
    m = re.search(r"Latency Distribution\n((?:\s+\d+%\s+\S+\n)+)", text)
    if m:
        for pct, val in re.findall(r"(\d+)%\s+(\S+)", m.group(1)):
            if pct in ("50", "99"):
                r["p" + pct] = dur_ms(val)
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        r["bad"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["errors"] = sum(int(x) for x in m.groups())
    if not cpu:
        return r
    cpu = open(path + ".cpu").read().split()
    r["vticks"], r["gticks"], r["ms"] = int(cpu[0]), int(cpu[1]), int(cpu[2])
    r["calls"] = int(cpu[3]) if len(cpu) > 3 else None  # ghostd decisions (V3)
    return r


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_ms(x):
    if x is None:
        return "–"
    return "%.0f µs" % (x * 1000) if x < 1 else "%.2f ms" % x


def fmt_us(x):
    return "–" if x is None else "%.1f µs" % x


def variants_section(res, m):
    clk = int(m["clk_tck"])
    active = m["active"].split()
    runs = {}
    for path in glob.glob(os.path.join(res, "run-*-*-*.txt")):
        _, r, mode, v = os.path.basename(path)[:-4].split("-")
        runs.setdefault((mode, v), {})[int(r)] = parse_wrk(path)
    summary = {}
    lines = []
    for mode in [m_ for m_ in MODES if any(k[0] == m_ for k in runs)]:
        lines.append("\n### %s\n\n" % (MODES[mode][0].upper() + MODES[mode][1:]))
        lines.append("| variant | req/s (median) | min–max | vs V0 | p50 | p99 | varnishd CPU/req "
                     "| ghostd CPU/req | sum CPU/req | ghostd calls/req | non-2xx / errors |\n")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
        base = runs.get((mode, "V0"), {})
        for v in active:
            rr = runs.get((mode, v), {})
            if not rr:
                continue
            rps = [x["rps"] for x in rr.values() if x["rps"]]
            ratios = [rr[r]["rps"] / base[r]["rps"] for r in rr
                      if r in base and rr[r]["rps"] and base[r]["rps"]]
            vcpu = [x["vticks"] / clk / x["reqs"] * 1e6 for x in rr.values() if x["reqs"]]
            gcpu = [x["gticks"] / clk / x["reqs"] * 1e6 for x in rr.values() if x["reqs"]]
            s = {"rps": med(rps), "ratio": med(ratios), "p50": med(x["p50"] for x in rr.values()),
                 "p99": med(x["p99"] for x in rr.values()), "vcpu": med(vcpu),
                 "gcpu": med(gcpu) if v in ("V3", "V4", "V5") else None,
                 "bad": sum(x["bad"] for x in rr.values()),
                 "errors": sum(x["errors"] for x in rr.values()), "n": len(rps)}
            s["per_round"] = {r: x["rps"] for r, x in rr.items() if x["rps"]}
            calls = [x["calls"] / x["reqs"] for x in rr.values() if x["reqs"] and x["calls"] is not None]
            s["calls"] = med(calls) if v == "V3" else None
            summary[(mode, v)] = s
            total = None if s["vcpu"] is None else s["vcpu"] + (s["gcpu"] or 0)
            lines.append("| %s | **%s** | %s–%s | %s | %s | %s | %s | %s | %s | %s | %d / %d |\n" % (
                NAMES[v], "{:,.0f}".format(s["rps"]) if s["rps"] else "–",
                "{:,.0f}".format(min(rps)) if rps else "–", "{:,.0f}".format(max(rps)) if rps else "–",
                "–" if v == "V0" or s["ratio"] is None else "%.1f %%" % (100 * s["ratio"]),
                fmt_ms(s["p50"]), fmt_ms(s["p99"]), fmt_us(s["vcpu"]), fmt_us(s["gcpu"]),
                fmt_us(total), "–" if s["calls"] is None else "%.4f" % s["calls"],
                s["bad"], s["errors"]))
    return lines, summary


def boot_ci(xs, n=4000, seed=1):
    """The 95 % bootstrap interval of the median of xs (percentile method,
    a fixed seed: the same results give the same interval)."""
    rnd = random.Random(seed)
    k = len(xs)
    meds = sorted(statistics.median(rnd.choices(xs, k=k)) for _ in range(n))
    return meds[int(0.025 * n)], meds[int(0.975 * n) - 1]


def paired(res):
    """Per workload and variant paired against V0 (run.sh, BENCH_PAIRS and
    BENCH_PAIR_WITH; V3 by default): the pairs' V/V0 req/s ratios and
    V0/V CPU-per-request ratios (the req/s a saturated, pinned varnishd
    would reach: cost ratios inverted), with their medians and 95 %
    bootstrap intervals. Returns {mode: {variant: stats}}."""
    runs = {}
    for path in glob.glob(os.path.join(res, "pair-*-*-*.txt")):
        _, mode, i, v = os.path.basename(path)[:-4].split("-")
        w = parse_wrk(path, cpu=False)
        ns = open(path + ".ns").read().split()
        w["cpu"] = (int(ns[0]) + int(ns[1])) / 1000.0 / w["reqs"] if w["reqs"] else None
        # run.sh's proc_counts: utime, stime (clock ticks), faults, switches
        w["k"] = None
        if os.path.exists(path + ".k") and w["reqs"]:
            k = [int(x) for x in open(path + ".k").read().split()]
            if len(k) == 6:
                w["k"] = (k[0] * 1e6 / HZ / w["reqs"], k[1] * 1e6 / HZ / w["reqs"],
                          k[4] / w["reqs"])
        runs.setdefault(mode, {}).setdefault(int(i), {})[v] = w
    m = meta(res)
    nblocks = int(m.get("pair_blocks", "1") or 1)
    per = -(-int(m.get("pairs", "0") or 0) // nblocks) if nblocks > 1 else 0
    out = {}
    for mode, pairs in runs.items():
        others = sorted({v for p in pairs.values() for v in p if v != "V0"})
        for v in others:
            rps, cost, c0, c3 = [], [], [], []
            blocks = {}
            for i, p in sorted(pairs.items()):
                a, b = p.get("V0"), p.get(v)
                if not a or not b or not a["rps"] or not b["rps"] or not a["cpu"] or not b["cpu"]:
                    continue
                if per:
                    blocks.setdefault((i - 1) // per, []).append(b["rps"] / a["rps"])
                rps.append(b["rps"] / a["rps"])
                cost.append(a["cpu"] / b["cpu"])
                c0.append(a["cpu"])
                c3.append(b["cpu"])
            if len(rps) >= 5:
                ks = [p[v]["k"] for p in pairs.values() if p.get(v) and p[v]["k"]]
                k0 = [p["V0"]["k"] for p in pairs.values() if p.get("V0") and p["V0"]["k"]]
                out.setdefault(mode, {})[v] = {
                    "n": len(rps), "rps": statistics.median(rps), "rps_ci": boot_ci(rps),
                    "cost": statistics.median(cost), "cost_ci": boot_ci(cost),
                    "cpu0": statistics.median(c0), "cpu3": statistics.median(c3),
                    "k": [statistics.median(c) for c in zip(*ks)] if len(ks) >= 5 else None,
                    "k0": [statistics.median(c) for c in zip(*k0)] if len(k0) >= 5 else None,
                    "blocks": [statistics.median(x) for _, x in sorted(blocks.items())]}
        # V3 against the other routing variants of the same pairs (the
        # if-chain and vmod_selector targets): V3's req/s over theirs
        for v in ("V1", "V2"):
            r = [p["V3"]["rps"] / p[v]["rps"] for p in pairs.values()
                 if p.get("V3") and p.get(v) and p["V3"]["rps"] and p[v]["rps"]]
            if len(r) >= 5:
                out.setdefault(mode, {})["V3/" + v] = {"n": len(r), "rps": statistics.median(r),
                                                      "rps_ci": boot_ci(r)}
    return out


def blocks_text(m):
    """BENCH_PAIR_BLOCKS: the pairs of a workload in blocks, each on new
    varnishd children."""
    n = int(m.get("pair_blocks", "1") or 1)
    if n <= 1:
        return ""
    return (" Each workload's pairs ran in %d blocks, with new varnishd children (`varnishadm "
            "stop`/`start`, then the warm-up again) before each block after the first, so the "
            "samples span %d process instances of each variant (a fresh process has a fresh "
            "memory layout; medians of one instance moved by more than their intervals between "
            "runs); \"per block\" gives each block's median req/s ratio." % (n, n))


def paired_section(pr, m):
    if not pr:
        return []
    a = ["\n### Paired runs: V3 against V0\n\n",
         "After the rounds, V0 and V3 (and the variants named in BENCH_PAIR_WITH) alternate "
         "in short runs (%s pairs per workload, %s s per run, the order reversed every pair: "
         "V0 V3, V3 V0, ...), so that the machine's drift falls on every run of a pair alike; "
         "each pair's ratio is one sample (V3 against V1 and V2: V3's req/s over theirs in "
         "the same pair). \"CPU/req\" is "
         "the scheduler's run time of every thread of the varnishd child (plus ghostd's for "
         "V3: the sum, the fair cost; `/proc/PID/task/*/schedstat`) over the requests; "
         "\"by CPU/req\" is V0's CPU per request over V3's, the req/s ratio a saturated, "
         "pinned varnishd reaches. Medians, with the 95 %% bootstrap interval of the median "
         "in brackets.%s\n\n" % (m.get("pairs", "?"), m.get("pair_duration", "?"), blocks_text(m)),
         "| workload | variant | pairs | vs V0, req/s | vs V0, by CPU/req | V0 CPU/req | its CPU/req | per block |\n",
         "|---|---|---:|---:|---:|---:|---:|---:|\n"]
    for mode in [x for x in MODES if x in pr]:
        for v in sorted(x for x in pr[mode] if "/" not in x):
            p = pr[mode][v]
            a.append("| %s | %s | %d | **%.1f %%** [%.1f–%.1f] | **%.1f %%** [%.1f–%.1f] | %s | %s | %s |\n" % (
                MODES[mode], NAMES.get(v, v), p["n"], 100 * p["rps"], 100 * p["rps_ci"][0],
                100 * p["rps_ci"][1], 100 * p["cost"], 100 * p["cost_ci"][0], 100 * p["cost_ci"][1],
                fmt_us(p["cpu0"]), fmt_us(p["cpu3"]),
                " · ".join("%.1f" % (100 * x) for x in p.get("blocks") or []) or "–"))
    return a


def paired_split(pr):
    """Where the CPU goes in the paired runs: user and kernel time of the
    varnishd child per request (utime/stime, clock ticks: a sampled split)
    and its context switches per request, V0 against each variant."""
    a = []
    for mode in [x for x in MODES if x in pr]:
        for v in sorted(x for x in pr[mode] if "/" not in x):
            p = pr[mode][v]
            if p.get("k") and p.get("k0"):
                a.append("| %s | %s | %.1f + %.1f µs | %.1f + %.1f µs | %.2f | %.2f |\n" % (
                    MODES[mode], NAMES.get(v, v), p["k0"][0], p["k0"][1], p["k"][0], p["k"][1],
                    p["k0"][2], p["k"][2]))
    if not a:
        return []
    return (["\nWhere the child's CPU goes in the same pairs (medians per request: user + "
             "kernel time from utime/stime, sampled at clock ticks, and context switches "
             "of all its threads):\n\n",
             "| workload | variant | V0 user + kernel | its user + kernel | V0 switches | its switches |\n",
             "|---|---|---:|---:|---:|---:|\n"] + a)


def paired_targets(pr):
    rows = []
    for mode, what in (("ltpass", "ltpass"), ("ltmiss", "ltmiss"),
                       ("hit", "cache hits")):
        p = pr.get(mode, {}).get("V3")
        if p is None:
            continue
        rows.append(("%s: V3 ≥ 97 %% of V0 (paired runs, req/s)" % what,
                     "%.1f %% [%.1f–%.1f]" % (100 * p["rps"], 100 * p["rps_ci"][0], 100 * p["rps_ci"][1]),
                     "**met**" if p["rps"] >= 0.97 else "**missed**"))
        for v in ("V1", "V2"):
            q = pr.get(mode, {}).get("V3/" + v)
            if q is None or mode == "hit":
                continue
            rows.append(("%s: V3 ≥ %s (paired runs, req/s)" % (what, NAMES[v]),
                         "%.1f %% [%.1f–%.1f]" % (100 * q["rps"], 100 * q["rps_ci"][0],
                                                  100 * q["rps_ci"][1]),
                         "**met**" if q["rps"] >= 1.0 else "**missed**"))
    return rows


def targets(summary):
    def get(mode, v, k):
        s = summary.get((mode, v))
        return None if s is None else s[k]

    def verdict(ok):
        return "–" if ok is None else ("**met**" if ok else "**missed**")

    def vs(mode, other):
        # judged like the V0 ratios: the median of the per-round ratios
        # (both variants measured in the same round)
        a, b = get(mode, "V3", "rps"), get(mode, other, "rps")
        pa, pb = get(mode, "V3", "per_round") or {}, get(mode, other, "per_round") or {}
        rr = med([pa[r] / pb[r] for r in pa if r in pb])
        return ("%s: V3 ≥ %s" % (mode, NAMES[other]),
                "{:,.0f} vs {:,.0f} req/s (medians); per round {:.1f} %".format(a, b, 100 * rr)
                if a and b and rr else "–",
                verdict(None if not rr else rr >= 1.0))

    rows = []
    # issue 16: the long tail
    for mode in ("ltpass", "ltmiss"):
        r = get(mode, "V3", "ratio")
        if r is None:
            continue
        rows.append(("%s: V3 ≥ 97 %% of V0" % mode, "%.1f %%" % (100 * r), verdict(r >= 0.97)))
        rows.append(vs(mode, "V1"))
        rows.append(vs(mode, "V2"))
        c = get(mode, "V3", "calls")
        rows.append(("%s: ghostd asked on < 1 %% of requests (warm)" % mode,
                     "–" if c is None else "%.2f %%" % (100 * c), verdict(None if c is None else c < 0.01)))
    r = get("hit", "V3", "ratio")
    if r is not None:
        rows.append(("cache hits: V3 ≥ 97 % of V0 (issue 16: hit path unchanged)", "%.1f %%" % (100 * r),
                     verdict(r >= 0.97)))
    r = get("hit", "V3", "ratio")
    if r is not None:
        rows.append(("cache hits: V3 ≥ 95 % of V0", "%.1f %%" % (100 * r), verdict(r >= 0.95)))
    r = get("hit", "V4", "ratio")
    if r is not None:
        rows.append(("cache hits, every route with a cache_policy: V4 ≥ 97 % of V0 (issue 11)",
                     "%.1f %%" % (100 * r), verdict(r >= 0.97)))
    r = get("pass", "V3", "ratio")
    if r is not None:
        rows.append(("pass: V3 ≥ 90 % of V0", "%.1f %%" % (100 * r), verdict(r >= 0.90)))
    for other in ("V1", "V2"):
        if get("pass", "V3", "rps") is not None:
            rows.append(vs("pass", other))
    # issue 12: timeouts, retry and probes cost little on a fetch
    p5, p3 = get("pass", "V5", "per_round") or {}, get("pass", "V3", "per_round") or {}
    rr = med([p5[r] / p3[r] for r in p5 if r in p3])
    if rr is not None:
        rows.append(("pass, every route with timeouts + retry + a probe: V5 ≥ 95 % of V3 (issue 12)",
                     "{:,.0f} vs {:,.0f} req/s (medians); per round {:.1f} %".format(
                         get("pass", "V5", "rps"), get("pass", "V3", "rps"), 100 * rr),
                     verdict(rr >= 0.95)))
    return rows


def socket_section(res, m):
    out = ["\n### ghostd decisions over its socket\n\n"]
    path = os.path.join(res, "sockload.txt")
    if os.path.exists(path):
        text = open(path).read().strip()
        out.append("`test/bench/sockload` against the V3 ghostd (same 100 × 10 table, varnishd idle, "
                   "after the Varnish runs): Go client, one request outstanding per connection, "
                   "cycling through the same 5,000 requests with the same 6 headers, %s s per row. "
                   "ghostd CPU/call = its utime+stime over the calls. The Go client shares the 2 vCPUs.\n\n"
                   % m.get("sock_duration", "?"))
        out.append(text + "\n" if text.startswith("|") else "```\n" + text + "\n```\n")
    path = os.path.join(res, "gobench.txt")
    if os.path.exists(path):
        text = open(path).read()
        keep = [l for l in text.splitlines()
                if l.startswith(("Benchmark", "goos", "goarch", "pkg", "cpu", "ok", "FAIL", "---", "no Go"))]
        if not any(l.startswith("Benchmark") for l in keep):
            keep = keep or text.splitlines()[-15:]
        out += ["\n`go test -run '^$' -bench . -benchmem ./protocol/` (same run, after the Varnish runs):\n\n```\n"]
        out += [l + "\n" for l in keep] + ["```\n"]
    return out if len(out) > 1 else []


def go_dur_ms(s):
    m = re.match(r"([\d.]+)(ns|µs|us|ms|s)$", s)
    if not m:
        return None
    return float(m.group(1)) * {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}[m.group(2)]


def reload_section(res, m):
    found = []
    for path in glob.glob(os.path.join(res, "reload-*-*.txt")):
        n, r = re.search(r"reload-(\d+)-(\d+)\.txt$", path).groups()
        found.append((int(r), int(n), path))
    if not found:
        return [], []
    lines = ["\n| vhosts × routes | routes | file | reload wall (median of 3) | in ghostd (median) | ok "
             "| RSS after 3rd reload | RSS +1 s | RSS +5 s | peak RSS (VmHWM) |\n",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|\n"]
    verdicts = []
    for r, n, path in sorted(found, key=lambda x: (-x[0], x[1])):
        size, reloads, rss = 0, [], {}
        msg = ""
        for line in open(path):
            f = line.split()
            if f[0] == "bytes":
                size = int(f[1])
            elif f[0] == "reload":
                reloads.append((int(f[2]) / 1000.0, f[3] == "1", int(f[4] or 0), int(f[5] or 0)))
                msg = " ".join(f[6:])
            elif f[0] in ("rss_1s", "rss_5s"):
                rss[f[0]] = (int(f[1]), int(f[2]))
        if not reloads:
            continue
        inside = []
        logp = os.path.join(res, "ghostd-reload-%d-%d.log" % (n, r))
        if os.path.exists(logp):
            for line in open(logp):
                if 'msg="config loaded"' in line and "trigger=socket" in line:
                    d = re.search(r"duration=(\S+)", line)
                    if d:
                        inside.append(go_dur_ms(d.group(1)))
        times = [t for t, _, _, _ in reloads]
        ok = all(o for _, o, _, _ in reloads)
        last = reloads[-1][2]
        r1 = rss.get("rss_1s", (last, reloads[-1][3]))[0]
        r5, hwm = rss.get("rss_5s", (r1, reloads[-1][3]))
        lines.append("| {:,} × {} | {:,} | {:.1f} MB | **{:.0f} ms** | {} | {} | {:.0f} MB | {:.0f} MB | **{:.0f} MB** | {:.0f} MB |\n".format(
            n, r, n * r, size / 1e6, statistics.median(times),
            "%.0f ms" % statistics.median(inside) if inside else "–",
            "yes" if ok else "no: " + msg[:80], last / 1024, r1 / 1024, r5 / 1024, hwm / 1024))
        if n == 10000:
            verdicts.append(("reload of 10,000 vhosts (× %d routes) < 1 s" % r,
                             "%.0f ms" % statistics.median(times),
                             "**met**" if ok and statistics.median(times) < 1000 else "**missed**"))
            verdicts.append(("ghostd RSS < 200 MB (10,000 vhosts × %d routes, peak)" % r,
                             "peak %.0f MB, %.0f MB after 5 s" % (hwm / 1024, r5 / 1024),
                             "**met**" if hwm / 1024 < 200 else "**missed**"))
    return lines, verdicts


def cluster_section(res):
    path = os.path.join(res, "cluster.txt")
    if not os.path.exists(path):
        return []
    return ["\n", open(path).read().replace("### Clustering", "### Clustering (`test/bench/cluster`)", 1)]


def header(m):
    return ("Measured by `%s` on %s: %s vCPU (%s), kernel %s; %s, %s, %s, %s; tree at %s. "
            "Load average before / after the Varnish runs: %s / %s.\n" % (
                m["command"], m["date"], m["nproc"], m["cpu"], m["kernel"], m["varnish"],
                m["nginx"].replace("nginx version: ", ""), m["wrk"].split(" [")[0], m["go"],
                m["commit"], m["load_before"], m["load_after"]))


def pin_text(m):
    """How the processes were placed on the CPUs (BENCH_PIN)."""
    if m.get("pin", "0") == "1":
        return ("Each varnishd (manager and child) is pinned to the last CPU and wrk, "
                "nginx and ghostd to the others (`taskset`, BENCH_PIN=1), so a variant's "
                "req/s follows varnishd's CPU per request rather than where the scheduler "
                "put wrk.")
    return "Processes are not pinned (BENCH_PIN=0): the scheduler places them."


def storage_text(res, m):
    """Each variant's storage at the end of the runs (storage.txt): evictions,
    so that a reader sees whether the miss runs compared like with like."""
    p = os.path.join(res, "storage.txt")
    if not os.path.exists(p):
        return []
    rows = [l.split() for l in open(p) if len(l.split()) == 4]
    if not rows:
        return []
    parts = ["%s %s evicted, %s objects, %s bytes per object" % (
        NAMES.get(v, v).split(" ")[0], "{:,}".format(int(nk)), "{:,}".format(int(no)),
        "{:,.0f}".format(int(b) / int(no)) if int(no) else "–") for v, nk, no, b in rows]
    ev = any(int(r[1]) for r in rows)
    return ["\nStorage at the end of the runs (`-s malloc,%s` each): %s. %s\n" % (
        m.get("storage", "256m"), "; ".join(parts),
        "**Some variant evicted objects during the runs: its miss runs were partly measured "
        "with a full cache.**" if ev else
        "No variant evicted an object: every miss run stored into a cache with room.")]


def memo_host_text(res):
    """V3's memo at the end of the runs (memo-host.txt): lookups served, and
    those the host table did not serve (GHOST.memo_host_miss)."""
    p = os.path.join(res, "memo-host.txt")
    if not os.path.exists(p):
        return []
    f = open(p).read().split()
    if len(f) != 2:
        return []
    hit, miss = int(f[0]), int(f[1])
    return ["\nV3's memo at the end of the runs: %s lookups served by it (GHOST.memo_hit), %s of all "
            "lookups not served by its host table (GHOST.memo_host_miss: a host's first request in "
            "a generation, or a host whose table slot another host took; each reads the host's "
            "record from the memo, one lookup more).\n" % ("{:,}".format(hit), "{:,}".format(miss))]


def render(res):
    m = meta(res)
    vlines, summary = variants_section(res, m)
    rlines, rverdicts = reload_section(res, m)
    failed = m.get("failed", "").strip()
    pr = paired(res)
    tgt = targets(summary) + paired_targets(pr) + rverdicts

    a = [SECTION_VARIANTS + "\n\n", header(m), "\n",
         ("Everything on loopback on the same machine: wrk (`-t1 -c%s`, %s s per run, "
         "a Lua script cycling through 5,000 requests over 100 vhosts × 10 routes × 5 URLs, "
         "6 request headers), varnishd (one per variant, `-s malloc,%s`, default parameters), "
         "ghostd (V3, V4, V5) and nginx (1 worker, 10 ports, a 67-byte body, `Cache-Control: max-age=3600`). "
         "The variants run alternately (V0 V1 V2 V3 hits, then pass, %s rounds, each round starting "
         "one variant further on: V1 V2 V3 V0, ...) after a 2 s warm-up "
         "each; medians over the rounds. \"vs V0\" is the median of the per-round ratios (so is "
         "the V3-vs-V1/V2 verdict below). Pass = "
         "the same user VCL in every variant, `if (req.http.X-Bench-Pass) { return (pass); }` "
         "after the variant's own vcl_recv. " % (m["conns"], m["duration"], m.get("storage", "256m"), m["rounds"]))
         + pin_text(m) + " CPU/req = utime+stime of the varnishd child "
         "(cache-main, all threads) or of ghostd during the run, divided by the requests wrk "
         "completed. V1 and V2 route in vcl_recv (as generated ingress VCL does), so they route "
         "hits too; V3 routes on the backend side (vcl/ghost.vcl), so hits make no round trip: "
         "they pay the shim's memoised cache decision in vcl_recv (`ghost.cache()`). V4 is V3 with "
         "a `cache_policy` on every route (`default_ttl_seconds` 3600, grace 30, bypass header "
         "`X-Bench-Pass`; its own ghostd): its hits take the policy's lookup, its pass runs are "
         "passed by the bypass header. V5 is V3 with `timeouts` (request 10s, backend_request 5s), "
         "`retry` (attempts 2, codes 500/502/503/504, backoff 100ms) and a `health` probe (every 2 s) "
         "on every route (its own ghostd), run on pass only: what issue 12 adds to a fetch (each "
         "attempt's bereq timeouts, `ghost.retry()` on every response, the probe's health in the "
         "pick), judged against V3 in the same rounds. "
         "Long tail: every request is a URL never seen before (`/r<k>/item-<run>-<n>` over the "
         "same 1,000 vhost × route pairs), so V3's memo can only help through path scopes; sum "
         "CPU/req = varnishd + ghostd, the fair cost; ghostd calls/req = ghostd's decisions "
         "(`ghost_decisions_total`) over the requests, after the same warm-up. The regex row "
         "routes one vhost (`rx.bench.test`, 10 `^/r<k>(/|$)` routes; an if-chain in V1 and V2) "
         "whose decisions can only be memoised per full path.\n"]
    a += storage_text(res, m)
    a += memo_host_text(res)
    if m.get("ghost_memo"):
        a.append("\n**Experiment: V3 ran with `ghost.init(..., memo=%s)` instead of the default.**\n"
                 % m["ghost_memo"])
    if failed:
        a.append("\n**Left out of this run (did not start or misrouted): %s.**\n" % failed)
    a += vlines
    a += paired_section(pr, m)
    a += paired_split(pr)
    a.append("\n### Targets\n\n| target | measured | |\n|---|---:|---|\n")
    a += ["| %s | %s | %s |\n" % t for t in tgt]
    mp = os.path.join(res, "memo.txt")
    if os.path.exists(mp):
        f = open(mp).read().split()
        memo, ghostd = int(f[1]), int(f[3])
        if memo + ghostd:
            a.append("\nDecision reuse in V3 pass traffic (one extra %s s pass run after the measured ones, "
                     "counted from the shim's `ghost: ...` VCL_Log lines with varnishlog): "
                     "**%.1f %%** of backend fetches reused a memoised decision, %.1f %% asked ghostd "
                     "(%d of %d).\n" % (m["warmup"], 100.0 * memo / (memo + ghostd),
                                       100.0 * ghostd / (memo + ghostd), ghostd, memo + ghostd))
    a += socket_section(res, m)
    a += cluster_section(res)

    r = [SECTION_RELOAD + "\n\n", header(m), "\n",
         "ghostd (`-log-level info -watch=false`) starts on a 1-vhost file; the file is replaced by "
         "N vhosts × R path-prefix routes (one backend per route, generated by `test/bench/gen.py "
         "ghostjson`) and `build/ghostd reload -socket S` is timed wall-clock (client start to "
         "answer) three times: 1 vhost → A, A → B, B → A (A and B differ in their upstream ports, "
         "so every reload builds and installs a new table). \"In ghostd\" is the duration in "
         "ghostd's own `config loaded` log line (read, parse, compile, swap). RSS = VmRSS of ghostd; "
         "peak = VmHWM over the whole test. The RSS target is judged on the peak.\n"]
    r += rlines if rlines else ["\nNot measured in this run.\n"]
    return "".join(a), "".join(r)


def replace_section(doc, title, body):
    lines = doc.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.rstrip("\n") == title), None)
    if start is None:
        if doc and not doc.endswith("\n"):
            doc += "\n"
        return doc + ("\n" if doc else "") + body
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + body + ("\n" if tail else "") + tail


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    a, r = render(sys.argv[1])
    print(a)
    print(r)
    if len(sys.argv) == 3:
        path = sys.argv[2]
        doc = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
        doc = replace_section(doc, SECTION_VARIANTS, a)
        doc = replace_section(doc, SECTION_RELOAD, r)
        with open(path + ".tmp", "w") as f:
            f.write(doc)
        os.replace(path + ".tmp", path)
        print("bench: wrote the two make-bench sections of %s" % path, file=sys.stderr)


if __name__ == "__main__":
    main()

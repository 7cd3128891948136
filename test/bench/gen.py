#!/usr/bin/env python3
"""Generates the inputs of `make bench` (test/bench/run.sh).

    gen.py variants DIR UPSTREAM_BASE_PORT   nginx.conf, V0-V5 VCL, ghost.json,
                                             ghost-cp.json, ghost-rs.json, wrk scripts,
                                             routing samples
    gen.py ghostjson N ROUTES FILE [PORT]    ghost.json with N vhosts x ROUTES routes
                                             (upstream ports from PORT, default 20000)

The routing table of V1, V2 and V3 is the same: vhost i ("vh<i>.bench.test",
i < VHOSTS) has ROUTES path-prefix routes "/r<k>" (k < ROUTES) to upstream
port UPSTREAM_BASE_PORT + (i + k) % UPSTREAMS; one more vhost,
"rx.bench.test", routes the same paths with regular expressions
("^/r<k>(/|$)", where a prefix match is not enough). V0 sends everything to
the first upstream (and so do two diagnostics: V6, V2's VCL with every
backend on the first upstream, and V7, V3 with every route there). Requests carry "X-Bench-Pass: 1" in pass runs; every
variant's VCL turns that into return (pass) after its own vcl_recv.

Workloads (one wrk Lua script each): hit and pass cycle through 5,000
request targets; ltpass and ltmiss (long tail) make every request a URL
never seen before ("/r<k>/item-<run>-<n>" over the same 1,000 vhost and
route pairs), in pass mode and as cache misses; rxpass is the long tail in
pass mode on rx.bench.test only.
"""
import json
import os
import random
import re
import sys

VHOSTS = 100
ROUTES = 10
UPSTREAMS = 10
ITEMS = 5  # distinct URLs per route: 100 x 10 x 5 = 5,000 request targets
BODY = "ghost bench upstream {port}: a small static body for every request.\n"

# The same user VCL in every variant: pass on request, after the routing.
PASS_SNIPPET = """
sub vcl_recv {
	if (req.http.X-Bench-Pass) {
		return (pass);
	}
}
"""


RX_HOST = "rx.bench.test"


def host(i):
    return "vh%d.bench.test" % i


def port_of(base, i, k):
    return base + (i + k) % UPSTREAMS


def backends_vcl(base):
    return "".join(
        'backend u%d {\n\t.host = "127.0.0.1";\n\t.port = "%d";\n}\n' % (p, base + p)
        for p in range(UPSTREAMS))


def v0(base):
    return ("vcl 4.1;\n# V0 static: one static backend, no routing.\n"
            'backend u0 {\n\t.host = "127.0.0.1";\n\t.port = "%d";\n}\n' % base
            + PASS_SNIPPET)


def v1(base):
    out = ["vcl 4.1;\n# V1 if-chain: %d vhosts x %d path-prefix routes, hand-written style.\n"
           % (VHOSTS, ROUTES), backends_vcl(base), "\nsub vcl_recv {\n"]
    for i in range(VHOSTS):
        out.append('\t%s (req.http.host == "%s") {\n' % ("if" if i == 0 else "} elsif", host(i)))
        for k in range(ROUTES):
            out.append('\t\t%s (req.url ~ "^/r%d(/|\\?|$)") {\n\t\t\tset req.backend_hint = u%d;\n'
                       % ("if" if k == 0 else "} elsif", k, port_of(0, i, k)))
        out.append('\t\t} else {\n\t\t\treturn (synth(404, "no route"));\n\t\t}\n')
    out.append('\t} elsif (req.http.host == "%s") {\n' % RX_HOST)
    out.append(rx_chain("\t\t"))
    out.append('\t} else {\n\t\treturn (synth(404, "no route"));\n\t}\n}\n')
    out.append(PASS_SNIPPET)
    return "".join(out)


def rx_chain(ind):
    """The rx.bench.test routes as an if-chain of regular expressions."""
    out = []
    for k in range(ROUTES):
        out.append('%s%s (req.url ~ "^/r%d(/|\\?|$)") {\n%s\tset req.backend_hint = u%d;\n'
                   % (ind, "if" if k == 0 else "} elsif", k, ind, port_of(0, VHOSTS, k)))
    out.append('%s} else {\n%s\treturn (synth(404, "no route"));\n%s}\n' % (ind, ind, ind))
    return "".join(out)


def v2(base):
    # Generated-VCL ingress style: a case-insensitive set of hosts maps each
    # host to its own subroutine; each vhost has a prefix set whose longest
    # match gives the backend (Gateway API: longest prefix wins).
    out = ["vcl 4.1;\n# V2 selector: the same routes with vmod_selector.\nimport selector;\n",
           backends_vcl(base)]
    out.append("\nsub vcl_init {\n\tnew hosts = selector.set(case_sensitive=false);\n")
    for i in range(VHOSTS):
        out.append('\thosts.add("%s", sub=vh%d);\n' % (host(i), i))
    # vmod_selector has no regex set: the regex vhost is an if-chain
    out.append('\thosts.add("%s", sub=rx);\n' % RX_HOST)
    for i in range(VHOSTS):
        out.append("\tnew paths%d = selector.set();\n" % i)
        for k in range(ROUTES):
            out.append('\tpaths%d.add("/r%d/", backend=u%d);\n' % (i, k, port_of(0, i, k)))
    out.append('}\n')
    for i in range(VHOSTS):
        out.append('\nsub vh%d {\n\tif (paths%d.hasprefix(req.url)) {\n'
                   '\t\tset req.backend_hint = paths%d.backend(select=LONGEST);\n'
                   '\t} else {\n\t\treturn (synth(404, "no route"));\n\t}\n}\n' % (i, i, i))
    out.append('\nsub rx {\n' + rx_chain("\t") + '}\n')
    out.append('\nsub vcl_recv {\n\tif (hosts.match(req.http.host)) {\n'
               '\t\tcall hosts.subroutine();\n\t} else {\n'
               '\t\treturn (synth(404, "no route"));\n\t}\n}\n')
    out.append(PASS_SNIPPET)
    return "".join(out)


def v6(base):
    # V6 (diagnostic, not in the default set): V2's VCL with all ten
    # backends on the first upstream port, i.e. V2's routing work with V0's
    # single connection pool. V0 vs V6 vs V2 separates what routing costs
    # from what spreading the fetches over ten upstreams (ten connection
    # pools, ten nginx listeners) costs every routing variant alike.
    return re.sub(r'\.port = "\d+"', '.port = "%d"' % base, v2(base)).replace(
        "# V2 selector: the same routes with vmod_selector.",
        "# V6: V2's routes with vmod_selector, every backend on the first upstream.")


def v3(stage, sock="g.sock", what="V3 ghost: ghostd + the shim + vcl/ghost.vcl."):
    # BENCH_GHOST_MEMO (experiments only): memo slots for ghost.init().
    memo = os.environ.get("BENCH_GHOST_MEMO", "")
    args = '"%s/%s"' % (stage, sock) + (", memo=%d" % int(memo) if memo else "")
    return ('vcl 4.1;\n# {w}\n'
            'import ghost from "{s}/libvmod_ghost.so";\ninclude "{s}/ghost.vcl";\n'
            'sub vcl_init {{\n\tghost.init({a});\n}}\n'.format(s=stage, a=args, w=what)
            + PASS_SNIPPET)


def v7(stage):
    # V7 (diagnostic, not in the default set): V3 with every route on the
    # first upstream (ghost-1p.json, its own ghostd on g7.sock): ghost's
    # routing work with V0's single connection pool, as V6 is for V2.
    return v3(stage, "g7.sock", "V7 = V3, every route on the first upstream (ghost-1p.json).")


def v4(stage):
    # V4: V3 with a cache_policy on every route (ghost-cp.json, its own
    # ghostd on g4.sock): the client-side cache decision on every hit,
    # return (hash) before the user's vcl_recv; its pass runs pass by the
    # policy's bypass header instead.
    return v3(stage, "g4.sock", "V4 ghost + cache_policy on every route (ghost-cp.json).")


def v5(stage):
    # V5: V3 with timeouts, retry and an active probe on every route
    # (ghost-rs.json, its own ghostd on g5.sock): what issue 12 adds to a
    # fetch (each attempt's bereq timeouts, ghost.retry() on every
    # response, the probe's health in the pick), compared with V3 on pass.
    return v3(stage, "g5.sock", "V5 ghost + timeouts, retry and a probe on every route (ghost-rs.json).")


# V5's resilience settings: the issue's example, with a probe every 2 s.
RESILIENCE = ('"timeouts":{"request":"10s","backend_request":"5s"},'
              '"retry":{"attempts":2,"codes":[500,502,503,504],"backoff":"100ms"},'
              '"health":{"path":"/","interval":"2s","timeout":"1s","window":5,"threshold":3,'
              '"expected_status":200}')


# V4's policy: what a Kubernetes VarnishCachePolicy typically says.
POLICY = ('"cache_policy":{"default_ttl_seconds":3600,"grace_seconds":30,"keep_seconds":0,'
          '"bypass_headers":[{"name":"X-Bench-Pass"}]}')


def route_json(path, port, extra=""):
    return ('{"path_match":{"type":"PathPrefix","value":"%s"},'
            '"backends":[{"address":"127.0.0.1","port":%d}]%s}' % (path, port, extra and "," + extra))


def regex_route_json(k, port):
    return ('{"path_match":{"type":"RegularExpression","value":"^/r%d(/|$)"},'
            '"backends":[{"address":"127.0.0.1","port":%d}]}' % (k, port))


def write_ghostjson(f, vhosts, routes, base, hostfmt="vh%d.bench.test", rx=False, extra="",
                    one=False):
    """Streams a ghost.json (version 2): big files are written without
    building them in memory. rx: add rx.bench.test (regex routes); extra:
    more fields for every route (V4's cache_policy); one: every route on
    the first upstream (V7)."""
    f.write('{"version":2,"vhosts":{\n')
    for i in range(vhosts):
        rs = ",".join(route_json("/r%d" % k, base if one else port_of(base, i, k), extra)
                      for k in range(routes))
        f.write('%s"%s":{"routes":[%s]}\n' % ("," if i else "", hostfmt % i, rs))
    if rx:
        rs = ",".join(regex_route_json(k, port_of(base, vhosts, k)) for k in range(routes))
        f.write(',"%s":{"routes":[%s]}\n' % (RX_HOST, rs))
    f.write("}}\n")


UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def lua(targets, passing):
    lines = ["-- generated by test/bench/gen.py: cycles through %d requests\n" % len(targets),
             "local reqs = {}\nlocal n, i = 0, 0\n",
             "local function add(h, p)\n\tlocal hd = {\n\t\t[\"Host\"] = h,\n"
             "\t\t[\"User-Agent\"] = \"%s\",\n" % UA,
             "\t\t[\"Accept\"] = \"text/html,application/xhtml+xml,*/*;q=0.8\",\n"
             "\t\t[\"Accept-Language\"] = \"en-US,en;q=0.5\",\n"
             "\t\t[\"Accept-Encoding\"] = \"gzip, deflate\",\n"
             "\t\t[\"Referer\"] = \"http://\" .. h .. \"/\",\n"]
    if passing:
        lines.append("\t\t[\"X-Bench-Pass\"] = \"1\",\n")
    lines.append("\t}\n\tn = n + 1\n\treqs[n] = wrk.format(\"GET\", p, hd)\nend\n")
    for h, p in targets:
        lines.append('add("%s", "%s")\n' % (h, p))
    lines.append("function request()\n\ti = i % n + 1\n\treturn reqs[i]\nend\n")
    return "".join(lines)


def lua_longtail(targets, passing):
    """Every request a new URL: the target's path + "-<run>-<n>", <run>
    from $BENCH_RUN (run.sh sets one per wrk run), so that no URL repeats
    across runs, variants or rounds."""
    lines = ["-- generated by test/bench/gen.py: a new URL for every request over %d targets\n"
             % len(targets),
             "local hosts, paths = {}, {}\nlocal n, i, seq = 0, 0, 0\n",
             "local run = os.getenv(\"BENCH_RUN\") or tostring(os.time())\n",
             "local function add(h, p)\n\tn = n + 1\n\thosts[n] = h\n\tpaths[n] = p\nend\n"]
    for h, p in targets:
        lines.append('add("%s", "%s")\n' % (h, p))
    lines.append("function request()\n\ti = i % n + 1\n\tseq = seq + 1\n\tlocal h = hosts[i]\n"
                 "\treturn wrk.format(\"GET\", paths[i] .. \"-\" .. run .. \"-\" .. seq, {\n"
                 "\t\t[\"Host\"] = h,\n\t\t[\"User-Agent\"] = \"" + UA + "\",\n"
                 "\t\t[\"Accept\"] = \"text/html,application/xhtml+xml,*/*;q=0.8\",\n"
                 "\t\t[\"Accept-Language\"] = \"en-US,en;q=0.5\",\n"
                 "\t\t[\"Accept-Encoding\"] = \"gzip, deflate\",\n"
                 "\t\t[\"Referer\"] = \"http://\" .. h .. \"/\",\n" +
                 ("\t\t[\"X-Bench-Pass\"] = \"1\",\n" if passing else "") +
                 "\t})\nend\n")
    return "".join(lines)


def variants(d, base):
    stage = os.path.abspath(d)
    files = {
        "v0.vcl": v0(base), "v1.vcl": v1(base), "v2.vcl": v2(base), "v3.vcl": v3(stage),
        "v4.vcl": v4(stage), "v5.vcl": v5(stage), "v6.vcl": v6(base), "v7.vcl": v7(stage),
    }
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    with open(os.path.join(d, "ghost.json"), "w") as f:
        write_ghostjson(f, VHOSTS, ROUTES, base, rx=True)
    with open(os.path.join(d, "ghost-cp.json"), "w") as f:
        write_ghostjson(f, VHOSTS, ROUTES, base, rx=True, extra=POLICY)
    with open(os.path.join(d, "ghost-rs.json"), "w") as f:
        write_ghostjson(f, VHOSTS, ROUTES, base, rx=True, extra=RESILIENCE)
    with open(os.path.join(d, "ghost-1p.json"), "w") as f:
        write_ghostjson(f, VHOSTS, ROUTES, base, rx=True, one=True)
    targets = [(host(i), "/r%d/item-%d" % (k, j))
               for i in range(VHOSTS) for k in range(ROUTES) for j in range(ITEMS)]
    random.Random(6).shuffle(targets)
    for mode in ("hit", "pass"):
        with open(os.path.join(d, mode + ".lua"), "w") as f:
            f.write(lua(targets, mode == "pass"))
    lt = [(host(i), "/r%d/item" % k) for i in range(VHOSTS) for k in range(ROUTES)]
    random.Random(7).shuffle(lt)
    for mode, tg, passing in (("ltpass", lt, True), ("ltmiss", lt, False),
                              ("rxpass", [(RX_HOST, "/r%d/item" % k) for k in range(ROUTES)], True)):
        with open(os.path.join(d, mode + ".lua"), "w") as f:
            f.write(lua_longtail(tg, passing))
    # Routing samples for the check before measuring: host, url, port.
    with open(os.path.join(d, "samples.txt"), "w") as f:
        for i, k in ((0, 0), (7, 3), (42, 9), (99, 5), (55, 1)):
            f.write("%s /r%d/item-1 %d\n" % (host(i), k, port_of(base, i, k)))
        f.write("%s /r4/item-1 %d\n" % (RX_HOST, port_of(base, VHOSTS, 4)))
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write(nginx_conf(stage, base))


def nginx_conf(stage, base):
    servers = "".join(
        "\tserver {\n\t\tlisten 127.0.0.1:%d;\n\t\tlocation / {\n"
        "\t\t\tadd_header Cache-Control \"max-age=3600\" always;\n"
        "\t\t\treturn 200 \"%s\";\n\t\t}\n\t}\n" % (base + p, BODY.format(port=base + p).replace("\n", "\\n"))
        for p in range(UPSTREAMS))
    return """# generated by test/bench/gen.py: the benchmark upstream
daemon on;
worker_processes 1;
pid {s}/nginx.pid;
error_log {s}/nginx-error.log warn;
events {{
	worker_connections 4096;
}}
http {{
	access_log off;
	default_type text/plain;
	keepalive_timeout 600s;
	keepalive_requests 100000000;
	client_body_temp_path {s}/nginx-tmp;
	proxy_temp_path {s}/nginx-tmp;
	fastcgi_temp_path {s}/nginx-tmp;
	uwsgi_temp_path {s}/nginx-tmp;
	scgi_temp_path {s}/nginx-tmp;
{servers}}}
""".format(s=stage, servers=servers)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "variants":
        variants(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) in (5, 6) and sys.argv[1] == "ghostjson":
        port = int(sys.argv[5]) if len(sys.argv) == 6 else 20000
        with open(sys.argv[4], "w") as f:
            write_ghostjson(f, int(sys.argv[2]), int(sys.argv[3]), port, "host%d.example.com")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

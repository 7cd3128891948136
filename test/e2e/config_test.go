package e2e

import (
	"encoding/json"
	"strings"

	"github.com/varnish/ghost/route/routetest"
	"github.com/varnish/ghost/test/stack"
)

// obj is a JSON object of ghost.json.
type obj = map[string]any

// upstreamKeys lists every upstream the suite runs. A key "name#n" is a
// second (third...) port answering with the same name "name": routes that
// move between such ports between two configs still have one correct
// answer, which is what makes "misrouted" well defined under reloads.
var upstreamKeys = append(append([]string{}, routetest.Names...),
	// headers varnishd rewrites on a fetch
	"h2-none", "h2-ae", "h2-inm", "h2-range",
	// weights
	"stable", "canary", "g1a", "g1b", "gnever",
	// filters, cache, listeners
	"f", "c-main", "c-beta", "l-any", "l-proxy",
	// reload tests
	"newhost", "la", "la#2", "lb", "lw", "lw#2", "lw#3", "lh", "lroot", "lq", "lextra",
	// socket activation
	"sa-1", "sa-any",
)

// UpstreamKeys returns the keys of every upstream port to start.
func UpstreamKeys() []string { return upstreamKeys }

// UpstreamName is the name an upstream key answers with (X-Upstream).
func UpstreamName(key string) string {
	name, _, _ := strings.Cut(key, "#")
	return name
}

// be is a "backends" entry for the upstream key, with an optional weight.
func (e *Env) be(key string, weight ...int) obj {
	port, ok := e.Ports[key]
	if !ok {
		panic("unknown upstream key " + key)
	}
	o := obj{"address": "127.0.0.1", "port": port}
	if len(weight) > 0 {
		o["weight"] = weight[0]
	}
	return o
}

// bes is a "backends" list of single entries (default weight).
func (e *Env) bes(keys ...string) []obj {
	out := make([]obj, 0, len(keys))
	for _, k := range keys {
		out = append(out, e.be(k))
	}
	return out
}

func pathMatch(typ, value string) obj { return obj{"type": typ, "value": value} }
func exact(v string) obj              { return pathMatch("Exact", v) }
func prefix(v string) obj             { return pathMatch("PathPrefix", v) }
func regex(v string) obj              { return pathMatch("RegularExpression", v) }

func hm(name, value, typ string) obj { return obj{"name": name, "value": value, "type": typ} }

func nv(name, value string) obj { return obj{"name": name, "value": value} }

// to is a route with the given path match (nil = none) going to keys.
func (e *Env) to(pm obj, keys ...string) obj {
	r := obj{"backends": e.bes(keys...)}
	if pm != nil {
		r["path_match"] = pm
	}
	return r
}

// with returns r with extra fields set.
func with(r obj, kv ...any) obj {
	out := obj{}
	for k, v := range r {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

func routes(rs ...obj) obj { return obj{"routes": rs} }

// BaseVhosts is the table the routing checks run against: the vhosts of
// route/routetest (whose cases the route unit tests decide too), and the
// ones only the whole stack can check (weights, filters, caching,
// listeners, reloads). Routes are deliberately listed out of precedence
// order with zero priorities: the data plane must order them itself
// (docs/routing.md, "Precedence").
func BaseVhosts(e *Env) obj {
	v := routetest.Vhosts(func(name string) obj { return e.be(name) })
	// headers varnishd itself changes on the backend request (it asks
	// upstreams for gzip, and drops conditional and Range headers when it
	// fetches for the cache): routing must still see the client's
	v["hdr2.test"] = routes(
		e.to(nil, "h2-none"),
		with(e.to(nil, "h2-ae"), "headers", []obj{hm("accept-encoding", "br", "Exact")}),
		with(e.to(nil, "h2-inm"), "headers", []obj{hm("if-none-match", `"v1"`, "Exact")}),
		with(e.to(nil, "h2-range"), "headers", []obj{hm("range", "^bytes=", "RegularExpression")}),
	)
	// weights
	v["canary.test"] = routes(obj{"backends": []obj{e.be("stable", 90), e.be("canary", 10), e.be("never", 0)}})
	v["groups.test"] = routes(obj{"backend_groups": []obj{
		{"weight": 1, "backends": []obj{e.be("g1a"), e.be("g1b")}},
		{"weight": 0, "backends": []obj{e.be("gnever")}},
		{"weight": 5, "backends": []obj{}},
	}})
	// filters
	filt := func(pm obj, f obj) obj { return obj{"path_match": pm, "filters": f, "backends": e.bes("f")} }
	v["filter.test"] = routes(
		e.to(nil, "f"),
		filt(exact("/reqhdr"), obj{"request_header_modifier": obj{
			"set": []obj{nv("x-set", "new")}, "add": []obj{nv("x-add", "c")}, "remove": []string{"x-remove"}}}),
		filt(exact("/resphdr"), obj{"response_header_modifier": obj{
			"set":    []obj{nv("x-resp-set", "s"), nv("content-type", "text/x-ghost")},
			"add":    []obj{nv("x-resp-add", "a"), nv("set-cookie", "b=2")},
			"remove": []string{"x-upstream"}}}),
		filt(exact("/respadd"), obj{"response_header_modifier": obj{"add": []obj{nv("x-upstream", "extra")}}}),
		filt(exact("/rewrite/full"), obj{"url_rewrite": obj{"path_type": "ReplaceFullPath", "replace_full_path": "/replaced"}}),
		filt(prefix("/rewrite/prefix"), obj{"url_rewrite": obj{"path_type": "ReplacePrefixMatch", "replace_prefix_match": "/new"}}),
		filt(prefix("/strip"), obj{"url_rewrite": obj{"path_type": "ReplacePrefixMatch", "replace_prefix_match": "/"}}),
		filt(exact("/rewrite/host"), obj{"url_rewrite": obj{"hostname": "rewritten.test"}}),
		filt(exact("/rewrite/both"), obj{
			"request_header_modifier": obj{"set": []obj{nv("x-set", "both")}},
			"url_rewrite":             obj{"hostname": "rewritten.test", "path_type": "ReplaceFullPath", "replace_full_path": "/both"}}),
	)
	// ReplacePrefixMatch on a route without path_match (counts as "/")
	v["rewrite-root.test"] = routes(obj{"backends": e.bes("f"),
		"filters": obj{"url_rewrite": obj{"path_type": "ReplacePrefixMatch", "replace_prefix_match": "/v2"}}})
	// cache separation
	v["cache.test"] = routes(
		e.to(nil, "c-main"),
		with(e.to(nil, "c-beta"), "headers", []obj{hm("x-beta", "1", "Exact")}),
	)
	// listeners: the first route applies only on the "proxy" listener
	v["listener.test"] = routes(
		with(e.to(nil, "l-proxy"), "listeners", []string{"proxy"}),
		e.to(nil, "l-any"),
	)
	// socket activation load
	v["sa.test"] = routes(
		e.to(nil, "sa-any"),
		with(e.to(nil, "sa-1"), "query_params", []obj{hm("v", "1", "Exact")}),
	)
	return v
}

// BaseConfig is the whole base ghost.json.
func BaseConfig(e *Env) obj {
	return obj{"version": 2, "vhosts": BaseVhosts(e)}
}

// WriteConfig writes cfg to the staged ghost.json atomically (write to a
// temporary file, then rename), the way config management tools do.
func (e *Env) WriteConfig(cfg any) error {
	var b []byte
	switch c := cfg.(type) {
	case []byte:
		b = c
	case string:
		b = []byte(c)
	default:
		var err error
		if b, err = json.MarshalIndent(cfg, "", "  "); err != nil {
			return err
		}
	}
	return stack.ReplaceFile(e.Conf, b)
}

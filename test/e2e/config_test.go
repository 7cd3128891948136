package e2e

import (
	"encoding/json"
	"strings"

	"github.com/varnish/ghost/test/stack"
)

// obj is a JSON object of ghost.json.
type obj = map[string]any

// upstreamKeys lists every upstream the suite runs. A key "name#n" is a
// second (third...) port answering with the same name "name": routes that
// move between such ports between two configs still have one correct
// answer, which is what makes "misrouted" well defined under reloads.
var upstreamKeys = []string{
	// host selection
	"exact", "upper", "wild", "deepwild", "catchall", "nf",
	// path matching and precedence
	"p-root", "p-regex", "p-api", "p-apiv2", "p-exact", "p-ex",
	"p-tie-lo", "p-tie-hi", "p-rule1", "p-rule2", "p-first", "p-second",
	// methods
	"m-any", "m-get", "m-post", "m-get-any",
	// headers
	"h-none", "h-canary", "h-beta", "h-two", "h-multi", "h-dup", "h-re",
	"h2-none", "h2-ae", "h2-inm", "h2-range",
	// query
	"q-none", "q-v2", "q-v3", "q-two", "q-flag",
	// weights
	"stable", "canary", "never", "g1a", "g1b", "gnever",
	// default_backends
	"d-route", "d-default", "dg-default",
	// redirects, filters, cache, listeners
	"redir-root", "redir-never", "f", "c-main", "c-beta", "l-any", "l-proxy",
	// reload tests
	"newhost", "la", "la#2", "lb", "lw", "lw#2", "lw#3", "lh", "lroot", "lq", "lextra",
	// socket activation
	"sa-1", "sa-any",
}

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

// BaseVhosts is the table the routing checks run against. Routes are
// deliberately listed out of precedence order with zero priorities: the
// data plane must order them itself (SPEC §4.3).
func BaseVhosts(e *Env) obj {
	v := obj{}
	// §4.1 host selection
	v["exact.test"] = routes(e.to(nil, "exact"))
	v["Upper.Test"] = routes(e.to(nil, "upper"))
	v["*.wild.test"] = routes(e.to(nil, "wild"))
	v["*.deep.wild.test"] = routes(e.to(nil, "deepwild"))
	v["*.nf.test"] = routes(e.to(exact("/only"), "nf"))
	v["*"] = routes(
		e.to(prefix("/catchall"), "catchall"),
		obj{"path_match": exact("/redirect-https"), "filters": obj{"request_redirect": obj{"scheme": "https"}}},
		obj{"path_match": exact("/redirect-path"), "filters": obj{"request_redirect": obj{"path_type": "ReplaceFullPath", "replace_full_path": "/kept"}}},
	)

	// §4.2 path, §4.3 precedence
	v["path.test"] = routes(
		e.to(prefix("/"), "p-root"),
		e.to(regex(`\.png$`), "p-regex"),
		e.to(prefix("/api"), "p-api"),
		e.to(exact("/exact"), "p-exact"),
		e.to(prefix("/api/v2/"), "p-apiv2"),
		e.to(prefix("/ex"), "p-ex"),
		with(e.to(prefix("/tie"), "p-tie-lo"), "priority", 5),
		with(e.to(prefix("/tie"), "p-tie-hi"), "priority", 10),
		with(e.to(prefix("/rule"), "p-rule2"), "rule_index", 2),
		with(e.to(prefix("/rule"), "p-rule1"), "rule_index", 1),
		e.to(prefix("/order"), "p-first"),
		e.to(prefix("/order"), "p-second"),
	)
	// method
	v["method.test"] = routes(
		e.to(nil, "m-any"),
		with(e.to(exact("/m"), "m-get"), "method", "GET"),
		with(e.to(exact("/m"), "m-post"), "method", "POST"),
		with(e.to(nil, "m-get-any"), "method", "GET"),
	)
	// headers
	v["hdr.test"] = routes(
		e.to(nil, "h-none"),
		with(e.to(nil, "h-canary"), "headers", []obj{hm("x-env", "canary", "Exact")}),
		with(e.to(nil, "h-beta"), "headers", []obj{hm("X-Env", "^be", "RegularExpression")}),
		with(e.to(nil, "h-two"), "headers", []obj{hm("x-env", "canary", "Exact"), hm("x-tier", "gold", "Exact")}),
		with(e.to(nil, "h-multi"), "headers", []obj{hm("x-multi", "a,b", "Exact")}),
		with(e.to(nil, "h-dup"), "headers", []obj{hm("x-dup", "one", "Exact"), hm("X-Dup", "two", "Exact")}),
		with(e.to(nil, "h-re"), "headers", []obj{hm("x-re", "mid", "RegularExpression")}),
	)
	// headers varnishd itself changes on the backend request (it asks
	// upstreams for gzip, and drops conditional and Range headers when it
	// fetches for the cache): routing must still see the client's
	v["hdr2.test"] = routes(
		e.to(nil, "h2-none"),
		with(e.to(nil, "h2-ae"), "headers", []obj{hm("accept-encoding", "br", "Exact")}),
		with(e.to(nil, "h2-inm"), "headers", []obj{hm("if-none-match", `"v1"`, "Exact")}),
		with(e.to(nil, "h2-range"), "headers", []obj{hm("range", "^bytes=", "RegularExpression")}),
	)
	// query
	v["query.test"] = routes(
		e.to(nil, "q-none"),
		with(e.to(nil, "q-v2"), "query_params", []obj{hm("v", "2", "Exact")}),
		with(e.to(nil, "q-v3"), "query_params", []obj{hm("v", "^3", "RegularExpression")}),
		with(e.to(nil, "q-two"), "query_params", []obj{hm("a", "1", "Exact"), hm("b", "2", "Exact")}),
		with(e.to(nil, "q-flag"), "query_params", []obj{hm("flag", ".*", "RegularExpression")}),
	)
	// §4.4 weights
	v["canary.test"] = routes(obj{"backends": []obj{e.be("stable", 90), e.be("canary", 10), e.be("never", 0)}})
	v["groups.test"] = routes(obj{"backend_groups": []obj{
		{"weight": 1, "backends": []obj{e.be("g1a"), e.be("g1b")}},
		{"weight": 0, "backends": []obj{e.be("gnever")}},
		{"weight": 5, "backends": []obj{}},
	}})
	v["zero.test"] = routes(obj{"backends": []obj{e.be("never", 0)}})
	v["nobackends.test"] = routes(
		obj{"path_match": exact("/none")},
		obj{"path_match": exact("/zero"), "backends": []obj{e.be("never", 0)}},
		obj{"path_match": exact("/emptygroups"), "backend_groups": []obj{{"weight": 10, "backends": []obj{}}}},
		obj{"path_match": exact("/zerogroups"), "backend_groups": []obj{{"weight": 0, "backends": []obj{e.be("never")}}}},
	)
	v["default.test"] = obj{
		"routes":           []obj{e.to(exact("/r"), "d-route")},
		"default_backends": e.bes("d-default"),
	}
	v["defaultgroups.test"] = obj{
		"default_backends": []obj{{"weight": 1, "backends": []obj{e.be("dg-default")}}},
	}
	// §4.6 redirects
	redir := func(pm obj, filter obj) obj {
		return obj{"path_match": pm, "filters": obj{"request_redirect": filter}}
	}
	v["redir.test"] = routes(
		e.to(nil, "redir-root"),
		redir(exact("/https"), obj{"scheme": "https", "status_code": 301}),
		redir(exact("/host"), obj{"hostname": "other.test"}),
		redir(exact("/port"), obj{"scheme": "https", "port": 8443, "status_code": 307}),
		redir(exact("/port80"), obj{"scheme": "http", "port": 80, "status_code": 308}),
		redir(exact("/full"), obj{"path_type": "ReplaceFullPath", "replace_full_path": "/new/full", "status_code": 301}),
		redir(prefix("/old"), obj{"path_type": "ReplacePrefixMatch", "replace_prefix_match": "/new", "status_code": 308}),
		redir(prefix("/gone"), obj{"path_type": "ReplacePrefixMatch", "replace_prefix_match": "/", "status_code": 303}),
		with(redir(exact("/withbackend"), obj{"hostname": "elsewhere.test"}), "backends", e.bes("redir-never")),
		redir(prefix("/empty"), obj{"path_type": "ReplacePrefixMatch", "replace_prefix_match": ""}),
	)
	// §4.5 filters
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
	// §4.7 cache
	v["cache.test"] = routes(
		e.to(nil, "c-main"),
		with(e.to(nil, "c-beta"), "headers", []obj{hm("x-beta", "1", "Exact")}),
	)
	// §3 listeners: the first route applies only on the "proxy" listener
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

// Package routetest holds the routing cases that both the route unit tests
// and the end-to-end suite (test/e2e) check: one table of vhosts written in
// terms of upstream names, and requests with the answer each must get. The
// unit test decides them with route.Table; the end-to-end suite sends them
// through varnishd, the shim and ghostd to real upstreams. A rule of
// docs/routing.md is then checked once at each level from one statement.
//
// The routes are listed out of precedence order and with zero priorities
// (but where a case is about them): the data plane must order them itself.
package routetest

// Obj is a JSON object of the table.
type Obj = map[string]any

// Case is one request and the answer it must get.
type Case struct {
	Name    string   // the rule it checks, e.g. "path/prefix"
	Method  string   // "" = GET
	Host    string   // the Host header
	URL     string   // path and query
	Headers []string // request header name, value pairs
	// Want is the upstream name that must answer, or "404" (no route),
	// "500" (no backends), or "<status> <Location>" for a redirect.
	Want string
}

// Vhosts returns the vhosts of the shared table. be returns the backend
// entry ({"address", "port"}) of an upstream name; it must return a new
// map on every call.
func Vhosts(be func(name string) Obj) Obj {
	to := func(pm Obj, name string) Obj {
		r := Obj{"backends": []Obj{be(name)}}
		if pm != nil {
			r["path_match"] = pm
		}
		return r
	}
	with := func(r Obj, kv ...any) Obj {
		for i := 0; i+1 < len(kv); i += 2 {
			r[kv[i].(string)] = kv[i+1]
		}
		return r
	}
	pm := func(typ, value string) Obj { return Obj{"type": typ, "value": value} }
	exact := func(v string) Obj { return pm("Exact", v) }
	prefix := func(v string) Obj { return pm("PathPrefix", v) }
	regex := func(v string) Obj { return pm("RegularExpression", v) }
	hm := func(name, value, typ string) Obj { return Obj{"name": name, "value": value, "type": typ} }
	routes := func(rs ...Obj) Obj { return Obj{"routes": rs} }
	weight0 := func(name string) Obj { b := be(name); b["weight"] = 0; return b }
	redir := func(pm Obj, filter Obj) Obj {
		return Obj{"path_match": pm, "filters": Obj{"request_redirect": filter}}
	}

	v := Obj{}
	// host selection
	v["exact.test"] = routes(to(nil, "exact"))
	v["Upper.Test"] = routes(to(nil, "upper"))
	v["*.wild.test"] = routes(to(nil, "wild"))
	v["*.deep.wild.test"] = routes(to(nil, "deepwild"))
	v["*.nf.test"] = routes(to(exact("/only"), "nf"))
	v["*"] = routes(
		to(prefix("/catchall"), "catchall"),
		redir(exact("/redirect-https"), Obj{"scheme": "https"}),
		redir(exact("/redirect-path"), Obj{"path_type": "ReplaceFullPath", "replace_full_path": "/kept"}),
	)
	// path conditions and precedence
	v["path.test"] = routes(
		to(prefix("/"), "p-root"),
		to(regex(`\.png$`), "p-regex"),
		to(prefix("/api"), "p-api"),
		to(exact("/exact"), "p-exact"),
		to(prefix("/api/v2/"), "p-apiv2"),
		to(prefix("/ex"), "p-ex"),
		with(to(prefix("/tie"), "p-tie-lo"), "priority", 5),
		with(to(prefix("/tie"), "p-tie-hi"), "priority", 10),
		with(to(prefix("/rule"), "p-rule2"), "rule_index", 2),
		with(to(prefix("/rule"), "p-rule1"), "rule_index", 1),
		to(prefix("/order"), "p-first"),
		to(prefix("/order"), "p-second"),
	)
	// method
	v["method.test"] = routes(
		to(nil, "m-any"),
		with(to(exact("/m"), "m-get"), "method", "GET"),
		with(to(exact("/m"), "m-post"), "method", "POST"),
		with(to(nil, "m-get-any"), "method", "GET"),
	)
	// headers
	v["hdr.test"] = routes(
		to(nil, "h-none"),
		with(to(nil, "h-canary"), "headers", []Obj{hm("x-env", "canary", "Exact")}),
		with(to(nil, "h-beta"), "headers", []Obj{hm("X-Env", "^be", "RegularExpression")}),
		with(to(nil, "h-two"), "headers", []Obj{hm("x-env", "canary", "Exact"), hm("x-tier", "gold", "Exact")}),
		with(to(nil, "h-multi"), "headers", []Obj{hm("x-multi", "a,b", "Exact")}),
		with(to(nil, "h-dup"), "headers", []Obj{hm("x-dup", "one", "Exact"), hm("X-Dup", "two", "Exact")}),
		with(to(nil, "h-re"), "headers", []Obj{hm("x-re", "mid", "RegularExpression")}),
	)
	// query parameters
	v["query.test"] = routes(
		to(nil, "q-none"),
		with(to(nil, "q-v2"), "query_params", []Obj{hm("v", "2", "Exact")}),
		with(to(nil, "q-v3"), "query_params", []Obj{hm("v", "^3", "RegularExpression")}),
		with(to(nil, "q-two"), "query_params", []Obj{hm("a", "1", "Exact"), hm("b", "2", "Exact")}),
		with(to(nil, "q-flag"), "query_params", []Obj{hm("flag", ".*", "RegularExpression")}),
	)
	// outcomes without a backend, default backends
	v["zero.test"] = routes(Obj{"backends": []Obj{weight0("never")}})
	v["nobackends.test"] = routes(
		Obj{"path_match": exact("/none")},
		Obj{"path_match": exact("/zero"), "backends": []Obj{weight0("never")}},
		Obj{"path_match": exact("/emptygroups"), "backend_groups": []Obj{{"weight": 10, "backends": []Obj{}}}},
		Obj{"path_match": exact("/zerogroups"), "backend_groups": []Obj{{"weight": 0, "backends": []Obj{be("never")}}}},
	)
	v["default.test"] = Obj{
		"routes":           []Obj{to(exact("/r"), "d-route")},
		"default_backends": []Obj{be("d-default")},
	}
	v["defaultgroups.test"] = Obj{
		"default_backends": []Obj{{"weight": 1, "backends": []Obj{be("dg-default")}}},
	}
	// redirects
	v["redir.test"] = routes(
		to(nil, "redir-root"),
		redir(exact("/https"), Obj{"scheme": "https", "status_code": 301}),
		redir(exact("/host"), Obj{"hostname": "other.test"}),
		redir(exact("/port"), Obj{"scheme": "https", "port": 8443, "status_code": 307}),
		redir(exact("/port80"), Obj{"scheme": "http", "port": 80, "status_code": 308}),
		redir(exact("/full"), Obj{"path_type": "ReplaceFullPath", "replace_full_path": "/new/full", "status_code": 301}),
		redir(prefix("/old"), Obj{"path_type": "ReplacePrefixMatch", "replace_prefix_match": "/new", "status_code": 308}),
		redir(prefix("/gone"), Obj{"path_type": "ReplacePrefixMatch", "replace_prefix_match": "/", "status_code": 303}),
		with(redir(exact("/withbackend"), Obj{"hostname": "elsewhere.test"}), "backends", []Obj{be("redir-never")}),
		redir(prefix("/empty"), Obj{"path_type": "ReplacePrefixMatch", "replace_prefix_match": ""}),
	)
	v[CORSHost] = corsVhost(be)
	return v
}

// Names lists every upstream name Vhosts uses.
var Names = []string{
	"exact", "upper", "wild", "deepwild", "nf", "catchall",
	"p-root", "p-regex", "p-api", "p-exact", "p-apiv2", "p-ex", "p-tie-lo", "p-tie-hi", "p-rule1", "p-rule2", "p-first", "p-second",
	"m-any", "m-get", "m-post", "m-get-any",
	"h-none", "h-canary", "h-beta", "h-two", "h-multi", "h-dup", "h-re",
	"q-none", "q-v2", "q-v3", "q-two", "q-flag",
	"never", "d-route", "d-default", "dg-default",
	"redir-root", "redir-never",
	"cors", "cors-none",
}

func get(name, host, url, want string, h ...string) Case {
	return Case{Name: name, Host: host, URL: url, Headers: h, Want: want}
}

func method(name, m, host, url, want string) Case {
	return Case{Name: name, Method: m, Host: host, URL: url, Want: want}
}

// Cases are the requests against Vhosts and the answers they must get.
var Cases = []Case{
	get("host/exact", "exact.test", "/", "exact"),
	get("host/exact", "exact.test", "/any/path?x=1", "exact"),
	get("host/case-insensitive", "EXACT.Test", "/", "exact"),
	get("host/case-insensitive", "upper.test", "/", "upper"), // vhost key "Upper.Test"
	get("host/case-insensitive", "UPPER.TEST", "/", "upper"),
	get("host/port-stripped", "exact.test:8080", "/", "exact"),
	get("host/port-stripped", "exact.test:80", "/", "exact"),
	get("host/port-stripped", "a.wild.test:1234", "/", "wild"),
	get("host/trailing-dot", "exact.test.", "/", "exact"),
	get("host/trailing-dot", "exact.test.:8080", "/", "exact"),
	get("host/wildcard", "a.wild.test", "/", "wild"),
	get("host/wildcard", "a.b.wild.test", "/", "wild"),
	get("host/wildcard-longest-suffix", "x.deep.wild.test", "/", "deepwild"),
	get("host/wildcard-longest-suffix", "y.x.deep.wild.test", "/", "deepwild"),
	get("host/wildcard-not-bare-suffix", "deep.wild.test", "/", "wild"), // *.deep.wild.test never matches deep.wild.test
	get("host/wildcard-not-bare-suffix", "wild.test", "/catchall", "catchall"),
	get("host/wildcard-not-bare-suffix", "wild.test", "/", "404"), // "*" is selected, and has no route for /
	get("host/catch-all", "unknown.test", "/catchall", "catchall"),
	get("host/catch-all", "unknown.test", "/catchall/x", "catchall"),
	get("host/catch-all", "[::1]:8080", "/catchall", "catchall"),
	get("host/catch-all", "[2001:db8::1]", "/catchall", "catchall"),
	get("host/catch-all", "unknown.test", "/other", "404"),
	get("host/no-fallback", "a.nf.test", "/only", "nf"),
	get("host/no-fallback", "a.nf.test", "/catchall", "404"), // "*" has a route for it; no fallback

	get("path/exact", "path.test", "/exact", "p-exact"),
	get("path/exact", "path.test", "/exact?x=1", "p-exact"), // the query is not part of the path
	get("path/exact", "path.test", "/exact/", "p-root"),     // not byte-equal; /ex is not a segment prefix
	get("path/prefix", "path.test", "/api", "p-api"),
	get("path/prefix", "path.test", "/api/", "p-api"),
	get("path/prefix", "path.test", "/api/x", "p-api"),
	get("path/prefix", "path.test", "/api?x=1", "p-api"),
	get("path/prefix", "path.test", "/apix", "p-root"), // never /apix
	get("path/prefix", "path.test", "/ex/x", "p-ex"),
	get("path/prefix", "path.test", "/exa", "p-root"),
	get("path/prefix-trailing-slash", "path.test", "/api/v2", "p-apiv2"),
	get("path/prefix-trailing-slash", "path.test", "/api/v2/", "p-apiv2"),
	get("path/prefix-trailing-slash", "path.test", "/api/v2/users", "p-apiv2"),
	get("path/prefix-trailing-slash", "path.test", "/api/v2x", "p-api"),
	get("path/regex", "path.test", "/x.png", "p-regex"),
	get("path/regex", "path.test", "/deep/dir/x.png", "p-regex"), // unanchored search
	get("path/regex", "path.test", "/x.png?size=2", "p-regex"),   // the query is not part of the path
	get("path/regex", "path.test", "/x.pngx", "p-root"),
	get("path/raw-case-sensitive", "path.test", "/API", "p-root"),
	get("path/raw-case-sensitive", "path.test", "/%61pi", "p-root"), // no percent-decoding
	get("path/raw-case-sensitive", "path.test", "/EXACT", "p-root"),

	get("precedence/exact-over-prefix", "path.test", "/exact", "p-exact"),
	get("precedence/longest-prefix", "path.test", "/api/v2/x", "p-apiv2"),
	get("precedence/prefix-over-regex", "path.test", "/api/x.png", "p-api"),
	get("precedence/regex-over-root", "path.test", "/img/x.png", "p-regex"),
	get("precedence/priority", "path.test", "/tie", "p-tie-hi"),
	get("precedence/rule-index", "path.test", "/rule", "p-rule1"),
	get("precedence/file-order", "path.test", "/order/x", "p-first"),
	get("precedence/method", "method.test", "/other", "m-get-any"),
	get("precedence/most-headers", "hdr.test", "/", "h-two", "x-env", "canary", "x-tier", "gold"),
	get("precedence/most-query-params", "query.test", "/?a=1&b=2&v=2", "q-two"),

	method("method/exact", "GET", "method.test", "/m", "m-get"),
	method("method/exact", "POST", "method.test", "/m", "m-post"),
	method("method/exact", "DELETE", "method.test", "/m", "m-any"),
	method("method/exact", "PUT", "method.test", "/other", "m-any"),
	method("method/exact", "GET", "method.test", "/other", "m-get-any"),
	method("method/other-standard", "OPTIONS", "method.test", "/m", "m-any"),
	method("method/other-standard", "PATCH", "method.test", "/m", "m-any"),
	method("method/other-standard", "TRACE", "method.test", "/m", "m-any"),
	method("method/head-is-not-get", "HEAD", "method.test", "/m", "m-any"),
	method("method/head-is-not-get", "HEAD", "method.test", "/other", "m-any"),

	get("headers/exact-regex", "hdr.test", "/", "h-none"),
	get("headers/exact-regex", "hdr.test", "/", "h-canary", "x-env", "canary"),
	get("headers/exact-regex", "hdr.test", "/", "h-canary", "X-ENV", "canary"), // names case-insensitive
	get("headers/exact-regex", "hdr.test", "/", "h-none", "x-env", "Canary"),   // values are not
	get("headers/exact-regex", "hdr.test", "/", "h-none", "x-env", "canary2"),  // Exact is byte equality
	get("headers/exact-regex", "hdr.test", "/", "h-beta", "x-env", "beta"),
	get("headers/exact-regex", "hdr.test", "/", "h-none", "x-env", "xbeta"),   // ^be
	get("headers/exact-regex", "hdr.test", "/", "h-re", "x-re", "somemiddle"), // unanchored
	get("headers/missing-never-matches", "hdr.test", "/", "h-none", "x-tier", "gold"),
	get("headers/first-matcher-counts", "hdr.test", "/", "h-dup", "x-dup", "one"),
	get("headers/first-matcher-counts", "hdr.test", "/", "h-none", "x-dup", "two"),
	get("headers/other-headers-ignored", "hdr.test", "/", "h-none", "x-other", "canary"),
	get("headers/repeated-lines-joined", "hdr.test", "/", "h-multi", "x-multi", "a", "x-multi", "b"),
	get("headers/repeated-lines-joined", "hdr.test", "/", "h-multi", "x-multi", "a,b"),
	get("headers/repeated-lines-joined", "hdr.test", "/", "h-none", "x-multi", "a"),
	get("headers/repeated-lines-joined", "hdr.test", "/", "h-none", "x-multi", "b", "x-multi", "a"),

	get("query/params", "query.test", "/", "q-none"),
	get("query/params", "query.test", "/?v=2", "q-v2"),
	get("query/params", "query.test", "/x?x=1&v=2", "q-v2"),
	get("query/first-occurrence", "query.test", "/?v=2&v=3", "q-v2"),
	get("query/first-occurrence", "query.test", "/?v=3&v=2", "q-v3"),
	get("query/params", "query.test", "/?v=35", "q-v3"),
	get("query/params", "query.test", "/?v=20", "q-none"),  // Exact
	get("query/params", "query.test", "/?V=2", "q-none"),   // names case-sensitive
	get("query/params", "query.test", "/?v=%32", "q-none"), // raw, no decoding
	get("query/params", "query.test", "/?v=2=x", "q-none"), // split at the first "="
	get("query/params", "query.test", "/?a=1&b=2", "q-two"),
	get("query/params", "query.test", "/?b=2&a=1", "q-two"),
	get("query/params", "query.test", "/?a=1", "q-none"),
	get("query/no-equals-never-matches", "query.test", "/?flag", "q-none"),
	get("query/no-equals-never-matches", "query.test", "/?flag=", "q-flag"),

	get("outcome/404", "path.test.nf.test", "/nope", "404"),
	method("outcome/404", "POST", "unknown.test", "/nope", "404"),
	get("outcome/404", "method.test.nf.test", "/x", "404", "x-env", "canary"),
	get("outcome/500-weight-0", "zero.test", "/", "500"),
	get("outcome/500-no-backends", "nobackends.test", "/none", "500"),
	get("outcome/500-no-backends", "nobackends.test", "/zero", "500"),
	get("outcome/500-no-backends", "nobackends.test", "/emptygroups", "500"),
	get("outcome/500-no-backends", "nobackends.test", "/zerogroups", "500"),
	get("default-backends", "default.test", "/r", "d-route"),
	get("default-backends", "default.test", "/other", "d-default"),
	get("default-backends", "defaultgroups.test", "/anything", "dg-default"),

	get("redirect/scheme", "redir.test", "/https", "301 https://redir.test/https"),
	get("redirect/scheme", "redir.test:8080", "/https", "301 https://redir.test/https"), // the scheme's default port
	get("redirect/scheme", "redir.test", "/https?a=1&b", "301 https://redir.test/https?a=1&b"),
	get("redirect/hostname-keeps-port", "redir.test", "/host", "302 http://other.test/host"),
	get("redirect/hostname-keeps-port", "redir.test:8080", "/host", "302 http://other.test:8080/host"),
	get("redirect/hostname-keeps-port", "redir.test:80", "/host", "302 http://other.test/host"),
	get("redirect/hostname-keeps-port", "REDIR.test:8080", "/host?q=1", "302 http://other.test:8080/host?q=1"),
	get("redirect/port", "redir.test", "/port", "307 https://redir.test:8443/port"),
	get("redirect/port", "redir.test:9999", "/port80", "308 http://redir.test/port80"),
	get("redirect/full-path-keeps-query", "redir.test", "/full?q=1", "301 http://redir.test/new/full?q=1"),
	get("redirect/full-path-keeps-query", "redir.test", "/full", "301 http://redir.test/new/full"),
	get("redirect/prefix", "redir.test", "/old/a/b?x=1", "308 http://redir.test/new/a/b?x=1"),
	get("redirect/prefix", "redir.test", "/old", "308 http://redir.test/new"),
	get("redirect/prefix", "redir.test", "/old/", "308 http://redir.test/new/"),
	get("redirect/prefix", "redir.test", "/gone/x", "303 http://redir.test/x"),
	get("redirect/prefix", "redir.test", "/gone", "303 http://redir.test/"),
	get("redirect/empty-prefix-replacement", "redir.test", "/empty/x?y=1", "302 http://redir.test/x?y=1"),
	get("redirect/empty-prefix-replacement", "redir.test", "/empty", "302 http://redir.test/"),
	get("redirect/ipv6-literal-host", "[2001:db8::1]:8080", "/redirect-https", "302 https://[2001:db8::1]/redirect-https"),
	get("redirect/ipv6-literal-host", "[2001:db8::1]:8080", "/redirect-path?a=b", "302 http://[2001:db8::1]:8080/kept?a=b"),
	get("redirect/ipv6-literal-host", "[2001:db8::1]", "/redirect-path", "302 http://[2001:db8::1]/kept"),
	get("redirect/no-backend-contacted", "redir.test", "/withbackend", "302 http://elsewhere.test/withbackend"),
	get("redirect/no-backend-contacted", "redir.test", "/not-redirected", "redir-root"),
}

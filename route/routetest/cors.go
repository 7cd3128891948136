package routetest

// The Gateway API conformance test for the CORS filter (HTTPRouteCORS,
// conformance/tests/httproute-cors.go and .yaml in
// kubernetes-sigs/gateway-api), ported: its HTTPRoutes as one vhost of
// the shared table, its requests with the answers ghost gives. Where the
// conformance test accepts several answers (200 or 204, "*" or the
// echoed value, either order of a list), Want names the one ghost sends,
// which is always one of them. A few cases of ghost's own follow the
// ported ones.

// CORSHost is the vhost of the CORS cases.
const CORSHost = "cors.test"

// CORSCase is one request to CORSHost and what its answer must carry.
type CORSCase struct {
	Name    string
	Method  string   // "" = GET
	URL     string   // path
	Headers []string // request header name, value pairs
	// Preflight: ghost answers itself, 204 without a body; otherwise
	// Upstream answers (through the route).
	Preflight bool
	Upstream  string
	// Want are response headers with their exact values; Absent must not
	// be in the response. "Vary" is special: Want "Vary": "Origin" means
	// that Vary names Origin, Absent "Vary" that it does not (an upstream
	// may send a Vary of its own).
	Want   map[string]string
	Absent []string
}

// corsVhost is httproute-cors.yaml's routes (all on one upstream, "cors")
// plus a route without the filter ("cors-none").
func corsVhost(be func(name string) Obj) Obj {
	route := func(prefix string, cors Obj) Obj {
		return Obj{
			"path_match": Obj{"type": "PathPrefix", "value": prefix},
			"filters":    Obj{"cors": cors},
			"backends":   []Obj{be("cors")},
		}
	}
	return Obj{"routes": []Obj{
		route("/cors-1", Obj{
			"allow_origins":     []string{"https://www.foo.com", "https://*.bar.com"},
			"allow_methods":     []string{"GET", "OPTIONS"},
			"allow_headers":     []string{"x-header-1", "x-header-2"},
			"expose_headers":    []string{"x-header-3", "x-header-4"},
			"allow_credentials": true,
			"max_age":           3600,
		}),
		route("/cors-2", Obj{
			"allow_origins": []string{"https://www.foo.com"},
			"allow_methods": []string{"*"},
		}),
		route("/cors-wildcard-origin", Obj{
			"allow_origins":     []string{"*"},
			"allow_methods":     []string{"PUT"},
			"allow_credentials": false,
		}),
		route("/cors-wildcard-methods-headers", Obj{
			"allow_origins":     []string{"*"},
			"allow_methods":     []string{"*"},
			"allow_headers":     []string{"*"},
			"allow_credentials": true,
		}),
		route("/cors-wildcard-methods-headers-unauth", Obj{
			"allow_origins":     []string{"*"},
			"allow_methods":     []string{"*"},
			"allow_headers":     []string{"*"},
			"allow_credentials": false,
		}),
		{"path_match": Obj{"type": "PathPrefix", "value": "/plain"}, "backends": []Obj{be("cors-none")}},
		// origin matching, one allow list per route
		route("/o-exact", Obj{"allow_origins": []string{"https://A.Example"}, "allow_credentials": true}),
		route("/o-wild", Obj{"allow_origins": []string{"https://*.example.com"}, "allow_credentials": true}),
		route("/o-wildport", Obj{"allow_origins": []string{"https://*.example.com:8443"}, "allow_credentials": true}),
		route("/o-anyhost", Obj{"allow_origins": []string{"http://*"}, "allow_credentials": true}),
	}}
}

// Header names, for brevity.
const (
	acao = "Access-Control-Allow-Origin"
	acac = "Access-Control-Allow-Credentials"
	acam = "Access-Control-Allow-Methods"
	acah = "Access-Control-Allow-Headers"
	aceh = "Access-Control-Expose-Headers"
	acma = "Access-Control-Max-Age"
)

func preflight(name, url string, h ...string) CORSCase {
	return CORSCase{Name: name, Method: "OPTIONS", URL: url, Headers: h, Preflight: true}
}

func (c CORSCase) want(kv ...string) CORSCase {
	c.Want = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Want[kv[i]] = kv[i+1]
	}
	return c
}

func (c CORSCase) absent(h ...string) CORSCase {
	c.Absent = h
	return c
}

func actual(name, method, url, upstream string, h ...string) CORSCase {
	return CORSCase{Name: name, Method: method, URL: url, Headers: h, Upstream: upstream}
}

// CORSCases are HTTPRouteCORS's cases, in its order, then ghost's own.
var CORSCases = []CORSCase{
	preflight("conformance/preflight-exact-origin", "/cors-1",
		"Origin", "https://www.foo.com", "access-control-request-method", "GET",
		"access-control-request-headers", "x-header-1, x-header-2").
		want(acao, "https://www.foo.com", acam, "GET, OPTIONS", acah, "x-header-1, x-header-2",
			aceh, "x-header-3, x-header-4", acma, "3600", acac, "true"),
	preflight("conformance/preflight-wildcard-origin", "/cors-1",
		"Origin", "https://www.bar.com", "access-control-request-method", "GET",
		"access-control-request-headers", "x-header-1, x-header-2").
		want(acao, "https://www.bar.com", acam, "GET, OPTIONS", acah, "x-header-1, x-header-2",
			aceh, "x-header-3, x-header-4", acma, "3600", acac, "true"),
	preflight("conformance/preflight-wildcard-origin-many-labels", "/cors-1",
		"Origin", "https://xpto.www.bar.com", "access-control-request-method", "GET",
		"access-control-request-headers", "x-header-1, x-header-2").
		want(acao, "https://xpto.www.bar.com", acam, "GET, OPTIONS", acah, "x-header-1, x-header-2",
			aceh, "x-header-3, x-header-4", acma, "3600", acac, "true"),
	preflight("conformance/preflight-origin-not-allowed", "/cors-1",
		"Origin", "https://foobar.com", "access-control-request-method", "GET").
		absent(acao, acac, acam, acah, aceh, acma),
	actual("conformance/simple-exact-origin", "GET", "/cors-1", "cors",
		"Origin", "https://www.foo.com", "access-control-request-method", "GET",
		"access-control-request-headers", "x-header-1, x-header-2").
		want(acao, "https://www.foo.com", acac, "true", aceh, "x-header-3, x-header-4", "Vary", "Origin").
		absent(acam, acah, acma),
	actual("conformance/simple-wildcard-origin", "GET", "/cors-1", "cors",
		"Origin", "https://www.bar.com", "access-control-request-method", "GET",
		"access-control-request-headers", "x-header-1, x-header-2").
		want(acao, "https://www.bar.com", "Vary", "Origin"),
	actual("conformance/simple-origin-not-allowed", "GET", "/cors-1", "cors",
		"Origin", "https://foobar.com", "access-control-request-method", "GET").
		want("Vary", "Origin").absent(acao, acac, aceh),
	preflight("conformance/preflight-wildcard-methods", "/cors-2",
		"Origin", "https://www.foo.com", "access-control-request-method", "POST").
		want(acao, "https://www.foo.com", acam, "*", acma, "5").absent(acac, acah, aceh),
	preflight("conformance/preflight-no-credentials", "/cors-2",
		"Origin", "https://www.foo.com", "access-control-request-method", "POST").
		absent(acac),
	preflight("conformance/preflight-any-origin", "/cors-wildcard-origin",
		"Origin", "https://foobar.com", "access-control-request-method", "PUT").
		want(acao, "*", acam, "PUT").absent(acac),
	preflight("conformance/preflight-any-origin-with-port", "/cors-wildcard-origin",
		"Origin", "https://foobar.com:12345", "access-control-request-method", "PUT").
		want(acao, "*", acam, "PUT").absent(acac),
	actual("conformance/actual-any-origin-with-port", "PUT", "/cors-wildcard-origin", "cors",
		"Origin", "https://foobar.com:12345").
		want(acao, "*").absent(acac, "Vary"),
	actual("conformance/actual-any-origin", "PUT", "/cors-wildcard-origin", "cors",
		"Origin", "https://foobar.com").
		want(acao, "*").absent(acac),
	preflight("conformance/preflight-echo-with-credentials", "/cors-wildcard-methods-headers",
		"Origin", "https://other.foo.com", "access-control-request-method", "PUT",
		"access-control-request-headers", "x-header-1, x-header-2").
		want(acao, "https://other.foo.com", acam, "PUT", acah, "x-header-1, x-header-2", acac, "true"),
	preflight("conformance/preflight-wildcards-without-credentials", "/cors-wildcard-methods-headers-unauth",
		"Origin", "https://other.foo.com", "access-control-request-method", "PUT",
		"access-control-request-headers", "x-header-1, x-header-2").
		want(acao, "*", acam, "*", acah, "*").absent(acac),
	actual("conformance/actual-credentials", "GET", "/cors-wildcard-methods-headers", "cors",
		"Origin", "https://other.foo.com").
		want(acao, "https://other.foo.com", acac, "true", "Vary", "Origin"),
	actual("conformance/actual-no-credentials", "GET", "/cors-wildcard-methods-headers-unauth", "cors",
		"Origin", "https://other.foo.com").
		want(acao, "*").absent(acac),

	// ghost's own
	preflight("ghost/preflight-echo-without-request-headers", "/cors-wildcard-methods-headers",
		"Origin", "https://other.foo.com", "access-control-request-method", "DELETE").
		want(acao, "https://other.foo.com", acam, "DELETE", acac, "true").absent(acah),
	preflight("ghost/preflight-default-port-spelt-out", "/cors-1",
		"Origin", "https://www.foo.com:443", "access-control-request-method", "GET").
		want(acao, "https://www.foo.com:443"),
	preflight("ghost/preflight-other-port-not-allowed", "/cors-1",
		"Origin", "https://www.foo.com:8443", "access-control-request-method", "GET").
		absent(acao),
	preflight("ghost/preflight-wildcard-needs-a-label", "/cors-1",
		"Origin", "https://bar.com", "access-control-request-method", "GET").
		absent(acao),
	preflight("ghost/preflight-scheme-differs", "/cors-1",
		"Origin", "http://www.foo.com", "access-control-request-method", "GET").
		absent(acao),
	actual("ghost/options-without-request-method-is-fetched", "OPTIONS", "/cors-1", "cors",
		"Origin", "https://www.foo.com").
		want(acao, "https://www.foo.com").absent(acam, acma),
	actual("ghost/options-without-origin-is-fetched", "OPTIONS", "/cors-1", "cors",
		"access-control-request-method", "GET").
		absent(acao, acam),
	actual("ghost/no-origin-still-varies", "GET", "/cors-1", "cors").
		want("Vary", "Origin").absent(acao),
	actual("ghost/route-without-cors", "OPTIONS", "/plain", "cors-none",
		"Origin", "https://www.foo.com", "access-control-request-method", "GET").
		absent(acao, acam, "Vary"),
	origin("/o-exact", "https://a.example", true),
	origin("/o-exact", "https://a.example:443", true),
	origin("/o-exact", "https://A.example", false),
	origin("/o-exact", "http://a.example", false),
	origin("/o-exact", "https://a.example:8443", false),
	origin("/o-exact", "https://xa.example", false),
	origin("/o-exact", "https://a.example.evil", false),
	origin("/o-wild", "https://a.example.com", true),
	origin("/o-wild", "https://a.b.example.com", true),
	origin("/o-wild", "https://a.example.com:443", true),
	origin("/o-wild", "https://example.com", false),
	origin("/o-wild", "https://.example.com", false),
	origin("/o-wild", "https://a_b.example.com", false),
	origin("/o-wild", "https://a.example.com:8443", false),
	origin("/o-wild", "https://aexample.com", false),
	origin("/o-wildport", "https://a.example.com:8443", true),
	origin("/o-wildport", "https://a.example.com", false),
	origin("/o-anyhost", "http://x.test", true),
	origin("/o-anyhost", "http://x.test:80", true),
	origin("/o-anyhost", "http://x.test:81", false),
	origin("/o-anyhost", "https://x.test", false),
}

// origin is an actual GET from Origin o to a route with one allow list:
// Access-Control-Allow-Origin repeats o exactly when allowed.
func origin(url, o string, allowed bool) CORSCase {
	c := actual("origin"+url+"/"+o, "GET", url, "cors", "Origin", o)
	if allowed {
		return c.want(acao, o, "Vary", "Origin")
	}
	return c.want("Vary", "Origin").absent(acao)
}

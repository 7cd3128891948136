package route

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/varnish/ghost/route/routetest"
)

// TestCORSCases decides the ported Gateway API conformance cases
// (routetest.CORSCases, which test/e2e sends through varnishd too) and
// applies the decision's CORS the way the shim does.
func TestCORSCases(t *testing.T) {
	tb, name := sharedTable(t)
	for _, c := range routetest.CORSCases {
		t.Run(c.Name, func(t *testing.T) {
			m := c.Method
			if m == "" {
				m = "GET"
			}
			r := req(routetest.CORSHost, m, c.URL, c.Headers...)
			d := decide(tb, r)
			got := map[string]string{}
			var vary []string
			pre := false
			if d.CORS != nil {
				var hs []Header
				if pre, hs = d.CORS.PreflightAnswer(r); !pre {
					hs = d.CORS.ResponseHeaders(r)
					vary = d.CORS.Vary
				}
				for _, h := range hs {
					if _, dup := got[h.Name]; dup {
						t.Errorf("header %s twice", h.Name)
					}
					got[h.Name] = h.Value
				}
			}
			if pre != c.Preflight {
				t.Fatalf("preflight answered by ghost: %v, want %v", pre, c.Preflight)
			}
			if !pre {
				if up := name[backendOf(d)]; up != c.Upstream {
					t.Errorf("upstream %q (%s), want %q", up, backendOf(d), c.Upstream)
				}
			}
			for h, v := range c.Want {
				if h == "Vary" {
					if !strings.Contains(strings.Join(vary, ","), v) {
						t.Errorf("Vary %q, want %s in it", vary, v)
					}
					continue
				}
				if got[h] != v {
					t.Errorf("%s: %q, want %q", h, got[h], v)
				}
			}
			for _, h := range c.Absent {
				if h == "Vary" {
					if len(vary) > 0 {
						t.Errorf("Vary %q, want none", vary)
					}
					continue
				}
				if v, ok := got[h]; ok {
					t.Errorf("%s: %q, want none", h, v)
				}
			}
		})
	}
}

// The origins a filter allows: exact (default ports both ways, host case
// as browsers send it) and wildcards (one or more labels, the port too).
func TestCORSOrigins(t *testing.T) {
	cases := []struct {
		allow  []string
		origin string
		want   bool
	}{
		{[]string{"https://a.example"}, "https://a.example", true},
		{[]string{"https://a.example"}, "https://a.example:443", true},
		{[]string{"https://a.example:443"}, "https://a.example", true},
		{[]string{"https://A.Example"}, "https://a.example", true},
		{[]string{"https://a.example"}, "https://A.example", false},
		{[]string{"https://a.example"}, "http://a.example", false},
		{[]string{"https://a.example"}, "https://a.example:8443", false},
		{[]string{"https://a.example"}, "https://a.example.evil", false},
		{[]string{"https://a.example"}, "https://xa.example", false},
		{[]string{"http://a.example:8080"}, "http://a.example:8080", true},
		{[]string{"http://a.example:8080"}, "http://a.example", false},
		{[]string{"http://a.example:080"}, "http://a.example:80", true},
		{[]string{"http://a.example:0080"}, "http://a.example", true},
		{[]string{"https://*.example.com"}, "https://a.example.com", true},
		{[]string{"https://*.example.com"}, "https://a.b.example.com", true},
		{[]string{"https://*.example.com"}, "https://a.example.com:443", true},
		{[]string{"https://*.example.com"}, "https://example.com", false},
		{[]string{"https://*.example.com"}, "https://.example.com", false},
		{[]string{"https://*.example.com"}, "https://a.example.com:8443", false},
		{[]string{"https://*.example.com"}, "https://a/b.example.com", false},
		{[]string{"https://*.example.com"}, "https://a:1.example.com", false},
		{[]string{"https://*.example.com"}, "https://aexample.com", false},
		{[]string{"https://*.example.com:8443"}, "https://a.example.com:8443", true},
		{[]string{"https://*.example.com:8443"}, "https://a.example.com", false},
		{[]string{"http://*"}, "http://anything.test", true},
		{[]string{"http://*"}, "http://anything.test:80", true},
		{[]string{"http://*"}, "http://anything.test:81", false},
		{[]string{"http://*"}, "https://anything.test", false},
		{[]string{"http://*:8080"}, "http://x:8080", true},
		{[]string{"*"}, "null", true},
		{[]string{"*"}, "", false},
		{[]string{"https://a.example", "https://*.b.example"}, "https://x.b.example", true},
	}
	for _, c := range cases {
		doc := route0(`{"path_match":{"type":"Exact","value":"/c"},"filters":{"cors":{"allow_origins":` + jsonList(c.allow) + `,"allow_credentials":true}},` + be(1) + `}`)
		tb := mustParse(t, doc)
		r := req("api.example.com", "GET", "/c", "Origin", c.origin)
		if c.origin == "" {
			r = req("api.example.com", "GET", "/c")
		}
		d := decide(tb, r)
		got := len(d.CORS.ResponseHeaders(r)) > 0
		if got != c.want {
			t.Errorf("allow_origins %q, Origin %q: allowed %v, want %v", c.allow, c.origin, got, c.want)
		}
	}
}

func jsonList(l []string) string {
	b, _ := json.Marshal(l)
	return string(b)
}

// A cors route answers OPTIONS itself, so its vhost's decisions depend on
// the method; only OPTIONS decisions carry the preflight answer, and every
// outcome carries the filter.
func TestCORSDecision(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{
		"c.test": {
			`{"path_match":{"type":"PathPrefix","value":"/c"},"filters":{"cors":{"allow_origins":["https://a.test"]}},` + be(1) + `}`,
			`{"path_match":{"type":"PathPrefix","value":"/r"},"filters":{"cors":{"allow_origins":["https://a.test"]},"request_redirect":{"hostname":"x.test"}}}`,
			`{"path_match":{"type":"PathPrefix","value":"/n"},"filters":{"cors":{"allow_origins":["https://a.test"]}}}`,
		},
		"plain.test": {`{` + be(2) + `}`},
	}))
	d := decide(tb, req("c.test", "GET", "/c"))
	if !d.Deps.Method || d.CORS == nil || d.CORS.Preflight != nil {
		t.Fatalf("GET: deps.m %v, CORS %+v: want the method as an input and no preflight answer", d.Deps.Method, d.CORS)
	}
	for _, u := range []string{"/c", "/r", "/n"} {
		d = decide(tb, req("c.test", "OPTIONS", u))
		if d.CORS == nil || d.CORS.Preflight == nil || d.CORS.Preflight.Status != 204 {
			t.Errorf("OPTIONS %s: CORS %+v, want a 204 preflight answer", u, d.CORS)
		}
	}
	if d = decide(tb, req("plain.test", "OPTIONS", "/")); d.Deps.Method || d.CORS != nil {
		t.Errorf("vhost without cors: deps.m %v, CORS %+v", d.Deps.Method, d.CORS)
	}
}

func TestCORSValidation(t *testing.T) {
	const V = `ghost.json: vhost "api.example.com" route 2: filters.cors`
	cors := func(body string) string {
		return route0(`{"filters":{"cors":{` + body + `}},` + be(1) + `}`)
	}
	long := "https://" + strings.Repeat("a", 250) + ".test"
	many := make([]string, 65)
	for i := range many {
		many[i] = fmt.Sprintf("https://h%d.test", i)
	}
	cases := []struct{ doc, want string }{
		{cors(`"allow_origins":["*","https://a.test"]`), V + `.allow_origins: "*" cannot be listed with other entries`},
		{cors(`"allow_origins":["a.test"]`), V + `.allow_origins[0] "a.test" must be "*" or start with http:// or https://`},
		{cors(`"allow_origins":["ftp://a.test"]`), V + `.allow_origins[0] "ftp://a.test" must be "*" or start with http:// or https://`},
		{cors(`"allow_origins":["https://a.test","HTTPS://b.test"]`), V + `.allow_origins[1] "HTTPS://b.test" must be "*" or start with http:// or https://`},
		{cors(`"allow_origins":["https://"]`), V + `.allow_origins[0] "https://" has no host`},
		{cors(`"allow_origins":["https://a.test/"]`), V + `.allow_origins[0] "https://a.test/" has a host that is not DNS labels of letters, digits and '-' (a wildcard only as "*" or a leading "*.")`},
		{cors(`"allow_origins":["https://a.*.test"]`), V + `.allow_origins[0] "https://a.*.test" has a host that is not DNS labels of letters, digits and '-' (a wildcard only as "*" or a leading "*.")`},
		{cors(`"allow_origins":["https://*a.test"]`), V + `.allow_origins[0] "https://*a.test" has a host that is not DNS labels of letters, digits and '-' (a wildcard only as "*" or a leading "*.")`},
		{cors(`"allow_origins":["https://*."]`), V + `.allow_origins[0] "https://*." has a host that is not DNS labels of letters, digits and '-' (a wildcard only as "*" or a leading "*.")`},
		{cors(`"allow_origins":["https://a..test"]`), V + `.allow_origins[0] "https://a..test" has a host that is not DNS labels of letters, digits and '-' (a wildcard only as "*" or a leading "*.")`},
		{cors(`"allow_origins":["https://a.test:0"]`), V + `.allow_origins[0] "https://a.test:0" has a port that is not a number 1-65535`},
		{cors(`"allow_origins":["https://a.test:65536"]`), V + `.allow_origins[0] "https://a.test:65536" has a port that is not a number 1-65535`},
		{cors(`"allow_origins":["https://a.test:"]`), V + `.allow_origins[0] "https://a.test:" has a port that is not a number 1-65535`},
		{cors(`"allow_origins":["https://a.test:+80"]`), V + `.allow_origins[0] "https://a.test:+80" has a port that is not a number 1-65535`},
		{cors(`"allow_origins":["https://[::1]"]`), V + `.allow_origins[0] "https://[::1]" has a port that is not a number 1-65535`},
		{cors(`"allow_origins":["` + long + `"]`), V + `.allow_origins[0] "` + long + `" is longer than 253 bytes`},
		{cors(`"allow_origins":["https://a.test","https://a.test"]`), V + `.allow_origins[1]: "https://a.test" is listed twice`},
		{cors(`"allow_origins":` + jsonList(many)), V + `.allow_origins: more than 64 origins`},
		{cors(`"allow_methods":["get"]`), V + `.allow_methods[0]: method "get" is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH or "*"`},
		{cors(`"allow_methods":["PURGE"]`), V + `.allow_methods[0]: method "PURGE" is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH or "*"`},
		{cors(`"allow_methods":["GET","*"]`), V + `.allow_methods: "*" cannot be listed with other entries`},
		{cors(`"allow_methods":["GET","GET"]`), V + `.allow_methods[1]: "GET" is listed twice`},
		{cors(`"allow_headers":["x a"]`), V + `.allow_headers[0]: header name "x a" is not an RFC 7230 token`},
		{cors(`"allow_headers":["x-a","*"]`), V + `.allow_headers: "*" cannot be listed with other entries`},
		{cors(`"allow_headers":["x-a","X-A"]`), V + `.allow_headers[1]: "X-A" is listed twice`},
		{cors(`"expose_headers":[""]`), V + `.expose_headers[0]: header name "" is not an RFC 7230 token`},
		{cors(`"expose_headers":["*"],"allow_credentials":true`), V + `.expose_headers: "*" cannot be used with allow_credentials: browsers take it as a header named "*" on a request with credentials; list the names`},
		{cors(`"max_age":0`), V + `.max_age 0 out of range 1-2147483647 (seconds)`},
		{cors(`"max_age":-5`), V + `.max_age -5 out of range 1-2147483647 (seconds)`},
		{cors(`"max_age":2147483648`), V + `.max_age 2147483648 out of range 1-2147483647 (seconds)`},
		{cors(`"allow_credentials":"yes"`), `ghost.json: vhost "api.example.com" route 2: filters.cors.allow_credentials: string is not a bool (line 1 column 112)`},
		{route0(`{"filters":{"cors":{"allow_origins":["https://a.test"]},"request_header_modifier":{"set":[{"name":"origin","value":"x"}]}},` + be(1) + `}`),
			`ghost.json: vhost "api.example.com" route 2: filters.request_header_modifier changes Origin, which filters.cors reads: remove one of them`},
	}
	for _, c := range cases {
		_, err := Parse("ghost.json", []byte(c.doc))
		if err == nil || err.Error() != c.want {
			t.Errorf("%s\n got: %v\nwant: %s", c.doc, err, c.want)
		}
	}
	// what the Gateway API allows is accepted
	for _, body := range []string{
		`"allow_origins":["*"],"allow_credentials":true,"allow_methods":["*"],"allow_headers":["*"]`,
		`"expose_headers":["*","x-a"]`,
		`"allow_origins":[],"max_age":1`,
		`"allow_origins":["http://*","https://*:8443","https://*.a-b.test","http://127.0.0.1:8080"]`,
	} {
		if _, err := Parse("ghost.json", []byte(cors(body))); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

// The cors example in docs/configuration.md parses and answers as the
// text under it says.
func TestCORSDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Skip("docs not present:", err)
	}
	m := regexp.MustCompile("(?s)### cors\n.*?```json\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no cors example in docs/configuration.md")
	}
	tb := mustParse(t, string(m[1]))
	r := req("api.example.com", "OPTIONS", "/api/items", "Origin", "https://shop.example.net",
		"Access-Control-Request-Method", "DELETE")
	d := decide(tb, r)
	pre, hs := d.CORS.PreflightAnswer(r)
	want := []Header{{hdrACAO, "https://shop.example.net"}, {hdrACAC, "true"}, {hdrACAM, "GET, POST, DELETE"},
		{hdrACAH, "content-type, x-request-id"}, {hdrACEH, "x-request-id"}, {hdrACMA, "600"}}
	if !pre || !slices.Equal(hs, want) || d.CORS.Preflight.Status != 204 {
		t.Errorf("preflight: %v %q, want %q", pre, hs, want)
	}
	r = req("api.example.com", "GET", "/api/items", "Origin", "https://shop.example.net")
	d = decide(tb, r)
	want = []Header{{hdrACAO, "https://shop.example.net"}, {hdrACAC, "true"}, {hdrACEH, "x-request-id"}}
	if hs = d.CORS.ResponseHeaders(r); !slices.Equal(hs, want) || !slices.Equal(d.CORS.Vary, []string{"Origin"}) {
		t.Errorf("actual: %q vary %q, want %q", hs, d.CORS.Vary, want)
	}
	r = req("api.example.com", "GET", "/api/items", "Origin", "https://example.net")
	if hs = decide(tb, r).CORS.ResponseHeaders(r); hs != nil {
		t.Errorf("https://example.net: %q, want nothing", hs)
	}
}

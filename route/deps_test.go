package route

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestDeps(t *testing.T) {
	tb := mustParse(t, `{"version":2,"vhosts":{
		"plain":{"routes":[{"path_match":{"type":"PathPrefix","value":"/a"},"backends":[]}],"default_backends":[{"address":"10.0.0.1","port":1}]},
		"all":{"routes":[
			{"method":"GET","headers":[{"name":"X-B","value":"1"},{"name":"x-a","value":"1"}]},
			{"headers":[{"name":"x-b","value":"2","type":"RegularExpression"}],"query_params":[{"name":"q","value":"1"}]},
			{"listeners":["s"]},
			{"filters":{"request_redirect":{"hostname":"x"}}}]},
		"explicit-scheme":{"routes":[{"filters":{"request_redirect":{"scheme":"http","port":8080}}}]},
		"*":{"routes":[]}}}`)
	cases := []struct {
		host string
		want Deps
	}{
		{"plain", Deps{Path: true}},
		{"all", Deps{Path: true, Method: true, Query: true, Socket: true, HTTPS: true, Headers: []string{"x-a", "x-b"}}},
		{"explicit-scheme", Deps{Path: true}},
		{"other", Deps{Path: true}}, // the "*" vhost
	}
	for _, c := range cases {
		for _, url := range []string{"/", "/a/b", "/zzz?q=1"} {
			d := decide(tb, req(c.host, "GET", url))
			got := d.Deps
			if got.Path != c.want.Path || got.Method != c.want.Method || got.Query != c.want.Query ||
				got.Socket != c.want.Socket || got.HTTPS != c.want.HTTPS || !slices.Equal(got.Headers, c.want.Headers) {
				t.Errorf("%s %s: deps %+v, want %+v", c.host, url, got, c.want)
			}
		}
	}
	// No vhost: nothing but the Host header.
	tb = mustParse(t, `{"version":2,"vhosts":{"a":{"routes":[{"method":"GET"}]}}}`)
	if d := decide(tb, req("b", "GET", "/")); !(d.Deps.Path == false && d.Deps.Method == false && d.Deps.Headers == nil) {
		t.Errorf("no vhost: %+v", d.Deps)
	}
}

// Specificity beats priority and rule_index, whatever their values.
func TestPriorityOnlyBreaksTies(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{"h": {
		`{"path_match":{"type":"PathPrefix","value":"/a"},"priority":30000000,"rule_index":-5,` + be(1) + `}`,
		`{"path_match":{"type":"Exact","value":"/a"},"priority":-30000000,"rule_index":99,` + be(2) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/a/b"},"priority":-1,` + be(3) + `}`,
		`{"method":"GET","priority":99999999,` + be(4) + `}`,
		`{"path_match":{"type":"RegularExpression","value":"^/r"},"priority":-99,` + be(5) + `}`,
	}}))
	for _, c := range []struct{ url, want string }{
		{"/a", "10.0.0.2:80"},
		{"/a/b", "10.0.0.3:80"},
		{"/a/c", "10.0.0.1:80"},
		{"/r", "10.0.0.5:80"},
		{"/x", "10.0.0.4:80"},
	} {
		if got := backendOf(decide(tb, req("h", "GET", c.url))); got != c.want {
			t.Errorf("%s: got %s, want %s", c.url, got, c.want)
		}
	}
}

// default_backends in group shape, and a vhost whose only route is the
// default.
func TestDefaultBackendGroups(t *testing.T) {
	tb := mustParse(t, `{"version":2,"vhosts":{"h":{"default_backends":[
		{"weight":3,"backends":[{"address":"10.0.0.1","port":80},{"address":"10.0.0.2","port":80}]},
		{"weight":0,"backends":[{"address":"10.0.0.3","port":80}]},
		{"backends":[]}]},
		"z":{"routes":[],"default_backends":[{"address":"10.0.0.1","port":80,"weight":0}]}}}`)
	d := decide(tb, req("h", "DELETE", "/any?thing"))
	if d.Outcome != OutcomeBackend || d.RouteIndex != RouteDefault || len(d.Groups) != 1 || d.Groups[0].Weight != 3 || len(d.Groups[0].Endpoints) != 2 {
		t.Errorf("group default: %+v", d)
	}
	if d.RequestHeaders != nil || d.NewPath != "" {
		t.Errorf("default has no filters: %+v", d)
	}
	d = decide(tb, req("z", "GET", "/"))
	if d.Outcome != OutcomeNoBackends || d.RouteIndex != RouteDefault {
		t.Errorf("all-zero default: %+v", d)
	}
}

// The example in docs/configuration.md parses and routes as described.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Skip("docs not present:", err)
	}
	m := regexp.MustCompile("(?s)## Example\n\n```json\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("no example in docs/configuration.md")
	}
	tb := mustParse(t, string(m[1]))
	d := decide(tb, req("api.example.com", "GET", "/api/x?y=1", "X-Env", "canary"))
	if d.RouteName != "shop/api" || d.NewPath != "/v2/x" || len(d.Groups) != 2 {
		t.Errorf("api route: %+v", d)
	}
	d = decide(tb, req("api.example.com:8080", "GET", "/old?z"))
	if d.Location() != "https://api.example.com/new?z" || d.Status != 301 {
		t.Errorf("redirect: %+v", d)
	}
	r := req("api.example.com", "GET", "/other")
	r.Socket = "http-80"
	if d = decide(tb, r); d.RouteIndex != 2 {
		t.Errorf("listener route: %+v", d)
	}
	if d = decide(tb, req("api.example.com", "GET", "/other")); d.RouteIndex != RouteDefault {
		t.Errorf("default: %+v", d)
	}
	if d = decide(tb, req("example.com", "GET", "/")); d.Outcome != OutcomeNotFound || d.Vhost != "*" {
		t.Errorf("catch-all: %+v", d)
	}
}

// bereqView is what a fetch's backend request carries of r's headers:
// Accept-Encoding forced to gzip (http_gzip_support), the other
// fetchRewritten headers dropped, X-Varnish varnishd's own.
func bereqView(r *Request) *Request {
	b := *r
	b.Headers = nil
	for _, h := range r.Headers {
		switch n := strings.ToLower(h.Name); {
		case n == "accept-encoding":
			b.Headers = append(b.Headers, Header{Name: h.Name, Value: "gzip"})
		case n == "x-varnish":
			b.Headers = append(b.Headers, Header{Name: h.Name, Value: "32770"})
		case fetchRewritten[n]:
		default:
			b.Headers = append(b.Headers, h)
		}
	}
	return &b
}

// FetchPlain holds exactly when no route reads a fetchRewritten header
// (matches, cache_policy bypass, load_balancer and session headers), and
// then every decision made on a fetch's backend request equals the
// decision on the client's request: an oracle over random tables and
// requests.
func TestFetchPlain(t *testing.T) {
	for _, c := range []struct {
		name  string
		route string
		want  bool
	}{
		{"path only", `{"path_match":{"type":"PathPrefix","value":"/p"},` + be(1) + `}`, true},
		{"header x", `{"headers":[{"name":"X-A","value":"1"}],` + be(1) + `}`, true},
		{"Range match", `{"headers":[{"name":"Range","value":"bytes=0-1"}],` + be(1) + `}`, false},
		{"Accept-Encoding regex", `{"headers":[{"name":"accept-encoding","type":"RegularExpression","value":"br"}],` + be(1) + `}`, false},
		{"bypass on Cache-Control", `{"cache_policy":{"bypass_headers":[{"name":"Cache-Control"}]},` + be(1) + `}`, false},
		{"bypass on x", `{"cache_policy":{"bypass_headers":[{"name":"x-b"}]},` + be(1) + `}`, true},
		{"hash on If-None-Match", `{"backends":[{"address":"10.0.0.1","port":80},{"address":"10.0.0.2","port":80}],"load_balancer":{"type":"consistent_hash","key":"header:If-None-Match"}}`, false},
		{"hash on x", `{"backends":[{"address":"10.0.0.1","port":80},{"address":"10.0.0.2","port":80}],"load_balancer":{"type":"consistent_hash","key":"cookie:u","fallback":["header:x-user"]}}`, true},
		{"session header Keep-Alive", `{"session_persistence":{"type":"header","name":"Keep-Alive"},` + be(1) + `}`, false},
		{"session header x", `{"session_persistence":{"type":"header","name":"X-Session"},` + be(1) + `}`, true},
		{"session cookie", `{"session_persistence":{"name":"range"},` + be(1) + `}`, true},
		{"method", `{"method":"HEAD",` + be(1) + `}`, true},
	} {
		tb, err := Parse("ghost.json", []byte(file(map[string][]string{"a.example": {c.route}, "*": {`{` + be(3) + `}`}})))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := tb.FetchPlain(); got != c.want {
			t.Errorf("%s: FetchPlain() = %v, want %v", c.name, got, c.want)
		}
	}

	names := []string{"x", "accept-encoding", "range", "if-none-match", "cache-control", "x-varnish", "te"}
	rng := rand.New(rand.NewPCG(16, 48))
	plain := 0
	for i := 0; i < 400; i++ {
		doc, _ := randScopeTable(rng, rng.IntN(4) == 0)
		var used []string
		for strings.Contains(doc, `"name":"x",`) {
			n := names[rng.IntN(len(names))]
			if rng.IntN(2) == 0 {
				n = "x"
			}
			used = append(used, n)
			doc = strings.Replace(doc, `"name":"x",`, `"name":"`+strings.ToUpper(n[:1])+n[1:]+`#",`, 1)
		}
		doc = strings.ReplaceAll(doc, `#",`, `",`)
		if rng.IntN(3) == 0 {
			n := names[rng.IntN(len(names))]
			used = append(used, n)
			doc = strings.Replace(doc, `"routes":[{`, `"routes":[{"cache_policy":{"bypass_headers":[{"name":"`+n+`"}]},`, 1)
		}
		tb := mustParse(t, doc)
		want := true
		for _, n := range used {
			want = want && n == "x"
		}
		got := tb.FetchPlain()
		if got != want {
			t.Fatalf("table %d: FetchPlain() = %v, want %v\n%s", i, got, want, doc)
		}
		if !got {
			continue
		}
		plain++
		for j := 0; j < 60; j++ {
			var hs []string
			for _, n := range names {
				if rng.IntN(2) == 0 {
					hs = append(hs, n, fmt.Sprint(rng.IntN(2)))
				}
			}
			r := req("h", []string{"GET", "HEAD", "POST"}[rng.IntN(3)], randPath(rng, 4), hs...)
			a, b := decide(tb, r), decide(tb, bereqView(r))
			if why := sameDecision(&a, &b, r.URL, r.URL); why != "" || a.Cache != b.Cache {
				t.Fatalf("table %d: %s %s %v: client and fetch decide differently: %s (cache %v/%v)\n%s",
					i, r.Method, r.URL, r.Headers, why, a.Cache, b.Cache, doc)
			}
		}
	}
	if plain < 100 {
		t.Fatalf("only %d of 400 random tables were FetchPlain: the oracle proves little", plain)
	}
}

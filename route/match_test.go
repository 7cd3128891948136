package route

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// Host normalisation and vhost selection (docs/routing.md, "Host").
func TestHostSelection(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{
		"a.example.com":     {`{` + be(1) + `}`},
		"*.example.com":     {`{` + be(2) + `}`},
		"*.b.example.com":   {`{` + be(3) + `}`},
		"*":                 {`{` + be(4) + `}`},
		"Upper.Example.ORG": {`{` + be(5) + `}`},
		"[2001:db8::1]":     {`{` + be(6) + `}`},
		"10.1.2.3":          {`{` + be(7) + `}`},
	}))
	cases := []struct{ host, want string }{
		{"a.example.com", "10.0.0.1:80"},
		{"A.Example.COM", "10.0.0.1:80"},                           // case-insensitive
		{"a.example.com:8080", "10.0.0.1:80"},                      // port stripped
		{"a.example.com.", "10.0.0.1:80"},                          // one trailing dot dropped
		{"a.example.com.:81", "10.0.0.1:80"},                       // port then dot
		{"a.example.com..", "10.0.0.4:80"},                         // only one dot dropped
		{"x.example.com", "10.0.0.2:80"},                           // wildcard
		{"x.y.example.com", "10.0.0.2:80"},                         // wildcard, any depth
		{"x.b.example.com", "10.0.0.3:80"},                         // longest suffix wins
		{"y.x.b.example.com", "10.0.0.3:80"},                       // longest suffix wins, depth
		{"b.example.com", "10.0.0.2:80"},                           // *.example.com covers b.example.com
		{"example.com", "10.0.0.4:80"},                             // wildcard never matches apex
		{".example.com", "10.0.0.4:80"},                            // needs a label in front
		{"fooexample.com", "10.0.0.4:80"},                          // not a label boundary
		{"upper.example.org", "10.0.0.5:80"},                       // key lower-cased
		{"UPPER.EXAMPLE.ORG:1", "10.0.0.5:80"},                     // both sides
		{"[2001:db8::1]:8080", "10.0.0.6:80"},                      // bracket-aware port strip
		{"[2001:DB8::1]", "10.0.0.6:80"},                           // lower-cased
		{"10.1.2.3:80", "10.0.0.7:80"},                             // IPv4 literal
		{"", "10.0.0.4:80"},                                        // no Host: catch-all
		{"other.net", "10.0.0.4:80"},                               // catch-all
		{strings.Repeat("A", 300) + ".example.com", "10.0.0.2:80"}, // long, upper-case
	}
	for _, c := range cases {
		if got := backendOf(decide(tb, req(c.host, "GET", "/"))); got != c.want {
			t.Errorf("host %q: got %s, want %s", c.host, got, c.want)
		}
	}

	// Without "*": unknown host → 404 with empty deps and no vhost.
	tb = mustParse(t, file(map[string][]string{"a.example.com": {`{` + be(1) + `}`}}))
	d := decide(tb, req("b.example.com", "GET", "/"))
	if d.Outcome != OutcomeNotFound || d.Status != 404 || d.Vhost != "" || d.RouteIndex != RouteNone {
		t.Errorf("no vhost: %+v", d)
	}
	if d.Deps.Path || d.Deps.Method || d.Deps.Query || d.Deps.Socket || d.Deps.HTTPS || d.Deps.Headers != nil {
		t.Errorf("no vhost: deps %+v, want all false", d.Deps)
	}
}

// Only the selected vhost is tried — no fallback (docs/routing.md, "Host").
func TestNoFallback(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{
		"bar.example.com": {`{"path_match":{"type":"Exact","value":"/bar"},` + be(1) + `}`},
		"*.example.com":   {`{"path_match":{"type":"Exact","value":"/wild"},` + be(2) + `}`},
		"*":               {`{"path_match":{"type":"PathPrefix","value":"/"},` + be(3) + `}`},
	}))
	for _, c := range []struct{ host, url, want string }{
		{"bar.example.com", "/bar", "10.0.0.1:80"},
		{"bar.example.com", "/wild", "404"},
		{"bar.example.com", "/empty-hostname", "404"},
		{"x.example.com", "/bar", "404"},
		{"x.example.com", "/wild", "10.0.0.2:80"},
		{"other", "/anything", "10.0.0.3:80"},
	} {
		if got := backendOf(decide(tb, req(c.host, "GET", c.url))); got != c.want {
			t.Errorf("%s%s: got %s, want %s", c.host, c.url, got, c.want)
		}
	}
}

// Path conditions (docs/routing.md, "Conditions").
func TestPathMatching(t *testing.T) {
	type pc struct {
		typ, value, path string
		want             bool
	}
	cases := []pc{
		{"Exact", "/abc", "/abc", true},
		{"Exact", "/abc", "/abc?x=1", true}, // query is not part of the path
		{"Exact", "/abc", "/abcd", false},
		{"Exact", "/abc", "/abc/", false},
		{"Exact", "/abc", "/Abc", false}, // case-sensitive
		{"Exact", "/", "", true},         // empty path is "/"
		{"Exact", "/", "?q", true},
		{"Exact", "/a%20b", "/a%20b", true}, // raw, no decoding
		{"Exact", "/a/b", "/a%2Fb", false},
		{"Exact", "/a/../b", "/b", false},
		{"PathPrefix", "/abc", "/abc", true},
		{"PathPrefix", "/abc", "/abc/", true},
		{"PathPrefix", "/abc", "/abc/def", true},
		{"PathPrefix", "/abc", "/abcd", false},
		{"PathPrefix", "/abc", "/ab", false},
		{"PathPrefix", "/abc", "/ABC", false},
		{"PathPrefix", "/abc/", "/abc", true}, // trailing "/" of the value ignored
		{"PathPrefix", "/abc/", "/abc/", true},
		{"PathPrefix", "/abc/", "/abc/def", true},
		{"PathPrefix", "/abc/", "/abcd", false},
		{"PathPrefix", "/api/", "/api", true},
		{"PathPrefix", "/api", "/apix", false},
		{"PathPrefix", "/a/b", "/a/b/c", true},
		{"PathPrefix", "/a/b", "/a/bc", false},
		{"PathPrefix", "/a/b", "/a", false},
		{"PathPrefix", "/", "/anything/at/all", true},
		{"PathPrefix", "/", "", true},
		{"PathPrefix", "/abc", "/abc?x", true},
		{"PathPrefix", "/abc", "/abcd?/abc/", false},
		{"RegularExpression", "^/v[0-9]+/", "/v2/x", true},
		{"RegularExpression", "v[0-9]", "/api/v2", true}, // unanchored
		{"RegularExpression", "^/v[0-9]$", "/v2?x=1", true},
		{"RegularExpression", "x=1", "/a?x=1", false}, // never sees the query
		{"RegularExpression", "^/A", "/a", false},     // case-sensitive
	}
	for _, c := range cases {
		doc := file(map[string][]string{"h": {fmt.Sprintf(`{"path_match":{"type":%q,"value":%q},%s}`, c.typ, c.value, be(1))}})
		tb := mustParse(t, doc)
		got := decide(tb, req("h", "GET", c.path)).Outcome == OutcomeBackend
		if got != c.want {
			t.Errorf("%s %q vs %q: got %v, want %v", c.typ, c.value, c.path, got, c.want)
		}
	}
	// No path_match = PathPrefix "/".
	tb := mustParse(t, file(map[string][]string{"h": {`{` + be(1) + `}`}}))
	for _, p := range []string{"/", "", "/x/y", "?a=b", "weird"} {
		if d := decide(tb, req("h", "GET", p)); d.Outcome != OutcomeBackend {
			t.Errorf("no path_match vs %q: %+v", p, d)
		}
	}
}

// Method against the client's method (docs/routing.md, "Conditions").
func TestMethod(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{"h": {
		`{"method":"GET",` + be(1) + `}`,
		`{"method":"POST",` + be(2) + `}`,
	}}))
	for _, c := range []struct{ m, want string }{
		{"GET", "10.0.0.1:80"},
		{"POST", "10.0.0.2:80"},
		{"HEAD", "404"}, // HEAD does not match a GET route
		{"get", "404"},  // exact, upper case
		{"PUT", "404"},
	} {
		if got := backendOf(decide(tb, req("h", c.m, "/"))); got != c.want {
			t.Errorf("%s: got %s, want %s", c.m, got, c.want)
		}
	}
	if d := decide(tb, req("h", "GET", "/")); !d.Deps.Method {
		t.Errorf("deps: Method should be true: %+v", d.Deps)
	}
}

// Header conditions (docs/routing.md, "Conditions").
func TestHeaders(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{"h": {
		`{"path_match":{"type":"Exact","value":"/exact"},"headers":[{"name":"X-Env","value":"canary","type":"Exact"}],` + be(1) + `}`,
		`{"path_match":{"type":"Exact","value":"/re"},"headers":[{"name":"x-ver","value":"^v[0-9]+$","type":"RegularExpression"}],` + be(2) + `}`,
		`{"path_match":{"type":"Exact","value":"/unanchored"},"headers":[{"name":"x-ver","value":"v2","type":"RegularExpression"}],` + be(3) + `}`,
		`{"path_match":{"type":"Exact","value":"/dup"},"headers":[{"name":"x-a","value":"1"},{"name":"X-A","value":"2"}],` + be(4) + `}`,
		`{"path_match":{"type":"Exact","value":"/joined"},"headers":[{"name":"x-j","value":"a,b"}],` + be(5) + `}`,
		`{"path_match":{"type":"Exact","value":"/joinedre"},"headers":[{"name":"x-j","value":"^a,b$","type":"RegularExpression"}],` + be(6) + `}`,
		`{"path_match":{"type":"Exact","value":"/two"},"headers":[{"name":"x-a","value":"1"},{"name":"x-b","value":"2"}],` + be(7) + `}`,
		`{"path_match":{"type":"Exact","value":"/empty"},"headers":[{"name":"x-e","value":""}],` + be(8) + `}`,
	}}))
	for _, c := range []struct {
		url  string
		hdrs []string
		want string
	}{
		{"/exact", []string{"x-env", "canary"}, "10.0.0.1:80"},
		{"/exact", []string{"X-ENV", "canary"}, "10.0.0.1:80"}, // name case-insensitive
		{"/exact", []string{"x-env", "Canary"}, "404"},         // value case-sensitive
		{"/exact", []string{"x-env", "canary "}, "404"},        // byte equality
		{"/exact", nil, "404"},                                 // missing never matches
		{"/exact", []string{"x-other", "canary"}, "404"},
		{"/re", []string{"X-Ver", "v12"}, "10.0.0.2:80"},
		{"/re", []string{"X-Ver", "v12x"}, "404"},
		{"/unanchored", []string{"X-Ver", "xxv2xx"}, "10.0.0.3:80"},
		{"/dup", []string{"x-a", "1"}, "10.0.0.4:80"}, // only the first matcher counts
		{"/dup", []string{"x-a", "2"}, "404"},
		{"/joined", []string{"x-j", "a", "x-j", "b"}, "10.0.0.5:80"}, // lines joined with ","
		{"/joined", []string{"x-j", "a", "x-other", "z", "X-J", "b"}, "10.0.0.5:80"},
		{"/joined", []string{"x-j", "a"}, "404"},
		{"/joined", []string{"x-j", "a", "x-j", "b", "x-j", "c"}, "404"},
		{"/joined", []string{"x-j", "b", "x-j", "a"}, "404"}, // order kept
		{"/joined", []string{"x-j", "a,b"}, "10.0.0.5:80"},
		{"/joined", []string{"x-j", "a", "x-j", ""}, "404"},
		{"/joined", []string{"x-j", "a,", "x-j", "b"}, "404"},
		{"/joinedre", []string{"x-j", "a", "x-j", "b"}, "10.0.0.6:80"},
		{"/joinedre", []string{"x-j", "a"}, "404"},
		{"/two", []string{"x-a", "1", "x-b", "2"}, "10.0.0.7:80"}, // AND
		{"/two", []string{"x-a", "1"}, "404"},
		{"/empty", []string{"x-e", ""}, "10.0.0.8:80"},
		{"/empty", nil, "404"},
	} {
		if got := backendOf(decide(tb, req("h", "GET", c.url, c.hdrs...))); got != c.want {
			t.Errorf("%s %v: got %s, want %s", c.url, c.hdrs, got, c.want)
		}
	}
	d := decide(tb, req("h", "GET", "/"))
	if want := []string{"x-a", "x-b", "x-e", "x-env", "x-j", "x-ver"}; !slices.Equal(d.Deps.Headers, want) {
		t.Errorf("deps headers %v, want %v", d.Deps.Headers, want)
	}
}

// Query conditions (docs/routing.md, "Conditions").
func TestQuery(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{"h": {
		`{"path_match":{"type":"Exact","value":"/q"},"query_params":[{"name":"a","value":"1"}],` + be(1) + `}`,
		`{"path_match":{"type":"Exact","value":"/re"},"query_params":[{"name":"v","value":"^[0-9]+$","type":"RegularExpression"}],` + be(2) + `}`,
		`{"path_match":{"type":"Exact","value":"/empty"},"query_params":[{"name":"e","value":""}],` + be(3) + `}`,
		`{"path_match":{"type":"Exact","value":"/two"},"query_params":[{"name":"a","value":"1"},{"name":"b","value":"2"}],` + be(4) + `}`,
		`{"path_match":{"type":"Exact","value":"/dup"},"query_params":[{"name":"a","value":"1"},{"name":"a","value":"2"}],` + be(5) + `}`,
	}}))
	for _, c := range []struct{ url, want string }{
		{"/q?a=1", "10.0.0.1:80"},
		{"/q?x=0&a=1&y", "10.0.0.1:80"},
		{"/q?a=1&a=2", "10.0.0.1:80"}, // first occurrence wins
		{"/q?a=2&a=1", "404"},
		{"/q?A=1", "404"},    // names case-sensitive
		{"/q?a=1%30", "404"}, // raw, no decoding
		{"/q?a", "404"},      // a pair without "=" never matches
		{"/q?a&a=1", "10.0.0.1:80"},
		{"/q", "404"},
		{"/q?", "404"},
		{"/q?a=1=2", "404"}, // split at the first "="
		{"/re?v=123", "10.0.0.2:80"},
		{"/re?v=12a", "404"},
		{"/empty?e=", "10.0.0.3:80"},
		{"/empty?e", "404"},
		{"/two?b=2&a=1", "10.0.0.4:80"},
		{"/two?b=2", "404"},
		{"/dup?a=1", "10.0.0.5:80"}, // only the first matcher of a name counts
		{"/dup?a=2", "404"},
	} {
		if got := backendOf(decide(tb, req("h", "GET", c.url))); got != c.want {
			t.Errorf("%s: got %s, want %s", c.url, got, c.want)
		}
	}
	if d := decide(tb, req("h", "GET", "/")); !d.Deps.Query {
		t.Errorf("deps: Query should be true")
	}
}

// Listeners (docs/routing.md, "Conditions").
func TestListeners(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{"h": {
		`{"path_match":{"type":"Exact","value":"/x"},"listeners":["http-80","alt"],` + be(1) + `}`,
		`{"path_match":{"type":"Exact","value":"/x"},"listeners":[],` + be(2) + `}`,
		`{"path_match":{"type":"Exact","value":"/y"},"listeners":["https-443"],` + be(3) + `}`,
	}}))
	for _, c := range []struct{ sock, url, want string }{
		{"http-80", "/x", "10.0.0.1:80"},
		{"alt", "/x", "10.0.0.1:80"},
		{"other", "/x", "10.0.0.2:80"},
		{"", "/x", "10.0.0.2:80"},
		{"https-443", "/y", "10.0.0.3:80"},
		{"http-80", "/y", "404"},
	} {
		r := req("h", "GET", c.url)
		r.Socket = c.sock
		if got := backendOf(decide(tb, r)); got != c.want {
			t.Errorf("%s %s: got %s, want %s", c.sock, c.url, got, c.want)
		}
	}
	if d := decide(tb, req("h", "GET", "/")); !d.Deps.Socket {
		t.Errorf("deps: Socket should be true")
	}
}

// Precedence, independent of file order and priorities (docs/routing.md,
// "Precedence").
func TestPrecedence(t *testing.T) {
	// Each route is tagged by its backend number. Requests and the route
	// that must win.
	routes := []string{
		`{"path_match":{"type":"Exact","value":"/a/b"},` + be(1) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/a/b"},` + be(2) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/a"},` + be(3) + `}`,
		`{"path_match":{"type":"RegularExpression","value":"^/a"},` + be(4) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/"},` + be(5) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/a"},"method":"POST",` + be(6) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/a"},"headers":[{"name":"x","value":"1"}],` + be(7) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/a"},"headers":[{"name":"x","value":"1"},{"name":"y","value":"1"}],` + be(8) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/a"},"query_params":[{"name":"q","value":"1"}],` + be(9) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/a"},"headers":[{"name":"x","value":"1"}],"query_params":[{"name":"q","value":"1"}],` + be(10) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/a/"},` + be(11) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/r"},"priority":5,` + be(12) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/r"},"priority":7,"rule_index":9,` + be(13) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/r"},"priority":7,"rule_index":3,` + be(14) + `}`,
		`{"path_match":{"type":"RegularExpression","value":"^/z"},"method":"GET",` + be(15) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/z"},"headers":[{"name":"x","value":"1"}],` + be(16) + `}`,
		`{"method":"GET","headers":[{"name":"x","value":"1"}],` + be(17) + `}`,
		`{"method":"GET",` + be(18) + `}`,
		`{"path_match":{"type":"RegularExpression","value":"^/z"},"method":"GET","headers":[{"name":"x","value":"1"}],` + be(19) + `}`,
		`{"path_match":{"type":"Exact","value":"/e"},"method":"GET",` + be(20) + `}`,
		`{"path_match":{"type":"Exact","value":"/e"},"headers":[{"name":"x","value":"1"},{"name":"y","value":"1"}],` + be(21) + `}`,
	}
	type rq struct {
		method, url string
		hdrs        []string
		want        string
	}
	cases := []rq{
		{"GET", "/a/b", nil, "10.0.0.1:80"},                           // Exact beats everything
		{"POST", "/a/b", []string{"x", "1", "y", "1"}, "10.0.0.1:80"}, // even with more conditions elsewhere
		{"GET", "/a/b/c", nil, "10.0.0.2:80"},                         // longer prefix
		{"POST", "/a/b/c", nil, "10.0.0.2:80"},                        // longer prefix beats method
		{"GET", "/a/c", nil, "10.0.0.11:80"},                          // "/a/" (4 chars) beats "/a"
		{"GET", "/a", nil, "10.0.0.11:80"},                            // "/a/" also matches "/a"
		{"GET", "/ax", nil, "10.0.0.4:80"},                            // prefix fails, regex next
		{"GET", "/b", nil, "10.0.0.18:80"},                            // method beats plain "/"
		{"PUT", "/b", nil, "10.0.0.5:80"},                             // "/" last
		{"GET", "/r/1", nil, "10.0.0.14:80"},                          // priority desc, then rule_index asc
		{"GET", "/z/z", []string{"x", "1"}, "10.0.0.16:80"},           // prefix beats regex
		{"GET", "/zz", []string{"x", "1"}, "10.0.0.19:80"},            // regexes ordered by conditions
		{"GET", "/zq", nil, "10.0.0.15:80"},                           // regex beats "/" with method
		{"GET", "/e", []string{"x", "1", "y", "1"}, "10.0.0.20:80"},   // method beats headers
		{"PUT", "/e", []string{"x", "1", "y", "1"}, "10.0.0.21:80"},
		{"GET", "/q", []string{"x", "1"}, "10.0.0.17:80"}, // "/" routes: method+header beats method
	}
	// Sub-table for same prefix: method > headers > query.
	routesB := []string{
		`{"path_match":{"type":"PathPrefix","value":"/p"},` + be(1) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/p"},"method":"GET",` + be(2) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/p"},"headers":[{"name":"x","value":"1"}],` + be(3) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/p"},"headers":[{"name":"x","value":"1"},{"name":"y","value":"1"}],` + be(4) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/p"},"query_params":[{"name":"q","value":"1"}],` + be(5) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/p"},"query_params":[{"name":"q","value":"1"},{"name":"r","value":"1"}],` + be(6) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/p"},"headers":[{"name":"x","value":"1"}],"query_params":[{"name":"q","value":"1"}],` + be(7) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/p"},"priority":100,` + be(8) + `}`,
	}
	casesB := []rq{
		{"GET", "/p?q=1&r=1", []string{"x", "1", "y", "1"}, "10.0.0.2:80"},
		{"POST", "/p?q=1&r=1", []string{"x", "1", "y", "1"}, "10.0.0.4:80"},
		{"POST", "/p?q=1&r=1", []string{"x", "1"}, "10.0.0.7:80"},
		{"POST", "/p", []string{"x", "1"}, "10.0.0.3:80"},
		{"POST", "/p?q=1&r=1", nil, "10.0.0.6:80"},
		{"POST", "/p?q=1", nil, "10.0.0.5:80"},
		{"POST", "/p", nil, "10.0.0.8:80"}, // priority among equals
	}
	run := func(name string, routes []string, cases []rq) {
		rng := rand.New(rand.NewPCG(1, 2))
		for iter := 0; iter < 50; iter++ {
			rs := slices.Clone(routes)
			if iter > 0 {
				rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
			}
			tb := mustParse(t, file(map[string][]string{"h": rs}))
			for _, c := range cases {
				if got := backendOf(decide(tb, req("h", c.method, c.url, c.hdrs...))); got != c.want {
					t.Fatalf("%s shuffle %d: %s %s %v: got %s, want %s", name, iter, c.method, c.url, c.hdrs, got, c.want)
				}
			}
		}
	}
	run("mixed", routes, cases)
	run("same-prefix", routesB, casesB)
}

// File order is the last tie-breaker; default_backends last
// (docs/routing.md, "Precedence").
func TestFileOrderAndDefault(t *testing.T) {
	doc := `{"version":2,"vhosts":{"h":{"routes":[
		{"path_match":{"type":"PathPrefix","value":"/x"},` + be(1) + `},
		{"path_match":{"type":"PathPrefix","value":"/x"},` + be(2) + `},
		{"path_match":{"type":"Exact","value":"/low"},"priority":-100,` + be(3) + `}],
		"default_backends":[{"address":"10.9.9.9","port":81}]}}}`
	tb := mustParse(t, doc)
	for _, c := range []struct{ url, want string }{
		{"/x", "10.0.0.1:80"},
		{"/low", "10.0.0.3:80"},
		{"/other", "10.9.9.9:81"},
	} {
		if got := backendOf(decide(tb, req("h", "GET", c.url))); got != c.want {
			t.Errorf("%s: got %s, want %s", c.url, got, c.want)
		}
	}
	d := decide(tb, req("h", "GET", "/other"))
	if d.RouteIndex != RouteDefault {
		t.Errorf("default route index %d", d.RouteIndex)
	}
	d = decide(tb, req("h", "GET", "/x"))
	if d.RouteIndex != 0 {
		t.Errorf("route index %d, want 0", d.RouteIndex)
	}
}

// Outcomes (docs/routing.md, "Outcomes").
func TestOutcomes(t *testing.T) {
	doc := `{"version":2,"vhosts":{"h":{"routes":[
		{"path_match":{"type":"Exact","value":"/none"},"backends":[]},
		{"path_match":{"type":"Exact","value":"/nullb"},"backends":null},
		{"path_match":{"type":"Exact","value":"/absent"}},
		{"path_match":{"type":"Exact","value":"/zero"},"backends":[{"address":"10.0.0.1","port":80,"weight":0},{"address":"10.0.0.2","port":80,"weight":0}]},
		{"path_match":{"type":"Exact","value":"/onezero"},"backends":[{"address":"10.0.0.1","port":80,"weight":0}]},
		{"path_match":{"type":"Exact","value":"/emptygroups"},"backend_groups":[{"weight":10,"backends":[]},{"weight":0,"backends":[{"address":"10.0.0.1","port":80}]}]},
		{"path_match":{"type":"Exact","value":"/ok"},"route_name":"ns/r","backends":[{"address":"10.0.0.1","port":80,"weight":0},{"address":"10.0.0.2","port":80}]},
		{"path_match":{"type":"Exact","value":"/groups"},"backend_groups":[{"weight":0,"backends":[{"address":"10.0.0.1","port":80}]},{"backends":[{"address":"10.0.0.2","port":80},{"address":"10.0.0.3","port":80}]},{"weight":5,"backends":[]}]},
		{"path_match":{"type":"Exact","value":"/redir"},"filters":{"request_redirect":{"hostname":"x.example"}}}
	]}}}`
	tb := mustParse(t, doc)
	for _, u := range []string{"/none", "/nullb", "/absent", "/zero", "/onezero", "/emptygroups"} {
		d := decide(tb, req("h", "GET", u))
		if d.Outcome != OutcomeNoBackends || d.Status != 500 || len(d.Groups) != 0 {
			t.Errorf("%s: want 500, got %+v", u, d)
		}
	}
	d := decide(tb, req("h", "GET", "/ok"))
	if d.Outcome != OutcomeBackend || d.Status != 200 || d.RouteName != "ns/r" || d.RouteIndex != 6 || d.Vhost != "h" {
		t.Errorf("/ok: %+v", d)
	}
	if len(d.Groups) != 1 || d.Groups[0].Weight != 100 || d.Groups[0].Endpoints[0].Address != "10.0.0.2" {
		t.Errorf("/ok groups: %+v (weight-0 entries must be left out)", d.Groups)
	}
	d = decide(tb, req("h", "GET", "/groups"))
	if len(d.Groups) != 1 || d.Groups[0].Weight != 100 || len(d.Groups[0].Endpoints) != 2 {
		t.Errorf("/groups: %+v", d.Groups)
	}
	d = decide(tb, req("h", "GET", "/redir"))
	if d.Outcome != OutcomeRedirect || d.Status != 302 || d.Location() != "http://x.example/redir" {
		t.Errorf("/redir: %+v", d)
	}
	d = decide(tb, req("h", "GET", "/nothing"))
	if d.Outcome != OutcomeNotFound || d.Status != 404 || d.RouteIndex != RouteNone || d.Vhost != "h" || !d.Deps.Path {
		t.Errorf("/nothing: %+v", d)
	}
	// Empty vhosts: everything 404s.
	for _, doc := range []string{`{"version":2}`, `{"version":2,"vhosts":{}}`, `{"version":2,"vhosts":null}`, `{"version":2,"vhosts":{"h":{"routes":null}}}`} {
		tb := mustParse(t, doc)
		if d := decide(tb, req("h", "GET", "/")); d.Outcome != OutcomeNotFound {
			t.Errorf("%s: %+v", doc, d)
		}
	}
	if d := decide(Empty(), req("h", "GET", "/")); d.Outcome != OutcomeNotFound {
		t.Errorf("Empty: %+v", d)
	}
	var nilTable *Table
	if d := decide(nilTable, req("h", "GET", "/")); d.Outcome != OutcomeNotFound {
		t.Errorf("nil table: %+v", d)
	}
}

// Decision reuse: a Decision is overwritten entirely by Decide.
func TestDecisionReuse(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{"h": {
		`{"path_match":{"type":"Exact","value":"/r"},"filters":{"request_redirect":{"scheme":"https"},"request_header_modifier":{"set":[{"name":"a","value":"b"}]}}}`,
		`{"path_match":{"type":"Exact","value":"/b"},"filters":{"url_rewrite":{"hostname":"n"}},` + be(1) + `}`,
	}}))
	var d Decision
	tb.Decide(req("h", "GET", "/r?x"), &d)
	tb.Decide(req("h", "GET", "/b"), &d)
	if d.RedirectBase != "" || d.Query != "" || d.NewHost != "n" {
		t.Errorf("stale fields: %+v", d)
	}
	tb.Decide(req("nope", "GET", "/b"), &d)
	if d.NewHost != "" || d.Groups != nil || d.Vhost != "" {
		t.Errorf("stale fields: %+v", d)
	}
}

// A zero Table (as the old placeholder allowed) answers 404 for everything.
func TestZeroTable(t *testing.T) {
	var tb Table
	for _, h := range []string{"a", "A.b.c", ""} {
		if d := decide(&tb, req(h, "GET", "/")); d.Outcome != OutcomeNotFound {
			t.Errorf("%q: %+v", h, d)
		}
	}
	if tb.Stats() != (Stats{}) || tb.References(Endpoint{"::1", 1}) || len(tb.Vhosts()) != 0 {
		t.Errorf("zero table not empty")
	}
}

package route

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// linearMatch is the reference matcher: it tries every route of the vhost
// in full precedence order. The indexed walk in vhost.match must agree.
func linearMatch(vh *vhost, m *matcher) *croute {
	for _, rt := range vh.ordered {
		if rt.pathMatches(m.path) && rt.conds(m) {
			return rt
		}
	}
	return nil
}

// checkAgainstLinear decides r and compares the route with the reference.
func checkAgainstLinear(t *testing.T, tb *Table, r *Request) {
	t.Helper()
	var d Decision
	tb.Decide(r, &d)
	host, _ := splitHostPort(r.Host)
	vh := tb.lookup(host)
	if vh == nil {
		if d.Outcome != OutcomeNotFound || d.RouteIndex != RouteNone {
			t.Fatalf("no vhost but decision %+v", d)
		}
		return
	}
	path, query, _ := splitURL(r.URL)
	want := linearMatch(vh, &matcher{r: r, path: path, query: query})
	wantIdx := RouteNone
	if want != nil {
		wantIdx = want.index
	}
	if d.RouteIndex != wantIdx {
		t.Fatalf("request %+v: indexed route %d, linear route %d", r, d.RouteIndex, wantIdx)
	}
	// Explain walks the same order and must name the same winner.
	x := tb.Explain(r)
	explIdx := RouteNone
	if len(x.Matched) > 0 {
		explIdx = x.Matched[0].Index
	}
	if explIdx != wantIdx || x.Vhost != d.Vhost {
		t.Fatalf("request %+v: Explain says vhost %q route %d, Decide vhost %q route %d", r, x.Vhost, explIdx, d.Vhost, wantIdx)
	}
	if d.Outcome == OutcomeBackend {
		if _, _, ok := d.Pick(uint64(len(r.URL)) * 0x9e3779b97f4a7c15); !ok {
			t.Fatalf("backend outcome without a pick: %+v", d)
		}
	}
	_ = d.Location()
}

// fuzzTable is the fixed table FuzzDecide routes against: every path
// class, overlapping prefixes, trailing slashes, headers, query, methods,
// listeners, filters, redirects and defaults. It is a file so that the
// seeds of the shim's C fuzz targets are decided on it too
// (protocol/cshim_seeds_test.go).
var fuzzTable = func() string {
	b, err := os.ReadFile("testdata/fuzz_table.json")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func FuzzDecide(f *testing.F) {
	tb, err := Parse("ghost.json", []byte(fuzzTable))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct{ host, method, url, hv, sock string }{
		{"a.example.com", "GET", "/a/b", "1", ""},
		{"A.EXAMPLE.COM:80", "POST", "/a/b?q=1", "2", "s1"},
		{"a.example.com.", "HEAD", "/a/b/c/d", "v1", "s1"},
		{"b.example.com", "GET", "/r/x?y", "", ""},
		{"[::1]:8080", "GET", "/x/y", "", ""},
		{"a.example.com", "GET", "/a//x", "", ""},
		{"a.example.com", "GET", "?a=b", "", ""},
		{"a.example.com", "PUT", "/w/abc", "", ""},
		{"a.example.com", "GET", "/zzz9", "v", ""},
	} {
		f.Add(s.host, s.method, s.url, s.hv, s.sock, false)
	}
	f.Fuzz(func(t *testing.T, host, method, url, hv, sock string, https bool) {
		r := &Request{Host: host, Method: method, URL: url, Socket: sock, HTTPS: https,
			Headers: []Header{{"X", hv}, {"y", hv}, {"x", strings.ToUpper(hv)}}}
		checkAgainstLinear(t, tb, r)
		r.Headers = r.Headers[:1]
		checkAgainstLinear(t, tb, r)
		r.Host = "a.example.com"
		checkAgainstLinear(t, tb, r)
	})
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(fuzzTable))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`{"version":2,"vhosts":{"h":{"routes":[{"path_match":{"type":"RegularExpression","value":"(a+)+$"}}]}}}`))
	f.Add([]byte(`{"version":2,"vhosts":{"h":{"default_backends":[{"weight":1,"backends":[{"address":"::1","port":1}]}]}}}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":2,"vhosts":{"*.A.b":{"routes":[{"path_match":{"value":"/"},"filters":{"url_rewrite":{"replace_prefix_match":"/"}}}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = UnknownKeys(data)
		tb, err := Parse("ghost.json", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ghost.json: ") {
				t.Fatalf("error without file name: %v", err)
			}
			return
		}
		// A table that parses must decide without panicking, for every
		// vhost and a few paths.
		paths := []string{"/", "", "/a", "/a/b?c=d&e", "/x/y/", "?q", "//"}
		for _, k := range append(tb.Vhosts(), "unknown.example", "") {
			host := strings.Replace(k, "*", "w", 1)
			for _, p := range paths {
				for _, m := range []string{"GET", "HEAD"} {
					checkAgainstLinear(t, tb, &Request{Host: host, Method: m, URL: p,
						Headers: []Header{{"x-a", "1"}, {"X-A", "2"}}})
				}
			}
		}
	})
}

// TestIndexMatchesLinear builds random vhosts, small (linear scan) and
// large (hash maps), and checks the indexed matcher against the linear
// reference on random requests.
func TestIndexMatchesLinear(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	segs := []string{"a", "b", "ab", "c", "", "x", "n1", "n2", "n3", "n4", "n5", "n6"}
	randPath := func() string {
		n := rng.IntN(5)
		p := ""
		for i := 0; i < n; i++ {
			p += "/" + segs[rng.IntN(len(segs))]
		}
		if p == "" || rng.IntN(5) == 0 {
			p += "/"
		}
		return p
	}
	sawExactMap, sawPrefixMap := false, false
	for iter := 0; iter < 60; iter++ {
		n := 5 + rng.IntN(20)
		if iter%2 == 1 {
			n = 250 + rng.IntN(150) // forces the map indexes
		}
		var routes []string
		for j := 0; j < n; j++ {
			var parts []string
			switch rng.IntN(5) {
			case 0:
				parts = append(parts, fmt.Sprintf(`"path_match":{"type":"Exact","value":%q}`, randPath()))
			case 1, 2:
				parts = append(parts, fmt.Sprintf(`"path_match":{"type":"PathPrefix","value":%q}`, randPath()))
			case 3:
				parts = append(parts, fmt.Sprintf(`"path_match":{"type":"RegularExpression","value":%q}`, "^"+randPath()))
			}
			if rng.IntN(3) == 0 {
				parts = append(parts, `"method":"GET"`)
			}
			if rng.IntN(3) == 0 {
				parts = append(parts, fmt.Sprintf(`"headers":[{"name":"h","value":"%d"}]`, rng.IntN(2)))
			}
			if rng.IntN(4) == 0 {
				parts = append(parts, fmt.Sprintf(`"query_params":[{"name":"q","value":"%d"}]`, rng.IntN(2)))
			}
			if rng.IntN(4) == 0 {
				parts = append(parts, fmt.Sprintf(`"priority":%d`, rng.IntN(3)))
			}
			parts = append(parts, be(j%250))
			routes = append(routes, "{"+strings.Join(parts, ",")+"}")
		}
		tb := mustParse(t, file(map[string][]string{"h": routes}))
		vh := getHost(tb.exact, "h")
		if vh.exactM != nil {
			sawExactMap = true
		}
		if vh.prefM != nil {
			sawPrefixMap = true
		}
		if iter%2 == 0 && (vh.exactM != nil || vh.prefM != nil) {
			t.Fatalf("iter %d: small vhost uses maps", iter)
		}
		for k := 0; k < 300; k++ {
			r := req("h", []string{"GET", "POST"}[rng.IntN(2)], randPath()+fmt.Sprintf("?q=%d", rng.IntN(2)), "h", fmt.Sprint(rng.IntN(2)))
			checkAgainstLinear(t, tb, r)
		}
	}
	if !sawExactMap || !sawPrefixMap {
		t.Errorf("large vhosts did not exercise the map indexes: %v %v", sawExactMap, sawPrefixMap)
	}
}

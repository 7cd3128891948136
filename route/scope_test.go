package route

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The scope oracle: for random tables and paths, every path that starts
// with a decision's scope decides exactly like the original (same route,
// filters and path edit, the edited path recomputed), and no shorter
// declared length would do (some path under it matches other routes).

// scopePieces build keys and paths: short, overlapping, with slashes in
// every position, so that paths share long prefixes with keys.
var scopePieces = []string{"/", "a", "b", "/a", "/b", "ab", "//", "-1"}

func randPath(rng *rand.Rand, max int) string {
	var b strings.Builder
	b.WriteByte('/')
	for n := rng.IntN(max + 1); n > 0; n-- {
		b.WriteString(scopePieces[rng.IntN(len(scopePieces))])
	}
	return b.String()
}

// randScopeTable makes a vhost "h" of Exact, PathPrefix and catch-all
// routes with method and header conditions, rewrites and redirects, and a
// RegularExpression route when regex is true.
func randScopeTable(rng *rand.Rand, regex bool) (string, []string) {
	var routes, keys []string
	n := 1 + rng.IntN(8)
	for i := 0; i < n; i++ {
		var parts []string
		p := randPath(rng, 3)
		switch k := rng.IntN(10); {
		case k < 3:
			parts = append(parts, fmt.Sprintf(`"path_match":{"type":"Exact","value":%q}`, p))
			keys = append(keys, p)
		case k < 8:
			parts = append(parts, fmt.Sprintf(`"path_match":{"type":"PathPrefix","value":%q}`, p))
			keys = append(keys, p, strings.TrimSuffix(p, "/")+"/")
		case k < 9:
			parts = append(parts, `"path_match":{"type":"PathPrefix","value":"/"}`)
		}
		if rng.IntN(4) == 0 {
			parts = append(parts, `"method":"POST"`)
		}
		if rng.IntN(4) == 0 {
			parts = append(parts, fmt.Sprintf(`"headers":[{"name":"x","value":"%d"}]`, rng.IntN(2)))
		}
		exact := strings.Contains(strings.Join(parts, ""), `"Exact"`)
		switch f := rng.IntN(6); {
		case f == 0 && !exact:
			parts = append(parts, fmt.Sprintf(`"filters":{"url_rewrite":{"replace_prefix_match":%q}},%s`, randPath(rng, 2), be(i)))
		case f == 1:
			parts = append(parts, fmt.Sprintf(`"filters":{"url_rewrite":{"replace_full_path":%q,"hostname":"n.test"}},%s`, randPath(rng, 2), be(i)))
		case f == 2 && !exact:
			parts = append(parts, fmt.Sprintf(`"filters":{"request_redirect":{"replace_prefix_match":%q,"status_code":301}}`, randPath(rng, 2)))
		case f == 3:
			parts = append(parts, `"filters":{"request_redirect":{"hostname":"r.test"}}`)
		case f == 4:
			parts = append(parts, `"backends":[]`)
		default:
			parts = append(parts, be(i))
		}
		routes = append(routes, "{"+strings.Join(parts, ",")+"}")
	}
	if regex {
		routes = append(routes, fmt.Sprintf(`{"path_match":{"type":"RegularExpression","value":"^/a.*b$"},%s}`, be(99)))
	}
	doc := `{"version":2,"vhosts":{"h":{"routes":[` + strings.Join(routes, ",") + `]`
	if rng.IntN(2) == 0 {
		doc += `,"default_backends":[{"address":"10.9.9.9","port":80}]`
	}
	return doc + `}}}`, keys
}

// sameDecision compares two decisions for requests that differ only in
// their paths (pa, pb), path-derived values recomputed.
func sameDecision(a, b *Decision, pa, pb string) string {
	if a.Outcome != b.Outcome || a.Status != b.Status || a.RouteIndex != b.RouteIndex ||
		a.NewHost != b.NewHost || a.RequestHeaders != b.RequestHeaders || a.ResponseHeaders != b.ResponseHeaders ||
		a.PathEdit != b.PathEdit || len(a.Groups) != len(b.Groups) || (len(a.Groups) > 0 && &a.Groups[0] != &b.Groups[0]) {
		return fmt.Sprintf("route %d outcome %d vs route %d outcome %d", a.RouteIndex, a.Outcome, b.RouteIndex, b.Outcome)
	}
	if !slices.Equal(a.Deps.ScopeLens, b.Deps.ScopeLens) {
		return "deps differ"
	}
	if e := a.PathEdit; e != nil {
		if a.Outcome == OutcomeBackend && (a.NewPath != e.Apply(pa) || b.NewPath != e.Apply(pb)) {
			return fmt.Sprintf("rewrite %q/%q is not the edit %+v", a.NewPath, b.NewPath, *e)
		}
		if a.Outcome == OutcomeRedirect {
			base, ok := strings.CutSuffix(a.RedirectBase, e.Apply(pa))
			if !ok || base+e.Apply(pb) != b.RedirectBase {
				return fmt.Sprintf("redirect %q/%q is not the edit %+v", a.RedirectBase, b.RedirectBase, *e)
			}
		}
	} else if a.NewPath != b.NewPath || a.RedirectBase != b.RedirectBase {
		return fmt.Sprintf("path %q/%q, location %q/%q without an edit", a.NewPath, b.NewPath, a.RedirectBase, b.RedirectBase)
	}
	return ""
}

// signature says which routes' path conditions a path meets.
func signature(vh *vhost, path string) string {
	var b strings.Builder
	for _, rt := range vh.ordered {
		if rt.pathMatches(path) {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	return b.String()
}

// underScope returns paths that start with s: s itself, every key that
// starts with s, those keys continued, and random continuations.
func underScope(rng *rand.Rand, s string, keys []string) []string {
	out := []string{s, s + "\x00", s + "/", s + "x/y"}
	for _, k := range keys {
		if strings.HasPrefix(k, s) {
			out = append(out, k, k+"/", k+"a", k+"/b")
		}
	}
	for i := 0; i < 6; i++ {
		out = append(out, s+randPath(rng, 3)[1:], s+randPath(rng, 3))
	}
	return out
}

func checkScopes(t *testing.T, rng *rand.Rand, doc string, keys []string, paths int) (scoped int) {
	t.Helper()
	tb := mustParse(t, doc)
	vh := tb.lookup("h")
	for i := 0; i < paths; i++ {
		p := randPath(rng, 5)
		if i%4 == 0 && len(keys) > 0 { // a key, or close to one
			p = keys[rng.IntN(len(keys))] + []string{"", "a", "/", "-1", "/x"}[rng.IntN(5)]
		}
		method := []string{"GET", "POST"}[rng.IntN(2)]
		x := []string{"0", "1", ""}[rng.IntN(3)]
		r := req("h:8080", method, p+"?q=1", "x", x)
		var d Decision
		tb.Decide(r, &d)
		if d.Scope == ScopeExact {
			continue
		}
		if !slices.Contains(d.Deps.ScopeLens, d.Scope) || d.Scope > len(p) {
			t.Fatalf("%s\npath %q: scope %d not a declared length %v", doc, p, d.Scope, d.Deps.ScopeLens)
		}
		scoped++
		s := p[:d.Scope]
		for _, q := range underScope(rng, s, keys) {
			r2 := req("h:8080", method, q+"?q=1", "x", x)
			var d2 Decision
			tb.Decide(r2, &d2)
			qp, _, _ := splitURL(q) // "" is "/"
			if why := sameDecision(&d, &d2, p, qp); why != "" {
				t.Fatalf("%s\npath %q has scope %q, but %q decides otherwise: %s", doc, p, s, q, why)
			}
		}
		// Minimal among the declared lengths: under the next shorter one,
		// some path meets other path conditions.
		j := slices.Index(d.Deps.ScopeLens, d.Scope)
		if j == 0 {
			continue
		}
		s2 := p[:d.Deps.ScopeLens[j-1]]
		sig, differs := signature(vh, p), false
		for _, q := range underScope(rng, s2, keys) {
			if signature(vh, q) != sig {
				differs = true
				break
			}
		}
		if !differs {
			t.Fatalf("%s\npath %q: scope %q, but every path under the shorter %q meets the same path conditions", doc, p, s, s2)
		}
	}
	return scoped
}

func TestScopeOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	scoped := 0
	for i := 0; i < 400; i++ {
		doc, keys := randScopeTable(rng, false)
		scoped += checkScopes(t, rng, doc, keys, 60)
	}
	if scoped < 5000 {
		t.Errorf("only %d scoped decisions in 24000: the oracle tests too little", scoped)
	}
}

func TestScopeRegexWholePath(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 2))
	for i := 0; i < 50; i++ {
		doc, _ := randScopeTable(rng, true)
		tb := mustParse(t, doc)
		d := decide(tb, req("h", "GET", randPath(rng, 4)))
		if d.Scope != ScopeExact || d.Deps.ScopeLens != nil {
			t.Fatalf("%s\nregex vhost: scope %d, lens %v", doc, d.Scope, d.Deps.ScopeLens)
		}
	}
}

// FuzzScope checks the oracle on a fixed table for any path.
func FuzzScope(f *testing.F) {
	doc := file(map[string][]string{"h": {
		`{"path_match":{"type":"Exact","value":"/a/b"},` + be(1) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/a"},` + be(2) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/a/b/c"},"headers":[{"name":"x","value":"1"}],` + be(3) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/ab/"},"filters":{"url_rewrite":{"replace_prefix_match":"/n"}},` + be(4) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/r"},"filters":{"request_redirect":{"replace_prefix_match":"/"}}}`,
		`{"filters":{"request_redirect":{"hostname":"o.test"}}}`,
	}})
	keys := []string{"/a/b", "/a", "/a/", "/a/b/c", "/a/b/c/", "/ab/", "/r", "/r/"}
	tb, err := Parse("ghost.json", []byte(doc))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range []string{"/", "/a", "/a/", "/a/b", "/a/b/", "/a/bc", "/a/b/c/d", "/ab", "/ab/x", "/r/y", "/zz", "*", ""} {
		f.Add(p, "1", "tail")
	}
	f.Fuzz(func(t *testing.T, p, x, tail string) {
		if strings.ContainsAny(p, "?") {
			return
		}
		r := req("h", "GET", p, "x", x)
		var d Decision
		tb.Decide(r, &d)
		if d.Scope == ScopeExact {
			return
		}
		path, _, _ := splitURL(p)
		if d.Scope > len(path) || !slices.Contains(d.Deps.ScopeLens, d.Scope) {
			t.Fatalf("path %q: scope %d, lens %v", path, d.Scope, d.Deps.ScopeLens)
		}
		q := path[:d.Scope] + strings.ReplaceAll(tail, "?", "")
		// a few paths per input (a fuzz execution must stay short)
		cands := []string{q, path[:d.Scope], path[:d.Scope] + "\x00"}
		for _, k := range keys {
			if strings.HasPrefix(k, path[:d.Scope]) {
				cands = append(cands, k, k+"a")
			}
		}
		for _, q := range cands {
			var d2 Decision
			tb.Decide(req("h", "GET", q, "x", x), &d2)
			qp, _, _ := splitURL(q)
			if why := sameDecision(&d, &d2, path, qp); why != "" {
				t.Fatalf("path %q has scope %q, but %q decides otherwise: %s", path, path[:d.Scope], q, why)
			}
		}
	})
}

func TestScopeExamples(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{"h": {
		`{"path_match":{"type":"PathPrefix","value":"/api"},` + be(1) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/api/v2/"},` + be(2) + `}`,
		`{"path_match":{"type":"Exact","value":"/api/v2/admin"},` + be(3) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/static"},"filters":{"url_rewrite":{"replace_prefix_match":"/s"}},` + be(4) + `}`,
	}}))
	for _, c := range []struct {
		path  string
		scope string // "" = ScopeExact
	}{
		{"/api/items/1", "/api/"},       // under /api, away from /api/v2/
		{"/api/v2/items-9", "/api/v2/"}, // under /api/v2/
		{"/api/v2/adm", ""},             // a prefix of the Exact value
		{"/api/v2/admin", ""},           // the Exact value
		{"/api/v2/admin/x", "/api/v2/"},
		{"/api", ""}, // equals the key: /api-x would not match
		{"/static/css/a.css", "/static/"},
		{"/other/page-123", "/"},
	} {
		d := decide(tb, req("h", "GET", c.path))
		got := ""
		if d.Scope != ScopeExact {
			got = c.path[:d.Scope]
		}
		if got != c.scope && !(c.scope != "" && got != "" && strings.HasPrefix(got, c.scope)) {
			t.Errorf("%s: scope %q, want %q (lens %v)", c.path, got, c.scope, d.Deps.ScopeLens)
		}
	}
	d := decide(tb, req("h", "GET", "/static/css/a.css?v=1"))
	if d.PathEdit == nil || *d.PathEdit != (PathEdit{Cut: 7, With: "/s"}) || d.NewPath != "/s/css/a.css" {
		t.Errorf("rewrite: edit %+v, path %q", d.PathEdit, d.NewPath)
	}
}

package route

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The exact shape the varnish/gateway v0.23 chaperone writes (its
// CachePolicy: grace_seconds and keep_seconds are always written, the
// TTLs and lists only when set).
const chaperonePolicy = `"cache_policy":{"default_ttl_seconds":300,"grace_seconds":30,"keep_seconds":3600,
	"cache_key":{"headers":["Accept-Language"],"query_params_include":["q","page"]},
	"bypass_headers":[{"name":"Authorization"},{"name":"cookie","value_regex":"session="}]}`

func TestCachePolicyCompiles(t *testing.T) {
	one := func(r string) string { return file(map[string][]string{"api.example.com": {r}}) }
	tb := mustParse(t, one(`{`+be(1)+`,`+chaperonePolicy+`}`))
	d := decide(tb, req("api.example.com", "GET", "/x"))
	want := &CachePolicy{TTL: 300, Grace: 30, Keep: 3600, KeyHeaders: []string{"accept-language"},
		QueryInclude: []string{"page", "q"}}
	got := *d.Policy
	got.bypass = nil
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("policy %+v, want %+v", got, *want)
	}
	if d.Cache != CacheLookup {
		t.Fatalf("cache %v, want lookup", d.Cache)
	}
	// What the cache decision reads joins the vhost's deps.
	if !d.Deps.Method || d.Deps.Headers != nil || !reflect.DeepEqual(d.Deps.CacheHeaders, []string{"authorization", "cookie"}) {
		t.Fatalf("deps %+v", d.Deps)
	}
	f := mustParse(t, one(`{`+be(1)+`,"cache_policy":{"forced_ttl_seconds":0}}`))
	d = decide(f, req("api.example.com", "GET", "/x"))
	if p := d.Policy; p.TTL != 0 || !p.Forced || p.Grace != -1 || p.Keep != -1 {
		t.Fatalf("forced policy %+v", *p)
	}
}

func TestCacheModes(t *testing.T) {
	doc := file(map[string][]string{
		"a.example": {
			`{"path_match":{"type":"PathPrefix","value":"/c"},` + be(1) + `,"cache_policy":{"default_ttl_seconds":5,
				"bypass_headers":[{"name":"X-Preview"},{"name":"Cookie","value_regex":"(^|; )session="},{"name":"x-multi","value_regex":"^a,b$"}]}}`,
			`{"path_match":{"type":"PathPrefix","value":"/plain"},` + be(2) + `}`,
			`{"path_match":{"type":"PathPrefix","value":"/r"},"filters":{"request_redirect":{"hostname":"b.example"}},"cache_policy":{}}`,
		},
	})
	cases := []struct {
		name   string
		r      *Request
		origin CacheMode // under -cache-default origin
		pass   CacheMode // under -cache-default pass
	}{
		{"policy, nothing matched", req("a.example", "GET", "/c/x"), CacheLookup, CacheLookup},
		{"policy, HEAD", req("a.example", "HEAD", "/c/x"), CacheLookup, CacheLookup},
		{"policy, POST", req("a.example", "POST", "/c/x"), CachePass, CachePass},
		{"policy, Authorization", req("a.example", "GET", "/c/x", "authorization", "Bearer x"), CachePass, CachePass},
		{"bypass by presence (any case, empty value)", req("a.example", "GET", "/c/x", "x-PREVIEW", ""), CachePass, CachePass},
		{"bypass regex matches", req("a.example", "GET", "/c/x", "Cookie", "a=1; session=2"), CachePass, CachePass},
		{"bypass regex does not match", req("a.example", "GET", "/c/x", "Cookie", "a=1; xsession=2"), CacheLookup, CacheLookup},
		{"bypass regex on the joined value", req("a.example", "GET", "/c/x", "x-multi", "a", "X-Multi", "b"), CachePass, CachePass},
		{"bypass regex, one line of two", req("a.example", "GET", "/c/x", "x-multi", "a"), CacheLookup, CacheLookup},
		{"no policy", req("a.example", "GET", "/plain", "Cookie", "session=1"), CacheOrigin, CachePass},
		{"no route", req("a.example", "GET", "/none"), CacheOrigin, CachePass},
		{"no vhost", req("z.example", "GET", "/c"), CacheOrigin, CachePass},
		{"redirect with a policy", req("a.example", "GET", "/r"), CacheLookup, CacheLookup},
	}
	for _, pass := range []bool{false, true} {
		tb := mustParse(t, doc)
		tb.SetCacheDefault(pass)
		for _, c := range cases {
			want := c.origin
			if pass {
				want = c.pass
			}
			if got := decide(tb, c.r).Cache; got != want {
				t.Errorf("pass default %v: %s: %v, want %v", pass, c.name, got, want)
			}
		}
	}
}

func TestCachePolicyErrors(t *testing.T) {
	const V = `ghost.json: vhost "api.example.com" route 2: `
	pol := func(p string) string { return route0(`{` + be(1) + `,"cache_policy":` + p + `}`) }
	cases := []struct{ doc, want string }{
		{pol(`{"default_ttl_seconds":1,"forced_ttl_seconds":2}`), V + `cache_policy: default_ttl_seconds and forced_ttl_seconds are mutually exclusive (set one)`},
		{pol(`{"default_ttl_seconds":-1}`), V + `cache_policy.default_ttl_seconds: -1 is negative`},
		{pol(`{"forced_ttl_seconds":-5}`), V + `cache_policy.forced_ttl_seconds: -5 is negative`},
		{pol(`{"grace_seconds":-1}`), V + `cache_policy.grace_seconds: -1 is negative`},
		{pol(`{"keep_seconds":-1}`), V + `cache_policy.keep_seconds: -1 is negative`},
		{pol(`{"keep_seconds":315360001}`), V + `cache_policy.keep_seconds: 315360001 is more than 315360000 (ten years)`},
		{pol(`{"grace_seconds":1.5}`), V + `cache_policy.grace_seconds: number 1.5 is not an integer (line 1 column 151)`},
		{pol(`{"default_ttl_seconds":"60"}`), V + `cache_policy.default_ttl_seconds: string is not an integer (line 1 column 157)`},
		{pol(`{"bypass_headers":[{"name":"cookie","value_regex":"("}]}`), V + `cache_policy.bypass_headers[0].value_regex "(" does not compile: missing closing ): ` + "`(`"},
		{pol(`{"bypass_headers":[{"value_regex":"x"}]}`), V + `cache_policy.bypass_headers[0].name is required`},
		{pol(`{"bypass_headers":[{"name":"a b"}]}`), V + `cache_policy.bypass_headers[0]: header name "a b" is not an RFC 7230 token`},
		{pol(`{"cache_key":{"headers":["ok","x:y"]}}`), V + `cache_policy.cache_key.headers[1]: header name "x:y" is not an RFC 7230 token`},
		{pol(`{"cache_key":{"query_params_include":["a"],"query_params_exclude":["b"]}}`), V + `cache_policy.cache_key: query_params_include and query_params_exclude are mutually exclusive (set one)`},
		{pol(`{"cache_key":{"query_params_exclude":["a=b"]}}`), V + `cache_policy.cache_key.query_params_exclude[0]: name "a=b" contains "&", "=", "#", "?" or white space`},
		{pol(`{"cache_key":{"query_params_include":[""]}}`), V + `cache_policy.cache_key.query_params_include[0]: name must be 1 to 1024 bytes`},
		{pol(`[]`), V + `cache_policy: array is not an object (line 1 column 134)`},
	}
	for _, c := range cases {
		_, err := Parse("ghost.json", []byte(c.doc))
		if err == nil || err.Error() != c.want {
			t.Errorf("%s\n got: %v\nwant: %s", c.doc, err, c.want)
		}
	}
}

func TestCachePolicyUnknownKeys(t *testing.T) {
	doc := route0(`{` + be(1) + `,"cache_policy":{"default_ttl_seconds":1,"ttl":5,"cache_key":{"cookies":["a"]},"bypass_headers":[{"name":"a","regex":"x"}]}}`)
	got := UnknownKeys([]byte(doc))
	want := []string{
		"vhosts.*.routes[].cache_policy.bypass_headers[].regex",
		"vhosts.*.routes[].cache_policy.cache_key.cookies",
		"vhosts.*.routes[].cache_policy.ttl",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("unknown keys %q, want %q", got, want)
	}
}

func TestCacheURL(t *testing.T) {
	inc := &CachePolicy{QueryInclude: []string{"page", "q"}}
	exc := &CachePolicy{QueryExclude: []string{"utm_medium", "utm_source"}}
	cases := []struct {
		p       *CachePolicy
		in, out string
	}{
		{nil, "/a?z=1&a=2", "/a?z=1&a=2"},
		{&CachePolicy{KeyHeaders: []string{"x"}}, "/a?z=1&a=2", "/a?z=1&a=2"},
		{inc, "/a", "/a"},
		{inc, "/a?", "/a"},
		{inc, "/a?utm_source=x", "/a"},
		{inc, "/a?q=1&utm_source=x&page=2", "/a?page=2&q=1"},
		{inc, "/a?page=2&q=1", "/a?page=2&q=1"},
		{inc, "/a?q=2&page=1&q=1", "/a?page=1&q=2&q=1"}, // repeats keep their order
		{inc, "/a?q&&page=", "/a?page=&q"},              // no "=": the whole text is the name
		{inc, "/a?Q=1&q%20=2", "/a"},                    // byte for byte, no decoding
		{exc, "/a?utm_source=x&b=1&utm_medium=y&a=2", "/a?a=2&b=1"},
		{exc, "/a?utm_source=x", "/a"},
		{exc, "/a?b=2&b=1&a", "/a?a&b=2&b=1"},
		{exc, "/a?x=1#frag", "/a?x=1#frag"},
	}
	for _, c := range cases {
		if got := CacheURL(c.p, c.in); got != c.out {
			t.Errorf("CacheURL(%+v, %q) = %q, want %q", c.p, c.in, got, c.out)
		}
	}
	// Oracle: the key never depends on parameter order across names, and
	// two URLs differing only in excluded parameters merge.
	a := CacheURL(exc, "/p?b=1&a=1&utm_source=1")
	b := CacheURL(exc, "/p?utm_medium=2&a=1&b=1")
	if a != b || !slices.Contains([]string{"/p?a=1&b=1"}, a) {
		t.Fatalf("not merged: %q %q", a, b)
	}
}

// CacheOriginOnly holds exactly for tables without any cache_policy under
// -cache-default origin, and then every decision's cache mode is
// CacheOrigin (the data plane skips the client-side decision on that
// word): an oracle over random tables and requests.
func TestCacheOriginOnly(t *testing.T) {
	plain := file(map[string][]string{"a.example": {`{"path_match":{"type":"PathPrefix","value":"/p"},` + be(1) + `}`}})
	withPolicy := file(map[string][]string{
		"a.example": {`{"path_match":{"type":"PathPrefix","value":"/p"},` + be(1) + `}`},
		"*":         {`{` + be(2) + `,"cache_policy":{}}`},
	})
	for _, c := range []struct {
		name string
		doc  string
		pass bool
		want bool
	}{
		{"no policy, default origin", plain, false, true},
		{"no policy, default pass", plain, true, false},
		{"a policy on the catch-all vhost", withPolicy, false, false},
		{"a policy, default pass", withPolicy, true, false},
	} {
		tb := mustParse(t, c.doc)
		tb.SetCacheDefault(c.pass)
		if got := tb.CacheOriginOnly(); got != c.want {
			t.Errorf("%s: CacheOriginOnly() = %v, want %v", c.name, got, c.want)
		}
	}

	rng := rand.New(rand.NewPCG(11, 16))
	methods := []string{"GET", "HEAD", "POST"}
	for i := 0; i < 300; i++ {
		doc, _ := randScopeTable(rng, rng.IntN(4) == 0)
		policy := rng.IntN(2) == 0
		if policy {
			doc = strings.Replace(doc, `{"path_match"`, `{"cache_policy":{"bypass_headers":[{"name":"x"}]},"path_match"`, 1)
		}
		tb := mustParse(t, doc)
		pass := rng.IntN(4) == 0
		tb.SetCacheDefault(pass)
		only := tb.CacheOriginOnly()
		if want := !pass && (!policy || !strings.Contains(doc, `"cache_policy"`)); only != want {
			t.Fatalf("table %d: CacheOriginOnly() = %v, want %v\n%s", i, only, want, doc)
		}
		if !only {
			continue
		}
		for j := 0; j < 50; j++ {
			r := req("h", methods[rng.IntN(len(methods))], randPath(rng, 4), "x", fmt.Sprint(rng.IntN(2)))
			if d := decide(tb, r); d.Cache != CacheOrigin {
				t.Fatalf("table %d: origin-only table decided %v for %s %s\n%s", i, d.Cache, r.Method, r.URL, doc)
			}
		}
	}
}

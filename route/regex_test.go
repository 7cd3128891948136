package route

import (
	"slices"
	"testing"
)

func TestRequiredLiterals(t *testing.T) {
	cases := []struct {
		re   string
		want []string
	}{
		{`[0-9]+/item7$`, []string{"/item7"}},
		{`^/api/v[0-9]+/users/[a-z]+$`, []string{"/users/", "/api/v"}},
		{`/a(bc)+d`, []string{"/a", "bc"}},
		{`(?i)/admin`, nil},
		{`/x(?i:ab)yz`, []string{"/x", "yz"}},
		{`foo|bar`, nil},
		{`(foo)?bar`, []string{"bar"}},
		{`a{2,}bb`, []string{"bb"}},
		{`x{0,3}yy`, []string{"yy"}},
		{`.*`, nil},
		{`/\x{FFFD}z`, nil},
		{`/one/two/three/four/five`, []string{"/one/two/three/four/five"}},
		{`a.b.c.d.ee.ff.ggg`, []string{"ggg", "ee", "ff"}},
	}
	for _, c := range cases {
		x, err := compileRegex(c.re)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(x.lits, c.want) {
			t.Errorf("%s: literals %q, want %q", c.re, x.lits, c.want)
		}
	}
}

// The prefilter never changes an answer: differential against the plain
// regexp.
func FuzzRegexPrefilter(f *testing.F) {
	for _, s := range [][2]string{
		{`[0-9]+/item7$`, "/1-999/item7"}, {`^/api/v[0-9]+/users/[a-z]+$`, "/api/v2/users/bob"},
		{`(?i)/ADMIN`, "/admin"}, {`/a(bc)+d`, "/abcbcd"}, {`/\x{FFFD}z`, "/\xffz"},
		{`é+x`, "ééx"}, {`(foo)?bar`, "xbar"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, in string) {
		x, err := compileRegex(pat)
		if err != nil {
			return
		}
		if got, want := x.MatchString(in), x.Regexp.MatchString(in); got != want {
			t.Fatalf("%q on %q: prefiltered %v, regexp %v (literals %q)", pat, in, got, want, x.lits)
		}
	})
}

func TestScanCost(t *testing.T) {
	tb, err := Parse("ghost.json", []byte(`{"version":2,"vhosts":{
		"rx.test":{"routes":[
			{"path_match":{"type":"RegularExpression","value":"[0-9]+/item1$"}},
			{"path_match":{"type":"RegularExpression","value":"[0-9]+/item2$"},"method":"POST"},
			{"path_match":{"type":"RegularExpression","value":"^/[a-z]+$"}},
			{"headers":[{"name":"X-Tenant","type":"RegularExpression","value":"^t[0-9]+$"}]},
			{"query_params":[{"name":"q","type":"RegularExpression","value":"^[a-z]+$"}]}]},
		"plain.test":{"routes":[{"path_match":{"type":"PathPrefix","value":"/"}}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		r    Request
		want int
	}{
		{Request{Host: "plain.test", Method: "GET", URL: "/abc"}, 0},
		{Request{Host: "none.test", Method: "GET", URL: "/abc"}, 0},
		// "^/[a-z]+$" has no literal: always runs; the /item ones only
		// when their literal is there (and the method fits)
		{Request{Host: "rx.test", Method: "GET", URL: "/abc"}, 4},
		{Request{Host: "rx.test", Method: "GET", URL: "/1/item1/item2"}, 2 * 14},
		{Request{Host: "rx.test", Method: "POST", URL: "/1/item1/item2"}, 3 * 14},
		{Request{Host: "rx.test", Method: "GET", URL: "/abc?q=xyz",
			Headers: []Header{{Name: "x-tenant", Value: "t1"}, {Name: "X-TENANT", Value: "t22"}, {Name: "other", Value: "zzzz"}}}, 4 + 3 + 4 + 5},
	}
	for _, c := range cases {
		if got := tb.ScanCost(&c.r); got != c.want {
			t.Errorf("%s %s %s: ScanCost %d, want %d", c.r.Method, c.r.Host, c.r.URL, got, c.want)
		}
	}
}

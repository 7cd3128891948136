package route

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// varnishHeaderTable is varnishd's header table (libvarnishapi-dev).
const varnishHeaderTable = "/usr/include/varnish/tbl/http_headers.h"

// TestFetchRewrittenIsVarnishs: fetchRewritten is the HTTPH_R_FETCH set
// of the installed varnishd's table (which the shim records from the
// same file, vmod-shim/hdr.c), plus Accept-Encoding and X-Varnish.
func TestFetchRewrittenIsVarnishs(t *testing.T) {
	src, err := os.ReadFile(varnishHeaderTable)
	if os.IsNotExist(err) {
		t.Skipf("%s not installed (make deps)", varnishHeaderTable)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"accept-encoding", "x-varnish"}
	re := regexp.MustCompile(`(?m)^H\("([^"]+)",\s*\w+,\s*([A-Z|0]+)\s*\)`)
	rows := re.FindAllStringSubmatch(string(src), -1)
	if len(rows) < 40 {
		t.Fatalf("%s: %d rows read, the format changed?", varnishHeaderTable, len(rows))
	}
	for _, m := range rows {
		if strings.Contains("|"+m[2]+"|", "|F|") {
			want = append(want, strings.ToLower(m[1]))
		}
	}
	var got []string
	for n := range fetchRewritten {
		got = append(got, n)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("fetchRewritten\n got %v\nwant %v (from %s)", got, want, varnishHeaderTable)
	}
}

func TestUncacheable(t *testing.T) {
	ops := &HeaderOps{
		Set:    []Header{{Name: "X-Set", Value: "1"}},
		Add:    []Header{{Name: "x-add", Value: "1"}},
		Remove: []string{"X-REMOVE"},
	}
	for _, c := range []struct {
		names []string
		ops   *HeaderOps
		want  string
	}{
		{nil, ops, ""},
		{[]string{"x-env"}, nil, ""},
		{[]string{"x-env"}, ops, ""},
		{[]string{"range"}, nil, "routes on range"},
		{[]string{"accept-encoding"}, nil, "routes on accept-encoding"},
		{[]string{"x-varnish"}, nil, "routes on x-varnish"},
		{[]string{"x-set"}, ops, "request filter changes routed header x-set"},
		{[]string{"x-add"}, ops, "request filter changes routed header x-add"},
		{[]string{"x-remove"}, ops, "request filter changes routed header x-remove"},
		{[]string{"x-env", "x-set", "if-none-match"}, ops, "request filter changes routed header x-set"},
		{[]string{"x-env", "if-none-match", "x-set"}, ops, "routes on if-none-match"},
	} {
		if got := uncacheable(c.names, c.ops); got != c.want {
			t.Errorf("uncacheable(%v) = %q, want %q", c.names, got, c.want)
		}
	}
}

// TestSynthetic: every decision carries its reason phrase and the body
// of a response the data plane makes itself; a fetch carries why it must
// not be cached, computed once per route.
func TestSynthetic(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{
		"h": {
			`{"path_match":{"type":"Exact","value":"/be"},` + be(1) + `}`,
			`{"path_match":{"type":"Exact","value":"/none"},"backends":[{"address":"10.0.0.1","port":80,"weight":0}]}`,
			`{"path_match":{"type":"Exact","value":"/r302"},"filters":{"request_redirect":{"hostname":"x.test"}}}`,
			`{"path_match":{"type":"Exact","value":"/r308"},"filters":{"request_redirect":{"hostname":"x.test","status_code":308}}}`,
			`{"path_match":{"type":"Exact","value":"/f"},"headers":[{"name":"X-Env","value":"a"}],"filters":{"request_header_modifier":{"set":[{"name":"x-env","value":"b"}]}},` + be(2) + `}`,
		},
		"r": {`{"path_match":{"type":"Exact","value":"/"},"headers":[{"name":"Range","value":"bytes=0-1"}],` + be(3) + `}`},
	}))
	for _, c := range []struct {
		host, url, reason, body, nc string
	}{
		{"h", "/be", "OK", "", ""},
		{"h", "/nothing", "no route", "no route\n", ""},
		{"nohost", "/", "no route", "no route\n", ""},
		{"h", "/none", "no backends available", "no backends available\n", ""},
		{"h", "/r302", "Found", "", ""},
		{"h", "/r308", "Permanent Redirect", "", ""},
		{"h", "/f", "OK", "", "request filter changes routed header x-env"},
		{"r", "/", "OK", "", "routes on range"},
	} {
		r := req(c.host, "GET", c.url)
		if c.url == "/f" {
			r = req(c.host, "GET", c.url, "X-Env", "a")
		}
		if c.host == "r" {
			r = req(c.host, "GET", c.url, "Range", "bytes=0-1")
		}
		d := decide(tb, r)
		if d.Reason != c.reason || d.Body != c.body || d.Uncacheable != c.nc {
			t.Errorf("%s%s: reason %q body %q uncacheable %q, want %q %q %q",
				c.host, c.url, d.Reason, d.Body, d.Uncacheable, c.reason, c.body, c.nc)
		}
	}
	// The other routes of a vhost with such a route are unaffected.
	if d := decide(tb, req("h", "GET", "/be")); d.Uncacheable != "" {
		t.Errorf("/be: uncacheable %q", d.Uncacheable)
	}
}

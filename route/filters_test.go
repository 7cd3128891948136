package route

import (
	"fmt"
	"slices"
	"testing"
)

// docs/routing.md, "ReplacePrefixMatch": every row of its table plus
// the pinned extra cases, for both URLRewrite and RequestRedirect.
var prefixTable = []struct {
	path, prefix, repl, want string
}{
	{"/foo/bar", "/foo", "/xyz", "/xyz/bar"},
	{"/foo/bar", "/foo", "/xyz/", "/xyz/bar"},
	{"/foo/bar", "/foo/", "/xyz", "/xyz/bar"},
	{"/foo/bar", "/foo/", "/xyz/", "/xyz/bar"},
	{"/foo", "/foo", "/xyz", "/xyz"},
	{"/foo/", "/foo", "/xyz", "/xyz/"},
	{"/foo/bar", "/foo", "", "/bar"},
	{"/foo/", "/foo", "", "/"},
	{"/foo", "/foo", "", "/"},
	{"/foo/", "/foo", "/", "/"},
	{"/foo", "/foo", "/", "/"},
	// Pinned beyond the spec table.
	{"/foo", "/foo/", "/xyz", "/xyz"},
	{"/foo/bar", "/", "/xyz", "/xyz/foo/bar"},
	{"/foo/bar", "", "/xyz", "/xyz/foo/bar"}, // "" = no path_match
	{"/", "/", "/xyz", "/xyz/"},
	{"/", "", "/xyz", "/xyz/"},
	{"/", "/", "", "/"},
	{"/foo/bar/baz", "/foo/bar", "/x/y", "/x/y/baz"},
}

func prefixRoute(prefix, filter string) string {
	pm := ""
	if prefix != "" {
		pm = fmt.Sprintf(`"path_match":{"type":"PathPrefix","value":%q},`, prefix)
	}
	return fmt.Sprintf(`{%s"filters":{%s},%s}`, pm, filter, be(1))
}

func TestReplacePrefixMatchRewrite(t *testing.T) {
	for _, c := range prefixTable {
		tb := mustParse(t, file(map[string][]string{"h": {prefixRoute(c.prefix,
			fmt.Sprintf(`"url_rewrite":{"path_type":"ReplacePrefixMatch","replace_prefix_match":%q}`, c.repl))}}))
		for _, q := range []string{"", "?k=v&x"} {
			d := decide(tb, req("h", "GET", c.path+q))
			if d.Outcome != OutcomeBackend || d.NewPath != c.want {
				t.Errorf("rewrite %s under %q → %q: got %q (%v)", c.path+q, c.prefix, c.repl, d.NewPath, d.Outcome)
			}
		}
	}
}

func TestReplacePrefixMatchRedirect(t *testing.T) {
	for _, c := range prefixTable {
		tb := mustParse(t, file(map[string][]string{"h": {prefixRoute(c.prefix,
			fmt.Sprintf(`"request_redirect":{"path_type":"ReplacePrefixMatch","replace_prefix_match":%q}`, c.repl))}}))
		d := decide(tb, req("h", "GET", c.path+"?k=v"))
		if want := "http://h" + c.want + "?k=v"; d.Location() != want || d.RedirectBase != "http://h"+c.want || d.Query != "?k=v" {
			t.Errorf("redirect %s under %q → %q: got %q, want %q", c.path, c.prefix, c.repl, d.Location(), want)
		}
	}
}

func TestRewrite(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{"h": {
		`{"path_match":{"type":"Exact","value":"/full"},"filters":{"url_rewrite":{"path_type":"ReplaceFullPath","replace_full_path":"/new/p"}},` + be(1) + `}`,
		`{"path_match":{"type":"Exact","value":"/host"},"filters":{"url_rewrite":{"hostname":"Backend.Internal"}},` + be(1) + `}`,
		`{"path_match":{"type":"PathPrefix","value":"/both"},"filters":{"url_rewrite":{"hostname":"b","path_type":"ReplacePrefixMatch","replace_prefix_match":"/x"}},` + be(1) + `}`,
		`{"path_match":{"type":"Exact","value":"/infer"},"filters":{"url_rewrite":{"replace_full_path":"/inferred"}},` + be(1) + `}`,
		`{"path_match":{"type":"Exact","value":"/hdrs"},"filters":{
			"request_header_modifier":{"set":[{"name":"X-S","value":"1"}],"add":[{"name":"X-A","value":"2"}],"remove":["X-R"]},
			"response_header_modifier":{"add":[{"name":"Set-Cookie","value":"a=b"}]}},` + be(1) + `}`,
		`{"path_match":{"type":"Exact","value":"/emptyops"},"filters":{"request_header_modifier":{"set":[],"add":null},"url_rewrite":{}},` + be(1) + `}`,
	}}))
	d := decide(tb, req("h:8080", "GET", "/full?q=1"))
	if d.NewPath != "/new/p" || d.NewHost != "" {
		t.Errorf("full: %+v", d)
	}
	d = decide(tb, req("h", "GET", "/host"))
	if d.NewHost != "Backend.Internal" || d.NewPath != "" {
		t.Errorf("host: %+v", d)
	}
	d = decide(tb, req("h", "GET", "/both/y"))
	if d.NewHost != "b" || d.NewPath != "/x/y" {
		t.Errorf("both: %+v", d)
	}
	d = decide(tb, req("h", "GET", "/infer"))
	if d.NewPath != "/inferred" {
		t.Errorf("infer: %+v", d)
	}
	d = decide(tb, req("h", "GET", "/hdrs"))
	rq, rs := d.RequestHeaders, d.ResponseHeaders
	if rq == nil || !slices.Equal(rq.Set, []Header{{"X-S", "1"}}) || !slices.Equal(rq.Add, []Header{{"X-A", "2"}}) || !slices.Equal(rq.Remove, []string{"X-R"}) {
		t.Errorf("request ops: %+v", rq)
	}
	if rs == nil || !slices.Equal(rs.Add, []Header{{"Set-Cookie", "a=b"}}) || rs.Set != nil || rs.Remove != nil {
		t.Errorf("response ops: %+v", rs)
	}
	d = decide(tb, req("h", "GET", "/emptyops"))
	if d.RequestHeaders != nil || d.ResponseHeaders != nil || d.NewHost != "" || d.NewPath != "" {
		t.Errorf("empty ops should be nil: %+v", d)
	}
}

// Redirect scheme, host, port and path (docs/routing.md, "Redirects").
func TestRedirect(t *testing.T) {
	cases := []struct {
		filter string
		host   string
		https  bool
		url    string
		want   string
		status int
	}{
		// scheme: filter, else request's.
		{`{}`, "h", false, "/p", "http://h/p", 302},
		{`{}`, "h", true, "/p", "https://h/p", 302},
		{`{"scheme":"https"}`, "h", false, "/p", "https://h/p", 302},
		{`{"scheme":"http"}`, "h", true, "/p", "http://h/p", 302},
		// host: filter hostname, else request host without port.
		{`{"hostname":"new.example"}`, "h:8080", false, "/p", "http://new.example:8080/p", 302},
		{`{}`, "H.Example.COM:8080", false, "/p", "http://H.Example.COM:8080/p", 302},
		{`{}`, "[::1]:8080", false, "/p", "http://[::1]:8080/p", 302},
		{`{}`, "[::1]", true, "/p", "https://[::1]/p", 302},
		// port: filter port.
		{`{"port":8443}`, "h", false, "/p", "http://h:8443/p", 302},
		{`{"scheme":"https","port":8443}`, "h:9000", false, "/p", "https://h:8443/p", 302},
		{`{"scheme":"https","port":443}`, "h:9000", false, "/p", "https://h/p", 302},
		{`{"scheme":"http","port":443}`, "h", false, "/p", "http://h:443/p", 302},
		{`{"port":80}`, "h", true, "/p", "https://h:80/p", 302},
		// port: filter scheme → its default port, even when unchanged.
		{`{"scheme":"https"}`, "h:8443", true, "/p", "https://h/p", 302},
		{`{"scheme":"http"}`, "h:8080", false, "/p", "http://h/p", 302},
		{`{"scheme":"https"}`, "h:8080", false, "/p", "https://h/p", 302},
		// port: else the Host header's port, else the scheme's default.
		{`{"hostname":"o"}`, "h:8080", false, "/p", "http://o:8080/p", 302},
		{`{"hostname":"o"}`, "h:80", false, "/p", "http://o/p", 302},
		{`{"hostname":"o"}`, "h:443", false, "/p", "http://o:443/p", 302},
		{`{"hostname":"o"}`, "h:443", true, "/p", "https://o/p", 302},
		{`{"hostname":"o"}`, "h:80", true, "/p", "https://o:80/p", 302},
		{`{"hostname":"o"}`, "h", true, "/p", "https://o/p", 302},
		{`{"hostname":"o"}`, "h:", false, "/p", "http://o/p", 302},
		{`{"hostname":"o"}`, "h:abc", false, "/p", "http://o/p", 302},
		{`{"hostname":"o"}`, "h:99999", false, "/p", "http://o/p", 302},
		// path and query.
		{`{"path_type":"ReplaceFullPath","replace_full_path":"/new"}`, "h", false, "/old/p?foo=bar", "http://h/new?foo=bar", 302},
		{`{"replace_full_path":"/new"}`, "h", false, "/old", "http://h/new", 302},
		{`{}`, "h", false, "/a?x=1&y", "http://h/a?x=1&y", 302},
		{`{}`, "h", false, "", "http://h/", 302},
		{`{}`, "h", false, "?q", "http://h/?q", 302},
		{`{}`, "h", false, "/a?", "http://h/a?", 302},
		// status.
		{`{"status_code":301}`, "h", false, "/", "http://h/", 301},
		{`{"status_code":303}`, "h", false, "/", "http://h/", 303},
		{`{"status_code":307}`, "h", false, "/", "http://h/", 307},
		{`{"status_code":308}`, "h", false, "/", "http://h/", 308},
		{`{"status_code":null}`, "h", false, "/", "http://h/", 302},
		// seed example with everything.
		{`{"scheme":"https","hostname":"new.example.com","port":443,"path_type":"ReplaceFullPath","replace_full_path":"/v2/api","status_code":301}`,
			"old.example.com:8080", false, "/v1/api?token=abc", "https://new.example.com/v2/api?token=abc", 301},
	}
	for _, c := range cases {
		tb := mustParse(t, file(map[string][]string{"*": {`{"filters":{"request_redirect":` + c.filter + `}}`}}))
		r := req(c.host, "GET", c.url)
		r.HTTPS = c.https
		d := decide(tb, r)
		if d.Outcome != OutcomeRedirect || d.Location() != c.want || d.Status != c.status {
			t.Errorf("%s host %q https=%v %s: got %d %q, want %d %q", c.filter, c.host, c.https, c.url, d.Status, d.Location(), c.status, c.want)
		}
		if d.Groups != nil || d.RequestHeaders != nil || d.NewPath != "" {
			t.Errorf("%s: redirect must not carry backend fields: %+v", c.filter, d)
		}
	}
}

// Redirect short-circuits everything; deps mark HTTPS only when the scheme
// comes from the request.
func TestRedirectPrecedenceAndDeps(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{
		"a": {`{"filters":{"request_redirect":{"hostname":"x"},"url_rewrite":{"hostname":"y"},"request_header_modifier":{"set":[{"name":"a","value":"b"}]},"response_header_modifier":{"set":[{"name":"a","value":"b"}]}},` + be(1) + `}`},
		"b": {`{"filters":{"request_redirect":{"scheme":"https"}}}`},
	}))
	d := decide(tb, req("a", "GET", "/"))
	if d.Outcome != OutcomeRedirect || d.NewHost != "" || d.RequestHeaders != nil || d.ResponseHeaders != nil || d.Groups != nil {
		t.Errorf("redirect with filters: %+v", d)
	}
	if !d.Deps.HTTPS {
		t.Errorf("vhost a: HTTPS dep expected")
	}
	if d := decide(tb, req("b", "GET", "/")); d.Deps.HTTPS {
		t.Errorf("vhost b: no HTTPS dep expected")
	}
}

func TestReplacePrefixFunc(t *testing.T) {
	for _, c := range prefixTable {
		p := c.prefix
		if len(p) > 0 && p[len(p)-1] == '/' {
			p = p[:len(p)-1]
		}
		if got := replacePrefix(c.path, p, c.repl); got != c.want {
			t.Errorf("replacePrefix(%q, %q, %q) = %q, want %q", c.path, p, c.repl, got, c.want)
		}
	}
}

package route

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// route0 wraps one route object into a file with vhost "api.example.com".
func route0(r string) string {
	return `{"version":2,"vhosts":{"api.example.com":{"routes":[{"backends":[]},{},` + r + `]}}}`
}

// A bad file is rejected as a whole with one precise message
// (docs/configuration.md, "General rules").
func TestValidationErrors(t *testing.T) {
	const V = `ghost.json: vhost "api.example.com" route 2: `
	cases := []struct{ doc, want string }{
		// version
		{`{"version":1}`, `ghost.json: unsupported version 1 (expected 2)`},
		{`{"version":3,"vhosts":{}}`, `ghost.json: unsupported version 3 (expected 2)`},
		{`{"vhosts":{}}`, `ghost.json: missing "version" (expected 2)`},
		{`{"version":null}`, `ghost.json: missing "version" (expected 2)`},
		{`{"version":"2"}`, `ghost.json: version: string is not an integer (line 1 column 12)`},
		// syntax
		{`{"version":2,`, `ghost.json: line 1 column 14: unexpected end of JSON input`},
		{"{\"version\":2,\n  \"vhosts\": {,}}", `ghost.json: line 2 column 14: invalid character ',' looking for beginning of object key string`},
		{``, `ghost.json: line 1 column 1: empty document`},
		{`[]`, `ghost.json: array is not an object (line 1 column 1)`},
		// type errors are placed too
		{route0(`{"backends":[{"address":"10.0.0.1","port":"80"}]}`), V + `backends[0].port: string is not an integer (line 1 column 114)`},
		{route0(`{"backends":[{"address":"10.0.0.1","port":80.5}]}`), V + `backends[0].port: number 80.5 is not an integer (line 1 column 114)`},
		{route0(`{"method":7}`), V + `method: number is not a string (line 1 column 82)`},
		// vhost keys
		{`{"version":2,"vhosts":{"":{}}}`, `ghost.json: vhost "": invalid vhost key: hostname is empty`},
		{`{"version":2,"vhosts":{"foo.*.com":{}}}`, `ghost.json: vhost "foo.*.com": invalid vhost key: a wildcard must be the whole first label ("*.example.com")`},
		{`{"version":2,"vhosts":{"*foo.com":{}}}`, `ghost.json: vhost "*foo.com": invalid vhost key: a wildcard must be the whole first label ("*.example.com")`},
		{`{"version":2,"vhosts":{"*.*.com":{}}}`, `ghost.json: vhost "*.*.com": invalid vhost key: only one leading wildcard label is allowed ("*.example.com")`},
		{`{"version":2,"vhosts":{"*.":{}}}`, `ghost.json: vhost "*.": invalid vhost key: wildcard needs a hostname suffix ("*.example.com")`},
		{`{"version":2,"vhosts":{"a.com:80":{}}}`, `ghost.json: vhost "a.com:80": invalid vhost key: hostname must not contain a port (or an unbracketed IPv6 address)`},
		{`{"version":2,"vhosts":{"a..com":{}}}`, `ghost.json: vhost "a..com": invalid vhost key: hostname has an empty label`},
		{`{"version":2,"vhosts":{"a b":{}}}`, `ghost.json: vhost "a b": invalid vhost key: hostname contains an invalid character ' '`},
		{`{"version":2,"vhosts":{"[zz]":{}}}`, `ghost.json: vhost "[zz]": invalid vhost key: hostname is not a valid bracketed IPv6 literal`},
		{`{"version":2,"vhosts":{"A.com":{},"a.com":{}}}`, `ghost.json: vhost "a.com": same host as vhost "A.com" (keys are case-insensitive)`},
		{`{"version":2,"vhosts":{"a.com":{},"a.com.":{}}}`, `ghost.json: vhost "a.com.": same host as vhost "a.com" (keys are case-insensitive)`},
		{`{"version":2,"vhosts":{"*.A.com":{},"*.a.com":{}}}`, `ghost.json: vhost "*.a.com": same host as vhost "*.A.com" (keys are case-insensitive)`},
		// paths
		{route0(`{"path_match":{"type":"PathPrefix","value":"api"}}`), V + `path "api" must start with "/"`},
		{route0(`{"path_match":{"type":"Exact","value":""}}`), V + `path "" must start with "/"`},
		{route0(`{"path_match":{"type":"Exact"}}`), V + `path_match.value is required for Exact`},
		{route0(`{"path_match":{"type":"Exact","value":"/a?b"}}`), V + `path "/a?b" contains an invalid character '?'`},
		{route0(`{"path_match":{"type":"Prefix","value":"/"}}`), V + `path_match.type "Prefix" must be Exact, PathPrefix or RegularExpression`},
		{route0(`{"path_match":{"type":"RegularExpression","value":"("}}`), V + `path_match regex "(" does not compile: missing closing ): ` + "`(`"},
		{route0(`{"path_match":{"type":"RegularExpression","value":"(?=x)"}}`), V + `path_match regex "(?=x)" does not compile: invalid or unsupported Perl syntax: ` + "`(?=`"},
		{route0(`{"path_match":{"type":"RegularExpression","value":"` + strings.Repeat("a", 1025) + `"}}`), V + `path_match regex is longer than 1024 bytes`},
		{route0(`{"path_match":{"type":"RegularExpression"}}`), V + `path_match.value is required for RegularExpression`},
		// method
		{route0(`{"method":"get"}`), V + `method "get" is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH`},
		{route0(`{"method":"PURGE"}`), V + `method "PURGE" is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH`},
		{route0(`{"method":""}`), V + `method "" is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH`},
		// headers
		{route0(`{"headers":[{"name":"x y","value":"1"}]}`), V + `headers[0]: header name "x y" is not an RFC 7230 token`},
		{route0(`{"headers":[{"name":"ok","value":"1"},{"name":"","value":"1"}]}`), V + `headers[1]: header name "" is not an RFC 7230 token`},
		{route0(`{"headers":[{"value":"1"}]}`), V + `headers[0].name is required`},
		// Varnish 7.1 handles header names up to 126 bytes (127 panics it)
		{route0(`{"headers":[{"name":"` + strings.Repeat("n", 127) + `","value":"1"}]}`), V + `headers[0]: header name is 127 bytes, longer than 126 (the most Varnish handles)`},
		{route0(`{"filters":{"request_header_modifier":{"set":[{"name":"` + strings.Repeat("n", 127) + `","value":"1"}]}}}`), V + `filters.request_header_modifier.set[0]: header name is 127 bytes, longer than 126 (the most Varnish handles)`},
		{route0(`{"filters":{"response_header_modifier":{"remove":["` + strings.Repeat("n", 300) + `"]}}}`), V + `filters.response_header_modifier.remove[0]: header name is 300 bytes, longer than 126 (the most Varnish handles)`},
		{`{"version":2,"vhosts":{"h":{"routes":[` + manyHeaderRoutes(65) + `]}}}`, `ghost.json: vhost "h": routes match on 65 distinct header names, more than 64`},
		{route0(`{"headers":[{"name":"a"}]}`), V + `headers[0].value is required`},
		{route0(`{"headers":[{"name":"a","value":"1","type":"Prefix"}]}`), V + `headers[0].type "Prefix" must be Exact or RegularExpression`},
		{route0(`{"headers":[{"name":"a","value":"[","type":"RegularExpression"}]}`), V + `headers[0] regex "[" does not compile: missing closing ]: ` + "`[`"},
		{route0(`{"headers":[{"name":"a","value":"` + strings.Repeat("v", 4097) + `"}]}`), V + `headers[0].value longer than 4096 bytes`},
		// query
		{route0(`{"query_params":[{"name":"","value":"1"}]}`), V + `query_params[0].name is required`},
		{route0(`{"query_params":[{"name":"a=b","value":"1"}]}`), V + `query_params[0].name "a=b" contains "&", "=" or "#"`},
		{route0(`{"query_params":[{"name":"a","value":"(","type":"RegularExpression"}]}`), V + `query_params[0] regex "(" does not compile: missing closing ): ` + "`(`"},
		// listeners
		{route0(`{"listeners":["a",""]}`), V + `listeners[1]: name must be 1 to 1024 bytes`},
		// backends
		{route0(`{"backends":[{"address":"foo.example","port":80}]}`), V + `backends[0]: address "foo.example" is not an IP literal`},
		{route0(`{"backends":[{"address":"[::1]","port":80}]}`), V + `backends[0]: address "[::1]" is not an IP literal`},
		{route0(`{"backends":[{"address":"fe80::1%eth0","port":80}]}`), V + `backends[0]: address "fe80::1%eth0" is not an IP literal`},
		{route0(`{"backends":[{"port":80}]}`), V + `backends[0].address is required`},
		{route0(`{"backends":[{"address":"::1"}]}`), V + `backends[0].port is required`},
		{route0(`{"backends":[{"address":"::1","port":null}]}`), V + `backends[0].port is required`},
		{route0(`{"backends":[{"address":"::1","port":0}]}`), V + `backends[0]: port 0 out of range 1-65535`},
		{route0(`{"backends":[{"address":"::1","port":65536}]}`), V + `backends[0]: port 65536 out of range 1-65535`},
		{route0(`{"backends":[{"address":"::1","port":1,"weight":-1}]}`), V + `backends[0]: weight -1 out of range 0-1000000`},
		{route0(`{"backends":[{"address":"::1","port":1,"weight":1000001}]}`), V + `backends[0]: weight 1000001 out of range 0-1000000`},
		{route0(`{"backend_groups":[{"weight":1000001,"backends":[]}]}`), V + `backend_groups[0]: weight 1000001 out of range 0-1000000`},
		{route0(`{"backend_groups":[{"backends":[{"address":"::1","port":1},{"address":"x","port":1}]}]}`), V + `backend_groups[0].backends[1]: address "x" is not an IP literal`},
		{route0(`{"backends":[{"address":"::1","port":1}],"backend_groups":[{"backends":[]}]}`), V + `backends and backend_groups are both set`},
		{`{"version":2,"vhosts":{"h":{"default_backends":[{"address":"1.2.3.4","port":1},{"address":"x","port":1}]}}}`, `ghost.json: vhost "h": default_backends[1]: address "x" is not an IP literal`},
		{`{"version":2,"vhosts":{"h":{"default_backends":[{"backends":[{"address":"x","port":1}]}]}}}`, `ghost.json: vhost "h": default_backends[0].backends[0]: address "x" is not an IP literal`},
		{`{"version":2,"vhosts":{"h":{"default_backends":[{"address":"1.2.3.4","port":1},{"backends":[]}]}}}`, `ghost.json: vhost "h": default_backends[1]: mixes endpoint entries and group entries`},
		// filters
		{route0(`{"filters":{"request_redirect":{"status_code":200}}}`), V + `filters.request_redirect.status_code 200 must be 301, 302, 303, 307 or 308`},
		{route0(`{"filters":{"request_redirect":{"scheme":"ftp"}}}`), V + `filters.request_redirect.scheme "ftp" must be http or https`},
		{route0(`{"filters":{"request_redirect":{"port":0}}}`), V + `filters.request_redirect.port 0 out of range 1-65535`},
		{route0(`{"filters":{"request_redirect":{"hostname":"a/b"}}}`), V + `filters.request_redirect.hostname "a/b" contains an invalid character '/'`},
		{route0(`{"filters":{"request_redirect":{"path_type":"ReplaceFullPath"}}}`), V + `filters.request_redirect.replace_full_path is required for ReplaceFullPath`},
		{route0(`{"filters":{"request_redirect":{"path_type":"ReplaceFullPath","replace_full_path":"x"}}}`), V + `filters.request_redirect.replace_full_path "x" must start with "/"`},
		{route0(`{"filters":{"request_redirect":{"path_type":"ReplaceFullPath","replace_full_path":"/a\r\nSet-Cookie: x"}}}`), V + `filters.request_redirect.replace_full_path "/a\r\nSet-Cookie: x" contains an invalid character '\r'`},
		{route0(`{"filters":{"request_redirect":{"replace_full_path":"/a","replace_prefix_match":"/b"}}}`), V + `filters.request_redirect.path_type is required when both replace_full_path and replace_prefix_match are set`},
		{route0(`{"filters":{"url_rewrite":{"path_type":"Replace"}}}`), V + `filters.url_rewrite.path_type "Replace" must be ReplaceFullPath or ReplacePrefixMatch`},
		{route0(`{"path_match":{"type":"Exact","value":"/a"},"filters":{"url_rewrite":{"path_type":"ReplacePrefixMatch","replace_prefix_match":"/b"}}}`), V + `filters.url_rewrite: ReplacePrefixMatch needs a PathPrefix path_match (or none)`},
		{route0(`{"path_match":{"type":"RegularExpression","value":"/a"},"filters":{"request_redirect":{"path_type":"ReplacePrefixMatch","replace_prefix_match":"/b"}}}`), V + `filters.request_redirect: ReplacePrefixMatch needs a PathPrefix path_match (or none)`},
		{route0(`{"filters":{"url_rewrite":{"hostname":""}}}`), V + `filters.url_rewrite.hostname "" is empty`},
		{route0(`{"filters":{"request_header_modifier":{"set":[{"name":"a:b","value":"1"}]}}}`), V + `filters.request_header_modifier.set[0]: header name "a:b" is not an RFC 7230 token`},
		{route0(`{"filters":{"request_header_modifier":{"add":[{"name":"a","value":"1\nb: 2"}]}}}`), V + `filters.request_header_modifier.add[0]: value "1\nb: 2" contains CR, LF or NUL`},
		{route0(`{"filters":{"response_header_modifier":{"remove":["ok","bad header"]}}}`), V + `filters.response_header_modifier.remove[1]: header name "bad header" is not an RFC 7230 token`},
		{route0(`{"filters":{"response_header_modifier":{"set":[{"name":"a"}]}}}`), V + `filters.response_header_modifier.set[0].value is required`},
	}
	parseErrors(t, cases)
}

// parseErrors checks that Parse refuses each doc with exactly its want.
func parseErrors(t *testing.T, cases []struct{ doc, want string }) {
	t.Helper()
	for _, c := range cases {
		_, err := Parse("ghost.json", []byte(c.doc))
		if err == nil {
			t.Errorf("no error for %s\nwant %s", c.doc, c.want)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("doc %s\n got: %s\nwant: %s", c.doc, err, c.want)
		}
	}
}

// manyHeaderRoutes returns n routes, each matching on its own header name.
func manyHeaderRoutes(n int) string {
	rs := make([]string, n)
	for i := range rs {
		rs[i] = fmt.Sprintf(`{"headers":[{"name":"x-h%d","value":"1"}]}`, i)
	}
	return strings.Join(rs, ",")
}

// The same bad file always gives the same message: vhosts in sorted order.
func TestValidationDeterministic(t *testing.T) {
	doc := `{"version":2,"vhosts":{
		"z.example":{"routes":[{"method":"bad"}]},
		"m.example":{"routes":[{},{"method":"bad"}]},
		"b.example":{"routes":[{},{},{"path_match":{"type":"Exact","value":"x"}}]},
		"q.example":{"routes":[{"method":"bad"}]}}}`
	want := `ghost.json: vhost "b.example" route 2: path "x" must start with "/"`
	for i := 0; i < 30; i++ {
		_, err := Parse("ghost.json", []byte(doc))
		if err == nil || err.Error() != want {
			t.Fatalf("got %v, want %s", err, want)
		}
	}
}

// What is accepted (docs/configuration.md).
func TestValidationAccepts(t *testing.T) {
	docs := []string{
		`{"version":2}`,
		`{"version":2,"vhosts":{},"default":{"backends":[{"address":"x"}]}}`, // top-level default ignored
		`{"version":2,"vhosts":{"h":{"routes":[{"unknown":1,"backends":[{"address":"10.0.0.1","port":1,"extra":true}]}],"future":{}}},"other":[]}`,
		// null == absent everywhere
		`{"version":2,"vhosts":{"h":{"routes":[{"path_match":null,"method":null,"headers":null,"query_params":null,"filters":null,"backends":null,"backend_groups":null,"priority":null,"rule_index":null,"listeners":null,"route_name":null}],"default_backends":null}}}`,
		`{"version":2,"vhosts":{"h":{"routes":[{"filters":{"request_header_modifier":null,"response_header_modifier":null,"url_rewrite":null,"request_redirect":null}}]}}}`,
		`{"version":2,"vhosts":{"h":{"routes":[{"filters":{"request_header_modifier":{"set":null,"add":null,"remove":null}}}]}}}`,
		`{"version":2,"vhosts":{"h":{"routes":[{"backends":[{"address":"10.0.0.1","port":1,"weight":null}]}]}}}`,
		`{"version":2,"vhosts":{"h":{"routes":[{"path_match":{"type":null,"value":"/x"}}]}}}`,
		`{"version":2,"vhosts":{"h":null}}`,
		// extremes
		`{"version":2,"vhosts":{"h":{"routes":[{"backends":[{"address":"::ffff:1.2.3.4","port":65535,"weight":1000000},{"address":"2001:db8::1","port":1,"weight":0}]}]}}}`,
		`{"version":2,"vhosts":{"*":{"routes":[]},"*.a.b":{"routes":[]},"x_y-z.example.":{"routes":[]},"[::1]":{"routes":[]},"1.2.3.4":{"routes":[]}}}`,
		`{"version":2,"vhosts":{"h":{"routes":[{"priority":-5,"rule_index":9999999999}]}}}`,
		`{"version":2,"vhosts":{"h":{"routes":[{"method":"CONNECT"},{"method":"TRACE"},{"method":"PATCH"},{"method":"OPTIONS"},{"method":"DELETE"},{"method":"PUT"},{"method":"HEAD"},{"method":"POST"},{"method":"GET"}]}}}`,
		`{"version":2,"vhosts":{"h":{"routes":[{"filters":{"request_redirect":{"path_type":"ReplacePrefixMatch","replace_prefix_match":""}}}]}}}`,
		`{"version":2,"vhosts":{"h":{"default_backends":[{"weight":5,"backends":[{"address":"10.0.0.1","port":1}]},{"weight":0,"backends":[]}]}}}`,
		`{"version":2,"vhosts":{"h":{"routes":[{"headers":[{"name":"` + strings.Repeat("n", 126) + `","value":"1"}],"filters":{"request_header_modifier":{"add":[{"name":"` + strings.Repeat("a", 126) + `","value":"1"}]}}}]}}}`,
		`{"version":2,"vhosts":{"h":{"routes":[` + manyHeaderRoutes(64) + `]}}}`,
	}
	for _, d := range docs {
		if _, err := Parse("ghost.json", []byte(d)); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
}

func TestStatsAndReferences(t *testing.T) {
	tb := mustParse(t, `{"version":2,"vhosts":{
		"a":{"routes":[{"backends":[{"address":"10.0.0.1","port":80},{"address":"::1","port":80,"weight":0}]},{}]},
		"b":{"routes":[{"backend_groups":[{"backends":[{"address":"10.0.0.1","port":80},{"address":"10.0.0.2","port":81}]}]}],
		     "default_backends":[{"address":"0:0::2","port":9}]}}}`)
	if s := tb.Stats(); s != (Stats{Vhosts: 2, Routes: 3, Endpoints: 4}) {
		t.Errorf("stats %+v", s)
	}
	for _, c := range []struct {
		e    Endpoint
		want bool
	}{
		{Endpoint{"10.0.0.1", 80}, true},
		{Endpoint{"::1", 80}, true}, // weight 0 still referenced
		{Endpoint{"0::1", 80}, true},
		{Endpoint{"::2", 9}, true},
		{Endpoint{"10.0.0.2", 81}, true},
		{Endpoint{"10.0.0.2", 80}, false},
		{Endpoint{"nonsense", 80}, false},
	} {
		if got := tb.References(c.e); got != c.want {
			t.Errorf("References(%v) = %v", c.e, got)
		}
	}
	if (Empty().Stats() != Stats{}) || Empty().References(Endpoint{"10.0.0.1", 80}) {
		t.Errorf("empty table")
	}
	// Endpoints come out canonical.
	d := decide(tb, req("b", "GET", "/nomatch"))
	if d.RouteIndex != 0 {
		t.Fatalf("%+v", d)
	}
	tb2 := mustParse(t, `{"version":2,"vhosts":{"h":{"routes":[{"backends":[{"address":"0:0::0001","port":80}]}]}}}`)
	if got := backendOf(decide(tb2, req("h", "GET", "/"))); got != "::1:80" {
		t.Errorf("canonical address: %s", got)
	}
}

func TestUnknownKeys(t *testing.T) {
	doc := `{"version":2,"default":{"whatever":1},"extra":[{"x":1}],"vhosts":{"a":{"routes":[
		{"timeout":5,"path_match":{"type":"Exact","value":"/","flags":"i"},"backends":[{"address":"::1","port":1,"zone":"a"}],
		 "filters":{"url_rewrite":{"hostname":"h","keep":true},"mirror":{}}}],
		"default_backends":[{"weight":1,"backends":[{"address":"::1","port":1,"az":"b"}]}],"tls":{}},
		"b":{"routes":[{"timeout":1}]}}}`
	got := UnknownKeys([]byte(doc))
	want := []string{"extra", "vhosts.*.default_backends[].backends[].az", "vhosts.*.routes[].backends[].zone",
		"vhosts.*.routes[].filters.mirror", "vhosts.*.routes[].filters.url_rewrite.keep",
		"vhosts.*.routes[].path_match.flags", "vhosts.*.routes[].timeout", "vhosts.*.tls"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := UnknownKeys([]byte(fuzzTable)); len(got) != 0 {
		t.Errorf("unexpected unknown keys: %q", got)
	}
	if UnknownKeys([]byte(`{"version":`)) != nil {
		t.Errorf("invalid JSON should give nil")
	}
}

// MaxAnswer: a route whose decision could not fit varnishd's workspace is
// refused (20 request header adds of 4 KB made every request 503); one
// just under the bound loads.
func TestValidationAnswerSize(t *testing.T) {
	adds := func(n int) string {
		hs := make([]string, n)
		for i := range hs {
			hs[i] = fmt.Sprintf(`{"name":"x-a%d","value":"%s"}`, i, strings.Repeat("v", 3990))
		}
		return `{"filters":{"request_header_modifier":{"add":[` + strings.Join(hs, ",") + `]}}}`
	}
	_, err := Parse("ghost.json", []byte(route0(adds(20))))
	const want = `ghost.json: vhost "api.example.com" route 2: a decision would be up to `
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "more than 16384") {
		t.Fatalf("got %v, want %s... more than 16384", err, want)
	}
	if _, err := Parse("ghost.json", []byte(route0(adds(4)))); err != nil {
		t.Fatal(err)
	}
	eps := make([]string, 1200)
	for i := range eps {
		eps[i] = fmt.Sprintf(`{"address":"10.0.%d.%d","port":8080}`, i/256, i%256)
	}
	doc := `{"version":2,"vhosts":{"h":{"default_backends":[` + strings.Join(eps, ",") + `]}}}`
	if _, err := Parse("ghost.json", []byte(doc)); err == nil || !strings.HasPrefix(err.Error(), `ghost.json: vhost "h": default_backends: a decision would be up to `) {
		t.Fatalf("1200 endpoints: got %v", err)
	}
	doc = `{"version":2,"vhosts":{"h":{"default_backends":[` + strings.Join(eps[:900], ",") + `]}}}`
	if _, err := Parse("ghost.json", []byte(doc)); err != nil {
		t.Fatalf("900 endpoints: %v", err)
	}
}

// Error messages are bounded (a 100,000-digit version made the reload
// answer a bare 500): start and end are kept.
func TestValidationErrorLength(t *testing.T) {
	docs := []string{
		`{"version":` + strings.Repeat("9", 100000) + `,"vhosts":{}}`,
		`{"version":2,"vhosts":{"` + strings.Repeat("é", 50000) + `":{}}}`,
		`{"version":2,"vhosts":{"h":{"routes":[{"method":"` + strings.Repeat("x", 100000) + `"}]}}}`,
	}
	for _, d := range docs {
		_, err := Parse("ghost.json", []byte(d))
		if err == nil {
			t.Fatalf("no error for %.40s", d)
		}
		msg := err.Error()
		if len(msg) > MaxErrorLen || !utf8.ValidString(msg) || !strings.HasPrefix(msg, "ghost.json: ") || !strings.Contains(msg, " bytes]… ") {
			t.Errorf("%d bytes: %.200s ... %s", len(msg), msg, msg[max(0, len(msg)-200):])
		}
	}
	_, err := Parse("ghost.json", []byte(docs[0]))
	if !strings.Contains(err.Error(), "99 is not an integer (line 1 column ") {
		t.Errorf("the end (what is wrong) is lost: %s", err.Error()[len(err.Error())-100:])
	}
}

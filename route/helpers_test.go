package route

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/varnish/ghost/route/routetest"
)

// mustParse parses a ghost.json document or fails the test.
func mustParse(t testing.TB, doc string) *Table {
	t.Helper()
	tb, err := Parse("ghost.json", []byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, doc)
	}
	return tb
}

// file builds a ghost.json document from vhost key → list of route JSON
// objects (as Go maps or raw JSON strings).
func file(vhosts map[string][]string) string {
	var b strings.Builder
	b.WriteString(`{"version":2,"vhosts":{`)
	first := true
	for k, routes := range vhosts {
		if !first {
			b.WriteByte(',')
		}
		first = false
		kj, _ := json.Marshal(k)
		fmt.Fprintf(&b, `%s:{"routes":[%s]}`, kj, strings.Join(routes, ","))
	}
	b.WriteString(`}}`)
	return b.String()
}

// be returns a backends list with one endpoint 10.0.0.<n>:80.
func be(n int) string {
	return fmt.Sprintf(`"backends":[{"address":"10.0.0.%d","port":80}]`, n)
}

// req builds a request.
func req(host, method, url string, hdrs ...string) *Request {
	r := &Request{Host: host, Method: method, URL: url}
	for i := 0; i+1 < len(hdrs); i += 2 {
		r.Headers = append(r.Headers, Header{Name: hdrs[i], Value: hdrs[i+1]})
	}
	return r
}

// decide returns the decision for a request.
func decide(tb *Table, r *Request) Decision {
	var d Decision
	tb.Decide(r, &d)
	return d
}

// backendOf returns "addr:port" of the single endpoint of a decision with
// exactly one group of one endpoint, or a description of the outcome.
func backendOf(d Decision) string {
	switch d.Outcome {
	case OutcomeNotFound:
		return "404"
	case OutcomeNoBackends:
		return "500"
	case OutcomeRedirect:
		return fmt.Sprintf("%d %s", d.Status, d.Location())
	}
	if len(d.Groups) != 1 || len(d.Groups[0].Endpoints) != 1 {
		return fmt.Sprintf("groups %v", d.Groups)
	}
	e := d.Groups[0].Endpoints[0]
	return fmt.Sprintf("%s:%d", e.Address, e.Port)
}

// vectorFile checks that path holds want: vectors Go computes and a C test
// of the shim (test/cshim/) checks the shim against. With
// GHOST_UPDATE_VECTORS=1 it writes want there first. what names the Go
// function the vectors come from, test the test that regenerates them.
func vectorFile(t *testing.T, path string, want []byte, what, test string) {
	t.Helper()
	routetest.VectorFile(t, path, want, "./route", what, test)
}

// docExample returns the first JSON example under the heading "## " +
// section of docs/configuration.md, wrapped as the vhost "a" of a file
// (the examples show a route list); it skips the test when the docs are
// not there.
func docExample(t *testing.T, section string) []byte {
	t.Helper()
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Skip("docs not present:", err)
	}
	m := regexp.MustCompile("(?s)## " + regexp.QuoteMeta(section) + ".*?```json\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatalf("no example in docs/configuration.md %s", section)
	}
	return []byte(`{"version":2,"vhosts":{"a":{` + string(m[1]) + `}}}`)
}

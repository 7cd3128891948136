package route

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/varnish/ghost/route/routetest"
)

// TestSharedCases decides routetest's cases, which test/e2e sends through
// the whole stack: each upstream name gets an endpoint of its own, and the
// decision must name the expected upstream, 404, 500 or redirect.
func TestSharedCases(t *testing.T) {
	tb, name := sharedTable(t)
	for _, c := range routetest.Cases {
		m := c.Method
		if m == "" {
			m = "GET"
		}
		got := backendOf(decide(tb, req(c.Host, m, c.URL, c.Headers...)))
		if n, ok := name[got]; ok {
			got = n
		}
		if got != c.Want {
			t.Errorf("%s: %s %s%s %s: got %s, want %s", c.Name, m, c.Host, c.URL, strings.Join(c.Headers, " "), got, c.Want)
		}
	}
}

// sharedTable compiles routetest's vhosts with one endpoint per upstream
// name; name maps "address:80" back to the upstream.
func sharedTable(t *testing.T) (tb *Table, name map[string]string) {
	t.Helper()
	addr := map[string]string{}
	name = map[string]string{}
	for i, n := range routetest.Names {
		a := fmt.Sprintf("10.9.%d.%d", i/250, i%250+1)
		addr[n], name[a+":80"] = a, n
	}
	be := func(n string) routetest.Obj {
		a, ok := addr[n]
		if !ok {
			t.Fatalf("upstream %q is not in routetest.Names", n)
		}
		return routetest.Obj{"address": a, "port": 80}
	}
	doc, err := json.Marshal(routetest.Obj{"version": 2, "vhosts": routetest.Vhosts(be)})
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, string(doc)), name
}

package protocol

import (
	"fmt"
	"strings"
	"testing"

	"github.com/varnish/ghost/route"
)

// route.MaxAnswer is checked at load with an upper bound of each route's
// answer: for configs grown until the bound refuses them, the largest one
// that loads must encode within MaxAnswer (plus what the request's own
// path adds: a rewritten path and a redirect location).
func TestAnswerWithinMaxAnswer(t *testing.T) {
	const path = "/p/0123456789"
	shapes := map[string]func(n int) string{
		"request adds": func(n int) string {
			hs := make([]string, n)
			for i := range hs {
				hs[i] = fmt.Sprintf(`{"name":"x-a%d","value":"%s"}`, i, strings.Repeat("v", 500))
			}
			return `{"routes":[{"filters":{"request_header_modifier":{"add":[` + strings.Join(hs, ",") + `]}},"backends":[{"address":"10.0.0.1","port":80}]}]}`
		},
		"ipv6 endpoints": func(n int) string {
			eps := make([]string, n)
			for i := range eps {
				eps[i] = fmt.Sprintf(`{"address":"2001:db8:ffff:ffff:ffff:ffff:ffff:%x","port":65535,"weight":1000000}`, i)
			}
			return `{"routes":[{"backend_groups":[{"weight":1000000,"backends":[` + strings.Join(eps, ",") + `]}]}]}`
		},
		"header values": func(n int) string {
			rs := make([]string, n)
			for i := range rs {
				rs[i] = fmt.Sprintf(`{"headers":[{"name":"x-tenant","value":"tenant-%04d-%s"}],"backends":[{"address":"10.0.0.1","port":80}]}`, i, strings.Repeat("t", 40))
			}
			return `{"routes":[` + strings.Join(rs, ",") + `,{"backends":[{"address":"10.0.0.1","port":80}]}]}`
		},
		"redirect and rewrite": func(n int) string {
			hs := make([]string, n)
			for i := range hs {
				hs[i] = fmt.Sprintf(`{"name":"x-r%d","value":"%s"}`, i, strings.Repeat("r", 300))
			}
			return `{"routes":[{"path_match":{"type":"PathPrefix","value":"/p"},"filters":{"response_header_modifier":{"set":[` + strings.Join(hs, ",") + `]},"url_rewrite":{"hostname":"` + strings.Repeat("h", 200) + `","path_type":"ReplacePrefixMatch","replace_prefix_match":"/` + strings.Repeat("w", 1000) + `"}},"backends":[{"address":"10.0.0.1","port":80}]},{"path_match":{"type":"PathPrefix","value":"/"},"filters":{"request_redirect":{"path_type":"ReplacePrefixMatch","replace_prefix_match":"/` + strings.Repeat("d", 1000) + `"}}}]}`
		},
	}
	for name, shape := range shapes {
		var last *route.Table
		for n := 1; ; n++ {
			tb, err := route.Parse("ghost.json", []byte(`{"version":2,"vhosts":{"h.test":`+shape(n)+`}}`))
			if err != nil {
				if !strings.Contains(err.Error(), "a decision would be up to") {
					t.Fatalf("%s, n=%d: %v", name, n, err)
				}
				break
			}
			last = tb
		}
		if last == nil {
			t.Fatalf("%s: nothing loads", name)
		}
		var d route.Decision
		r := route.Request{Host: "h.test", Method: "GET", URL: path,
			Headers: []route.Header{{Name: "x-tenant", Value: "nobody"}}}
		last.Decide(&r, &d)
		b, err := newEncoder().RouteAnswer(1<<62, &d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(b) > route.MaxAnswer+2*len(path) {
			t.Errorf("%s: the largest config that loads answers %d bytes, more than %d", name, len(b), route.MaxAnswer+2*len(path))
		}
		t.Logf("%s: %d bytes", name, len(b))
	}
}

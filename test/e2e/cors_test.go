package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/varnish/ghost/route/routetest"
)

// TestCORSCases sends route/routetest's CORS cases (the Gateway API
// conformance test HTTPRouteCORS, ported; the route unit tests decide them
// too) through varnishd, ghost.vcl, the shim and ghostd: preflights must
// be answered by ghost itself (204, no upstream), actual requests by their
// upstream with the filter's headers.
func TestCORSCases(t *testing.T) {
	e := need(t)
	for _, c := range routetest.CORSCases {
		t.Run(c.Name, func(t *testing.T) {
			h := append([]string{}, c.Headers...)
			q := Req{Method: c.Method, Host: routetest.CORSHost, URL: c.URL + uniq("/u"), Hdr: hdr(h...)}
			r := e.do(t, q)
			if c.Preflight {
				if r.Status != 204 || r.Body != "" || r.Upstream() != "" {
					t.Fatalf("%s: want ghost's 204 without a body, got %s", q, r)
				}
			} else if r.Status != 200 || r.Upstream() != c.Upstream {
				t.Fatalf("%s: want 200 from upstream %q, got %s", q, c.Upstream, r)
			}
			vary := false
			for _, v := range r.Header.Values("Vary") {
				for _, tok := range strings.Split(v, ",") {
					vary = vary || strings.EqualFold(strings.TrimSpace(tok), "Origin")
				}
			}
			for name, want := range c.Want {
				if name == "Vary" {
					if !vary {
						t.Errorf("%s: Vary %q, want Origin in it", q, r.Header.Values("Vary"))
					}
					continue
				}
				if got := r.Header.Values(name); !slices.Equal(got, []string{want}) {
					t.Errorf("%s: %s %q, want %q", q, name, got, want)
				}
			}
			for _, name := range c.Absent {
				if name == "Vary" {
					if vary {
						t.Errorf("%s: Vary %q names Origin", q, r.Header.Values("Vary"))
					}
					continue
				}
				if got := r.Header.Values(name); len(got) > 0 {
					t.Errorf("%s: %s %q, want none", q, name, got)
				}
			}
		})
	}
}

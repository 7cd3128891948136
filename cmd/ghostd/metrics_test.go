package main

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/varnish/ghost/route"
)

// scrapeMetrics renders m's registry as /metrics does.
func scrapeMetrics(t *testing.T, m *metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, err := io.ReadAll(rec.Result().Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// countLabel counts the distinct values of label in the series of name.
func countLabel(text, name, label string) int {
	seen := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		i := strings.Index(line, label+`="`)
		if i < 0 {
			continue
		}
		v := line[i+len(label)+2:]
		seen[v[:strings.IndexByte(v, '"')]] = true
	}
	return len(seen)
}

// 100k vhosts and route names each decided once: the default cap keeps
// /metrics under 1 MB, the rest counts under ~other, nothing is lost.
func TestMetricsBoundedAt100kVhosts(t *testing.T) {
	m := newMetrics(DefaultMetricsVhosts)
	const n = 100000
	for i := 0; i < n; i++ {
		m.decided(fmt.Sprintf("h%d.example", i), fmt.Sprintf("ns/r%d", i), route.OutcomeBackend, 0)
	}
	text := scrapeMetrics(t, m)
	if len(text) >= 1<<20 {
		t.Errorf("/metrics at %d vhosts: %d bytes, want < 1 MB", n, len(text))
	}
	if got := countLabel(text, "ghost_decisions_total", "vhost"); got != DefaultMetricsVhosts+1 {
		t.Errorf("vhost label values: %d, want %d + %q", got, DefaultMetricsVhosts, OtherLabel)
	}
	if got := countLabel(text, "ghost_route_decisions_total", "route_name"); got != DefaultMetricsVhosts+1 {
		t.Errorf("route_name label values: %d, want %d + %q", got, DefaultMetricsVhosts, OtherLabel)
	}
	for _, want := range []string{
		fmt.Sprintf(`ghost_decisions_total{outcome="backend",vhost="~other"} %d`, n-DefaultMetricsVhosts),
		fmt.Sprintf(`ghost_route_decisions_total{route_name="~other"} %d`, n-DefaultMetricsVhosts),
		`ghost_decisions_total{outcome="backend",vhost="h0.example"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	t.Logf("/metrics at %d vhosts, cap %d: %d bytes", n, DefaultMetricsVhosts, len(text))
}

// A reload that removes a capped vhost frees its place for a new one;
// cap 0 counts everything under ~other.
func TestMetricsCapFreedByReload(t *testing.T) {
	cfg := func(hosts ...string) *route.Table {
		var b strings.Builder
		b.WriteString(`{"version": 2, "vhosts": {`)
		for i, h := range hosts {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `%q: {"routes": [{"backends": [{"address": "127.0.0.1", "port": 80}]}]}`, h)
		}
		b.WriteString("}}")
		tb, err := route.Parse("test.json", []byte(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		return tb
	}
	m := newMetrics(2)
	for _, h := range []string{"a.test", "b.test", "c.test"} {
		m.decided(h, "", route.OutcomeBackend, 0)
	}
	text := scrapeMetrics(t, m)
	if strings.Contains(text, `vhost="c.test"`) || !strings.Contains(text, `vhost="~other"} 1`) {
		t.Errorf("third vhost not under ~other at cap 2:\n%s", text)
	}
	m.forget(cfg("b.test", "c.test"))
	m.decided("c.test", "", route.OutcomeBackend, 0)
	text = scrapeMetrics(t, m)
	if strings.Contains(text, `vhost="a.test"`) || !strings.Contains(text, `{outcome="backend",vhost="c.test"} 1`) {
		t.Errorf("removed vhost's place not reused:\n%s", text)
	}

	m = newMetrics(0)
	m.decided("a.test", "ns/a", route.OutcomeBackend, 0)
	text = scrapeMetrics(t, m)
	if strings.Contains(text, `vhost="a.test"`) || strings.Contains(text, `route_name="ns/a"`) ||
		!strings.Contains(text, `ghost_decisions_total{outcome="backend",vhost="~other"} 1`) {
		t.Errorf("cap 0 keeps per-vhost series:\n%s", text)
	}
}

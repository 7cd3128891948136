package fault

import (
	"fmt"
	"testing"
	"time"

	"github.com/varnish/ghost/test/stack"
)

// killedPool runs the three-endpoint route h.test (route extra keys
// given) under load, kills one endpoint, and returns, for the route's
// requests started after the kill, how many failed and when the last
// failure started (zero when none). Retries are off: each request to
// the dead endpoint fails until endpoint health takes it out of the pick.
// The rest of the table must see no failure at all.
func killedPool(t *testing.T, name string, extra map[string]any) (e *env, st loadStats, killedAt time.Time, failed, sent int, last time.Duration, began time.Time) {
	ports, kills := killablePool(t)
	withPool := func(u *stack.Upstreams) map[string]any {
		cfg := baseConfig(u)
		r := map[string]any{"backends": []any{be(ports[0]), be(ports[1]), be(ports[2])}}
		for k, v := range extra {
			r[k] = v
		}
		cfg["vhosts"].(map[string]any)["h.test"] = map[string]any{"routes": []any{r}}
		return cfg
	}
	e, began, child := scenario(t, envOpts{config: withPool})
	pool := []target{
		{Host: "h.test", Path: "/p", Want: "pool", Tail: true},
		{Host: "h.test", Path: "/", Want: "pool"},
	}
	targets := append(baseTargets(), pool...)
	lo := defaultLoad()
	lo.conc = 8
	l := e.startLoad(targets, lo)
	time.Sleep(pick(1500*time.Millisecond, 5*time.Second))
	killedAt = time.Now()
	kills[1]()
	time.Sleep(pick(5*time.Second, 30*time.Second))
	st = l.stop()
	for _, s := range st.samples {
		if st.targets[s.target].Host == "h.test" && s.start.After(killedAt) {
			sent++
		}
	}
	var others []sample
	for _, s := range st.failures {
		if st.targets[s.target].Host != "h.test" {
			others = append(others, s)
			continue
		}
		if !s.start.After(killedAt) {
			continue
		}
		failed++
		if d := s.start.Sub(killedAt); d > last {
			last = d
		}
	}
	if len(others) > 0 || st.misrouted > 0 {
		t.Errorf("%s: %d failed, %d misrouted requests outside the route with the killed endpoint", name, len(others), st.misrouted)
		st.logSome(t, "failed", others, 10)
	}
	e.checkChild(child)
	return e, st, killedAt, failed, sent, last, began
}

// Scenario 13: one endpoint of three killed under load, the route has an
// active probe (every 500ms, sick after 2 failed polls) and no retries:
// requests fail only until the probe marks the endpoint sick, within
// interval x threshold (+ one interval for the poll's phase, + timeout).
func TestEndpointKilledProbe(t *testing.T) {
	e, st, _, failed, sent, last, began := killedPool(t, "probe", map[string]any{
		"health": map[string]any{"path": "/healthz", "interval": "500ms", "timeout": "200ms", "window": 3, "threshold": 2},
	})
	sick := e.v.Stats("GHOST.probe_sick")["GHOST.probe_sick"]
	// 2 polls x 500ms + a 500ms phase + 200ms timeout, and slack for a
	// loaded machine
	if bound := 2500 * time.Millisecond; last > bound {
		t.Errorf("the killed endpoint still got requests %v after the kill (want <= %v)", last, bound)
	}
	if sick != 1 {
		t.Errorf("GHOST.probe_sick = %d, want 1", sick)
	}
	e.summarize("13 one endpoint of three killed, probe 500ms x 2, no retries", st, began, fmt.Sprintf(
		"%d of %d requests to the route failed after the kill, the last %v after it (probe: sick after 2 failed polls of 500ms)",
		failed, sent, last.Round(time.Millisecond)))
}

// Scenario 14: the same with passive ejection only (3 consecutive
// failures eject for 30s): about 3 requests fail (plus those in flight),
// then the endpoint is left out.
func TestEndpointKilledOutlier(t *testing.T) {
	e, st, _, failed, sent, last, began := killedPool(t, "outlier", map[string]any{
		"outlier": map[string]any{"consecutive_failures": 3, "base_ejection_time": "30s", "max_ejection_percent": 50},
	})
	ejected := e.v.Stats("GHOST.outlier_ejected")["GHOST.outlier_ejected"]
	if ejected != 1 {
		t.Errorf("GHOST.outlier_ejected = %d, want 1", ejected)
	}
	// 3 failures, and at most one more per worker already in flight
	if failed > 3+8 {
		t.Errorf("%d requests failed after the kill, want <= 11 (3 consecutive failures + 8 in flight)", failed)
	}
	if bound := time.Second; last > bound {
		t.Errorf("the killed endpoint still got requests %v after the kill (want <= %v)", last, bound)
	}
	e.summarize("14 one endpoint of three killed, outlier 3 failures, no retries", st, began, fmt.Sprintf(
		"%d of %d requests to the route failed after the kill, the last %v after it (ejected after 3 consecutive failures)",
		failed, sent, last.Round(time.Millisecond)))
}

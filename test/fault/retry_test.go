package fault

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/varnish/ghost/test/stack"
)

// startKillable serves HTTP on a loopback port from this process,
// answering as name; kill closes the listener and every connection at
// once, as a crashed upstream process would (refused connects, resets
// of the requests in flight and of idle pooled connections).
func startKillable(t *testing.T, name string) (port int, kill func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Upstream", name)
		_, _ = io.WriteString(w, name+"\n")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, func() { _ = srv.Close() }
}

// killablePool starts three killable endpoints answering as "pool".
func killablePool(t *testing.T) (ports [3]int, kills [3]func()) {
	t.Helper()
	for i := range ports {
		ports[i], kills[i] = startKillable(t, "pool")
	}
	return ports, kills
}

// Scenario 12: one endpoint of three killed under load, the route has
// retries on (issue 12): no client sees an error. The three endpoints
// answer as the same upstream ("pool"); GET only (a request body that
// was not cached cannot be replayed after it was sent).
func TestEndpointKilledWithRetries(t *testing.T) {
	ports, kills := killablePool(t)
	withPool := func(u *stack.Upstreams) map[string]any {
		cfg := baseConfig(u)
		cfg["vhosts"].(map[string]any)["retry.test"] = map[string]any{"routes": []any{map[string]any{
			"timeouts": map[string]any{"request": "5s", "backend_request": "1s"},
			"retry":    map[string]any{"attempts": 2, "codes": []any{502, 503, 504}, "backoff": "10ms"},
			"backends": []any{be(ports[0]), be(ports[1]), be(ports[2])},
		}}}
		return cfg
	}
	e, began, child := scenario(t, envOpts{config: withPool})
	pool := []target{
		{Host: "retry.test", Path: "/p", Want: "pool", Tail: true},
		{Host: "retry.test", Path: "/q?x=1", Want: "pool"},
		{Host: "retry.test", Path: "/", Want: "pool"},
	}
	targets := append(baseTargets(), pool...)
	before := e.v.Stats("GHOST.retry_failed", "GHOST.retry_refused")
	lo := defaultLoad()
	lo.conc = 8
	l := e.startLoad(targets, lo)
	time.Sleep(pick(1500*time.Millisecond, 5*time.Second))
	killedAt := time.Now()
	kills[1]()
	time.Sleep(pick(4*time.Second, 30*time.Second))
	st := l.stop()
	after := e.v.Stats("GHOST.retry_failed", "GHOST.retry_refused")
	retried := after["GHOST.retry_failed"] - before["GHOST.retry_failed"]
	refused := after["GHOST.retry_refused"] - before["GHOST.retry_refused"]
	e.checkLoad(st, "after one endpoint of three was killed", child)
	if retried == 0 {
		t.Errorf("GHOST.retry_failed did not move: the killed endpoint was never retried away from")
	}
	if refused != 0 {
		t.Errorf("GHOST.retry_refused = %d, want 0", refused)
	}
	var toPool, afterKill int
	for _, s := range st.samples {
		if st.targets[s.target].Host == "retry.test" {
			toPool++
			if s.start.After(killedAt) {
				afterKill++
			}
		}
	}
	e.summarize("12 one endpoint of three killed, retries on", st, began, fmt.Sprintf(
		"%d requests to the three-endpoint route (%d after the kill), %d failed fetches retried on another endpoint (GHOST.retry_failed), %d refused",
		toPool, afterKill, retried, refused))
}

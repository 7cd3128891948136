package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// bigConfig is a file of n vhosts whose reload takes far longer than a
// millisecond; bad makes its last route invalid (found late, after most
// of the table was built).
func bigConfig(n int, bad bool) string {
	var b strings.Builder
	b.WriteString(`{"version":2,"vhosts":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		path := "/p"
		if bad && i == n-1 {
			path = "p"
		}
		fmt.Fprintf(&b, `"h%05d.test":{"routes":[{"path_match":{"type":"PathPrefix","value":%q},"backends":[{"address":"10.%d.%d.1","port":8080}]}]}`,
			i, path, i/256%256, i%256)
	}
	b.WriteString(`}}`)
	return b.String()
}

// TestReloadPending: a reload request whose wait runs out while the reload
// still runs is answered ok + pending with the generation still serving,
// and the reload goes on: a valid file becomes the next generation, an
// invalid one shows in status. A reload done within the wait is answered
// as before.
func TestReloadPending(t *testing.T) {
	d := startDaemon(t, configA, "-watch=false")
	c := d.dial()
	defer c.Close()
	gen := d.status().Gen

	writeFile(t, d.config, bigConfig(20000, false))
	r, err := c.ReloadWait(time.Millisecond)
	if err != nil || !r.OK || !r.Pending || r.Gen != gen || !strings.HasPrefix(r.Msg, "pending: "+d.config+" still loading") ||
		!strings.Contains(r.Msg, fmt.Sprintf("a valid file becomes generation %d", gen+1)) {
		t.Fatalf("reload with a 1 ms wait: %+v %v", r, err)
	}
	// the reload goes on: 20,000 vhosts take well under a second, far
	// longer on a saturated machine
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s := d.status()
		if s.Gen > gen {
			if s.Gen != gen+1 || s.Vhosts != 20000 || s.Reloads != 1 || s.LastError != "" {
				t.Fatalf("after the pending reload: %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pending reload never finished: %+v", s)
		}
	}
	if !d.waitLog("answered pending") {
		t.Errorf("no log line for the pending answer:\n%s", d.stderr.String())
	}

	writeFile(t, d.config, bigConfig(20000, true))
	if r, err = c.ReloadWait(time.Millisecond); err != nil || !r.OK || !r.Pending || r.Gen != gen+1 {
		t.Fatalf("reload of a bad file with a 1 ms wait: %+v %v", r, err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s := d.status()
		if s.ReloadFailures == 1 {
			if s.Gen != gen+1 || !strings.Contains(s.LastError, `must start with "/"`) {
				t.Fatalf("after the pending bad reload: %+v", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bad reload never finished: %+v", s)
		}
	}

	writeFile(t, d.config, configB)
	if r, err = c.ReloadWait(30 * time.Second); err != nil || !r.OK || r.Pending || r.Gen != gen+2 {
		t.Fatalf("reload within the wait: %+v %v", r, err)
	}
}

// TestMaxBackendsWarning: a table with more distinct endpoints than
// -max-backends is warned about at start and at every reload that keeps
// it so, with both numbers; a table within it is not.
func TestMaxBackendsWarning(t *testing.T) {
	three := `{"version":2,"vhosts":{"a.test":{"routes":[{"backends":[` +
		`{"address":"10.0.0.1","port":80},{"address":"10.0.0.2","port":80},{"address":"10.0.0.3","port":80}]}]}}}`
	d := startDaemon(t, three, "-watch=false", "-max-backends", "2")
	const warn = "more distinct endpoints than varnishd may hold native backends"
	if !d.waitLog("endpoints=3 max_backends=2") || !strings.Contains(d.stderr.String(), warn) {
		t.Fatalf("no warning at start:\n%s", d.stderr.String())
	}
	c := d.dial()
	defer c.Close()
	writeFile(t, d.config, configA) // one endpoint
	if r, err := c.Reload(); err != nil || !r.OK {
		t.Fatalf("reload: %+v %v", r, err)
	}
	if n := strings.Count(d.stderr.String(), warn); n != 1 {
		t.Fatalf("%d warnings after a reload to 1 endpoint, want 1 (the start's):\n%s", n, d.stderr.String())
	}
}

// TestAutoMaxBackends: -max-backends' default follows the descriptor
// limit as the VMOD's default max_backends does (g79 checks the VMOD's
// side; docs/operations.md has the table).
func TestAutoMaxBackends(t *testing.T) {
	for _, c := range []struct {
		lim  uint64
		want int
	}{
		{20000, 16469}, {65536, 53969}, {131072, 107940}, {262144, 215882},
		{1 << 21, 262144}, {0, 262144}, {2000, 1000}, {1, 1},
	} {
		if got := AutoMaxBackends(c.lim); got != c.want {
			t.Errorf("AutoMaxBackends(%d) = %d, want %d", c.lim, got, c.want)
		}
	}
}

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/varnish/ghost/test/scale"
)

// TestVCLDiscardKeepsChild: a VCL switch right after traffic to many
// endpoints with keep-alive upstreams must not get the child killed.
//
// varnishd 7.1.1 releases the last backend of an endpoint whose connection
// pool holds idle connections by shutting them down and sleeping in steps
// of 20 ms until its waiter closed them (VCP_Rel()): at least 20 ms per
// such endpoint. ghost used to release every backend of a VCL in its
// DISCARD event, on the child's CLI thread, and the manager kills the
// child when one CLI answer takes longer than cli_timeout. Here 400
// endpoints, each with an idle connection and used only by the old VCL,
// cost the discard at least 8 s, against a cli_timeout of 3 s: the child
// was killed (its PID changed). ghost now releases a cold VCL's backends
// on its reaper, backend_idle_timeout + 1 s after the COLD event, and
// varnishd discards the VCL after that. debug=+vtc_mode makes idle worker
// threads let go of the old VCL after 1 s instead of 60 s (as varnishtest
// does), so that it goes cold while the idle connections are still open.
func TestVCLDiscardKeepsChild(t *testing.T) {
	const n = 400
	s, err := scale.StartStack(scale.StackOpts{KeepAlive: true,
		Config: func(port int) []byte { return scale.Config(n, 1, port, "a", nil) },
		Params: []string{"cli_timeout=3", "backend_idle_timeout=10", "debug=+vtc_mode"}})
	defer func() {
		if s != nil {
			s.Stop(t.Failed())
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	child := s.V.ChildPID()
	l := s.Drive(4, func(k int) int {
		if k < n {
			return k
		}
		return -1
	}, func(i int) int { return i }, nil)
	if l.Errors > 0 {
		t.Fatalf("creating %d endpoints: %v, first error %v", n, l, l.FirstErr)
	}
	cli := func(words ...string) string {
		t.Helper()
		out, took, err := s.CLI(time.Minute, words...)
		t.Logf("%s: %v", strings.Join(words, " "), took.Round(time.Millisecond))
		if err != nil {
			t.Fatalf("%s: %v %.300s\nvarnishd:\n%s", strings.Join(words, " "), err, out, s.V.LogTail(20))
		}
		return out
	}
	cli("vcl.load", "v2", s.Dir+"/main.vcl")
	cli("vcl.use", "v2")
	time.Sleep(1500 * time.Millisecond) // idle workers let go of boot
	cli("vcl.state", "boot", "cold")
	cli("vcl.discard", "boot")
	deadline := time.Now().Add(2 * time.Minute)
	for strings.Contains(cli("vcl.list"), " boot") {
		if time.Now().After(deadline) {
			t.Fatalf("boot not discarded 2 minutes after vcl.discard")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if pid := s.V.ChildPID(); pid != child {
		t.Fatalf("child PID %d, was %d: the manager restarted the child\n%s", pid, child, s.V.LogTail(20))
	}
	if p := s.PanicShow(); p != "" {
		t.Fatalf("the child panicked:\n%.2000s", p)
	}
	c := s.Stats("MAIN.n_backend", "GHOST.be_live", "GHOST.be_retired")
	if c["MAIN.n_backend"] != c["GHOST.be_live"] || c["GHOST.be_retired"] != n {
		t.Errorf("after the discard: %v, want MAIN.n_backend == GHOST.be_live and %d retired", c, n)
	}
	// the new VCL routes (it creates its own backends)
	if err := s.Get(7, 7); err != nil {
		t.Errorf("through v2: %v", err)
	}
}

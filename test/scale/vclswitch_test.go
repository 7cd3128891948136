package scale

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vclSwitch loads a second VCL (the same main.vcl), switches to it, sends
// the warm endpoints through it once (so that it holds backends of its
// own for them, sharing their connection pools), then sets the old VCL
// cold and discards it, each step one CLI command on a connection of its
// own, and reports how long each answer took: ghost's VCL events run on
// the child's CLI thread (ghost.init at vcl.load; the release of every
// backend the old VCL holds at its discard), and the manager kills the
// child when one answer takes longer than cli_timeout. The discard may be
// deferred by varnishd until the old VCL is cold (a request or ghost's
// reaper still holds it): it then happens on a later CLI command, which
// the caller's CLIWatch times. Returns the new VCL's name.
func vclSwitch(t *testing.T, cfg settings, s *Stack, old, name string, warm []int) string {
	t.Helper()
	step := func(words ...string) time.Duration {
		t.Helper()
		out, took, err := s.CLI(5*time.Minute, words...)
		if err != nil {
			t.Fatalf("%s: %v: %.300s", strings.Join(words, " "), err, out)
		}
		cfg.report(t, "%s: answered in %v", strings.Join(words, " "), took.Round(time.Microsecond))
		return took
	}
	step("vcl.load", name, filepath.Join(s.Dir, "main.vcl"))
	step("vcl.use", name)
	if len(warm) > 0 {
		l := s.Drive(cfg.conc, func(k int) int {
			if k < len(warm) {
				return warm[k]
			}
			return -1
		}, func(i int) int { return i }, nil)
		cfg.report(t, "warm set through %s: %v", name, l)
	}
	before := s.Stats("MAIN.n_backend", "GHOST.be_live", "GHOST.be_draining")
	step("vcl.state", old, "cold")
	step("vcl.discard", old)
	// deferred: gone from vcl.list once varnishd discarded it
	t0 := time.Now()
	for {
		out, _, err := s.CLI(5*time.Minute, "vcl.list")
		if err != nil {
			t.Fatalf("vcl.list: %v", err)
		}
		if !strings.Contains(out, " "+old+"\n") && !strings.HasSuffix(out, " "+old) {
			break
		}
		if time.Since(t0) > 10*time.Minute {
			t.Fatalf("%s not discarded 10 minutes after vcl.discard:\n%s", old, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	after := s.Stats("MAIN.n_backend", "GHOST.be_live", "GHOST.be_draining")
	cfg.report(t, "%s discarded (vcl.list) %v after vcl.discard answered; counters before %v, after %v",
		old, time.Since(t0).Round(time.Millisecond), before, after)
	return name
}

// TestVCLSwitch: GHOST_SCALE_N endpoints (one backend each) in the boot
// VCL, with the keep-alive mode(s) of GHOST_SCALE_KEEPALIVE, then a VCL
// switch (vclSwitch) within backend_idle_timeout, so that their idle
// upstream connections are still open at the discard; asserts that the
// child survived (no panic, same PID) and reports every CLI answer's time.
func TestVCLSwitch(t *testing.T) {
	cfg := load(t)
	for _, ka := range cfg.keepAlive {
		t.Run(fmt.Sprintf("keepalive=%v", map[bool]string{false: "off", true: "on"}[ka]), func(t *testing.T) {
			n := cfg.n
			s, err := StartStack(StackOpts{KeepAlive: ka, InitArgs: cfg.initArgs, Params: cfg.params,
				Config: func(port int) []byte { return Config(n, cfg.routes, port, "a", nil) }})
			defer func() {
				if s != nil {
					s.Stop(t.Failed())
				}
			}()
			if err != nil {
				t.Fatal(err)
			}
			w := WatchCLI(s.V, 500*time.Millisecond)
			t0 := time.Now()
			child := s.V.ChildPID()
			l := s.Drive(cfg.conc, func(k int) int {
				if k < n {
					return k
				}
				return -1
			}, func(i int) int { return i }, nil)
			m := s.Measure()
			cfg.report(t, "created: %v; %v", l, m)
			t1 := time.Now()
			var warm []int
			for i := 0; i < n && len(warm) < 2000; i += 2 {
				warm = append(warm, i)
			}
			vclSwitch(t, cfg, s, "boot", "v2", warm)
			w.Stop()
			cfg.report(t, "CLI while creating: %s", w.Window(t0, t1))
			cfg.report(t, "CLI during the switch: %s", w.Window(t1, time.Now()))
			if n, first := w.Errors(); n > 0 {
				t.Errorf("%d CLI questions failed, first: %s", n, first)
			}
			if p := s.PanicShow(); p != "" {
				t.Fatalf("the child panicked:\n%.2000s", p)
			}
			if pid := s.V.ChildPID(); pid != child {
				t.Fatalf("child PID %d, was %d: varnishd restarted its child (varnishd log:\n%s)", pid, child, s.V.LogTail(30))
			}
		})
	}
}

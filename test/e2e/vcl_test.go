package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVCLReload loads a second VCL that uses ghost, switches to it,
// discards the first one and keeps routing: discarding a VCL that used
// ghost is clean, and a second VCL works.
func TestVCLReload(t *testing.T) {
	e := need(t)
	name := fmt.Sprintf("e2e%d", time.Now().UnixNano()%1_000_000)
	adm := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := e.VarnishAdm(args...)
		if err != nil {
			t.Fatalf("varnishadm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	active := func(t *testing.T) string {
		t.Helper()
		for _, l := range strings.Split(adm(t, "vcl.list"), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "active" {
				return f[len(f)-1]
			}
		}
		t.Fatalf("no active VCL in vcl.list")
		return ""
	}
	var old string
	t.Run("load-and-use-second-vcl", func(t *testing.T) {
		old = active(t)
		adm(t, "vcl.load", name, filepath.Join(e.Dir, "main.vcl"))
		adm(t, "vcl.use", name)
		e.expectUpstream(t, get("exact.test", "/vcl2"), "exact")
		e.expectUpstream(t, get("path.test", "/api/x"), "p-api")
		e.expectNoRoute(t, get("unknown.test", "/vcl2"))
		e.expectRedirect(t, get("redir.test", "/https"), 301, "https://redir.test/https")
		if out := adm(t, "backend.list"); !strings.Contains(out, name+".ghost.") {
			t.Errorf("backend.list shows no ghost backend of %s:\n%s", name, out)
		}
	})
	t.Run("discard-old-vcl", func(t *testing.T) {
		if old == "" || old == name {
			t.Fatalf("no previous VCL to discard (active was %q)", old)
		}
		adm(t, "vcl.state", old, "cold")
		adm(t, "vcl.discard", old)
		time.Sleep(200 * time.Millisecond)
		// varnishd keeps a discarded VCL listed as "discarded" while idle
		// worker threads still hold a reference to it (they cache the VCL
		// of their last request); anything else is a failure.
		for _, l := range strings.Split(adm(t, "vcl.list"), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[len(f)-1] == old {
				if f[0] != "discarded" {
					t.Errorf("%s after vcl.discard: %q, want gone or discarded", old, l)
				} else {
					t.Logf("%s after vcl.discard: %q (released when idle threads let go)", old, strings.Join(f, " "))
				}
			}
		}
		if out := adm(t, "backend.list"); strings.Contains(out, old+".ghost.") {
			t.Errorf("backends of the discarded %s still listed:\n%s", old, out)
		}
		e.expectUpstream(t, get("exact.test", "/after-discard"), "exact")
		e.expectUpstream(t, get("method.test", "/m"), "m-get")
	})
	t.Run("child-did-not-restart", func(t *testing.T) {
		out, _ := e.VarnishAdm("panic.show") // exits non-zero when there is no panic
		if !strings.Contains(out, "not panicked") {
			t.Errorf("varnishd child panicked:\n%s", out)
		}
		if out := adm(t, "status"); !strings.Contains(out, "running") {
			t.Errorf("child not running: %s", out)
		}
	})
}

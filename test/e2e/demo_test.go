package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varnish/ghost/test/stack"
)

// TestDemo runs `make run`'s demo in smoke mode (DEMO_SMOKE=1): it starts
// its own upstreams, ghostd and varnishd, runs every curl command it
// prints, checks each answer and stops everything.
func TestDemo(t *testing.T) {
	e := need(t)
	ports, err := stack.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.Dir, "demo")
	cmd := exec.Command("bash", filepath.Join(e.Root, "dist/demo/run.sh"))
	cmd.Env = append(os.Environ(), "DEMO_SMOKE=1", "DEMO_DIR="+dir, fmt.Sprintf("DEMO_PORT=%d", ports[0]))
	cmd.Dir = e.Root
	done := make(chan struct{})
	var out []byte
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("demo smoke did not finish in 90 s:\n%s", out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "smoke ") || strings.HasPrefix(l, "demo smoke") {
			t.Log(l)
		}
	}
	if err != nil {
		t.Errorf("DEMO_SMOKE=1 bash dist/demo/run.sh: %v\n%s", err, out)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("demo left its staging directory %s behind", dir)
	}
}

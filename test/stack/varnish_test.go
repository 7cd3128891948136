package stack

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFreePortsOutsideEphemeral: ports come from below the kernel's
// ephemeral range (where no bind(":0") or connect() of any process lands
// while a cluster's member port waits for its node) and never twice.
func TestFreePortsOutsideEphemeral(t *testing.T) {
	lo := ephemeralLow()
	if min(portHi, lo)-portLo < 1000 {
		t.Skipf("ephemeral range starts at %d: FreePorts falls back to the kernel's choice", lo)
	}
	seen := map[int]bool{}
	for range 50 {
		ps, err := FreePorts(4)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p < portLo || p >= portHi || p >= lo {
				t.Fatalf("port %d outside %d-%d (ephemeral from %d)", p, portLo, portHi-1, lo)
			}
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
		}
	}
}

// TestStartVarnishdTakenPort: a varnishd whose listener's port another
// process holds (here a decoy that greets as a varnishd CLI does, the
// way another node's -T answered TestJoin's requests in CI) is an error,
// never a Varnishd whose Listen address is that other process.
func TestStartVarnishdTakenPort(t *testing.T) {
	if _, err := exec.LookPath("varnishd"); err != nil {
		t.Skip("no varnishd")
	}
	dir, err := StageDir("ghost-stack-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	vcl := filepath.Join(dir, "main.vcl")
	if err := os.WriteFile(vcl, []byte("vcl 4.1;\nbackend b none;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("107 59      \nabcdefghijklmnopqrstuvwxyzabcdef\n\nAuthentication required.\n\n"))
			go func() {
				time.Sleep(5 * time.Second)
				c.Close()
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	v, err := StartVarnishd(VarnishdOpts{Dir: dir, VCL: vcl, Listen: []string{"http"}, Ports: []int{port}})
	if err == nil {
		_ = v.Stop(10 * time.Second)
		t.Fatalf("StartVarnishd on a taken port %d: no error, Listen %v is another process", port, v.Listen)
	}
	if !strings.Contains(err.Error(), "Could not get socket") {
		t.Fatalf("error does not say why: %v", err)
	}
	t.Logf("as expected: %.200s", err)
}

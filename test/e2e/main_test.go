// Package e2e is ghost's end-to-end suite: real upstreams (build/upstream),
// a real ghostd and a real varnishd (default jail, so the child runs as
// vcache) with vcl/ghost.vcl and build/libvmod_ghost.so, all driven over
// HTTP. TestMain stages the artifacts in a 0755 directory under /tmp,
// starts everything on free loopback ports (test/stack) and stops it all
// by PID at the end, also when a test fails.
//
// Run it with `make test-e2e` or `go test -count=1 -v ./test/e2e/` after
// `make build`. GHOST_E2E_KEEP=1 keeps the staging directory (logs, configs).
package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/varnish/ghost/test/stack"
)

// E is the running environment every test talks to.
var E *Env

// skipReason is set when the artifacts are missing; every test skips with it.
var skipReason string

// Env is one staged ghost stack.
type Env struct {
	Root string // repository root
	Dir  string // staging directory (0755, under /tmp)
	Sock string // ghostd socket, staged
	Conf string // ghost.json, staged
	Logs string // directory for process logs (inside Dir)

	HTTP    string // varnishd main listener, "127.0.0.1:port" (socket name "http")
	Proxy   string // varnishd PROXY-protocol listener (socket name "proxy")
	Metrics string // ghostd -metrics address

	Ports map[string]int    // upstream key -> port
	Names map[string]string // upstream key -> name it answers with (X-Upstream)

	mu       sync.Mutex
	procs    []*stack.Proc
	ghostd   *stack.Proc // the current ghostd (replaced by the socket-activation tests)
	varnishd *stack.Varnishd
}

// start launches a child process with its output in <Logs>/<name>.log;
// stopAll stops it at the end of the suite.
func (e *Env) start(name string, o stack.Opts, argv ...string) (*stack.Proc, error) {
	p, err := stack.Start(name, filepath.Join(e.Logs, name+".log"), o, argv...)
	if err != nil {
		return nil, err
	}
	e.track(p)
	return p, nil
}

func (e *Env) track(p *stack.Proc) {
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
}

// stopAll stops every process the suite started, newest first.
func (e *Env) stopAll() {
	e.mu.Lock()
	procs := append([]*stack.Proc(nil), e.procs...)
	e.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		_ = procs[i].Stop(10 * time.Second)
	}
}

func TestMain(m *testing.M) {
	code := run(m)
	os.Exit(code)
}

func run(m *testing.M) int {
	root, err := stack.Root()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	missing := stack.NeedBuild(root, "build/ghostd", "build/libvmod_ghost.so", "build/upstream")
	for _, bin := range []string{"varnishd", "varnishadm"} {
		if _, err := exec.LookPath(bin); err != nil && missing == nil {
			missing = err
		}
	}
	if missing != nil {
		skipReason = "e2e: " + missing.Error()
		fmt.Fprintln(os.Stderr, skipReason)
		return m.Run()
	}
	e, err := setup(root)
	if e != nil {
		defer func() {
			e.stopAll()
			if os.Getenv("GHOST_E2E_KEEP") == "" && !failed {
				os.RemoveAll(e.Dir)
			} else {
				fmt.Fprintf(os.Stderr, "e2e: staging directory kept: %s (logs in %s)\n", e.Dir, e.Logs)
			}
		}()
	}
	if err != nil {
		failed = true
		fmt.Fprintln(os.Stderr, "e2e: setup failed:", err)
		if e != nil {
			e.dumpLogs()
		}
		return 1
	}
	E = e
	code := m.Run()
	if code != 0 {
		failed = true
		e.dumpLogs()
	}
	return code
}

var failed bool

// dumpLogs prints the tail of every process log, for a failing run.
func (e *Env) dumpLogs() {
	ents, _ := os.ReadDir(e.Logs)
	for _, ent := range ents {
		tail := stack.Tail(filepath.Join(e.Logs, ent.Name()), 25)
		fmt.Fprintf(os.Stderr, "----- %s (last lines)\n%s\n", ent.Name(), tail)
	}
}

// need skips the test when the artifacts are missing.
func need(t *testing.T) *Env {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if E == nil {
		t.Fatal("e2e environment not set up")
	}
	return E
}

func setup(root string) (*Env, error) {
	dir, err := stack.StageDir("ghost-e2e-")
	if err != nil {
		return nil, err
	}
	e := &Env{
		Root: root,
		Dir:  dir,
		Sock: filepath.Join(dir, "g.sock"),
		Conf: filepath.Join(dir, "ghost.json"),
		Logs: filepath.Join(dir, "logs"),
	}
	if err := os.Mkdir(e.Logs, 0o755); err != nil {
		return e, err
	}
	if _, err := stack.StageVCL(root, dir, "", e.Sock, ""); err != nil {
		return e, err
	}
	if err := e.startUpstreams(); err != nil {
		return e, err
	}
	if err := e.WriteConfig(BaseConfig(e)); err != nil {
		return e, err
	}
	if err := e.startGhostd(); err != nil {
		return e, err
	}
	v, err := stack.StartVarnishd(stack.VarnishdOpts{Dir: dir, VCL: filepath.Join(dir, "main.vcl"),
		Listen: []string{"http", "proxy,PROXY"}})
	if err != nil {
		return e, err
	}
	e.track(v.Proc)
	e.varnishd, e.HTTP, e.Proxy = v, v.Listen["http"], v.Listen["proxy"]
	return e, nil
}

// startUpstreams starts one port per upstream key; keys "name#2" are a
// second port answering as name.
func (e *Env) startUpstreams() error {
	count := map[string]int{}
	for _, k := range UpstreamKeys() {
		count[UpstreamName(k)]++
	}
	u, err := stack.StartUpstreams(e.Root, e.Logs, count)
	if err != nil {
		return err
	}
	e.track(u.Proc)
	e.Ports, e.Names = map[string]int{}, map[string]string{}
	seen := map[string]int{}
	for _, k := range UpstreamKeys() {
		n := UpstreamName(k)
		e.Ports[k], e.Names[k] = u.Port(n, seen[n]), n
		seen[n]++
	}
	return nil
}

// ghostdArgs is the ghostd command line for the staged config and socket.
// The reload endpoint tests need to know that only an explicit reload
// changes the table, so file watching is off for this instance.
func (e *Env) ghostdArgs() []string {
	return stack.GhostdArgs(e.Root, e.Conf, e.Sock, e.Metrics, "debug", "-watch=false")
}

func (e *Env) startGhostd() error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := stack.FreePorts(1)
		if err != nil {
			return err
		}
		e.Metrics = fmt.Sprintf("127.0.0.1:%d", ports[0])
		name := fmt.Sprintf("ghostd-%d", attempt)
		p, err := stack.StartGhostd(name, filepath.Join(e.Logs, "ghostd.log"), e.Sock, stack.Opts{}, e.ghostdArgs()...)
		if err != nil {
			lastErr = err
			continue
		}
		e.track(p)
		e.ghostd = p
		return nil
	}
	return fmt.Errorf("ghostd: %w", lastErr)
}

// VarnishAdm runs a varnishadm command against the suite's varnishd.
func (e *Env) VarnishAdm(args ...string) (string, error) { return e.varnishd.Adm(args...) }

// GhostdLogTail returns the last n lines of the current ghostd's log.
func (e *Env) GhostdLogTail(n int) string {
	if e.ghostd == nil {
		return ""
	}
	return e.ghostd.LogTail(n)
}

// httpGetDirect fetches a URL without going through varnishd (metrics).
func httpGetDirect(url string) (int, string, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, string(b), nil
}

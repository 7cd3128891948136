// Package e2e is ghost's end-to-end suite: real upstreams (build/upstream),
// a real ghostd and a real varnishd (default jail, so the child runs as
// vcache) with vcl/ghost.vcl and build/libvmod_ghost.so, all driven over
// HTTP. TestMain stages the artifacts in a 0755 directory under /tmp,
// starts everything on free loopback ports and stops it all by PID at the
// end, also when a test fails.
//
// Run it with `make test-e2e` or `go test -count=1 -v ./test/e2e/` after
// `make build`. GHOST_E2E_KEEP=1 keeps the staging directory (logs, configs).
package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// E is the running environment every test talks to.
var E *Env

// skipReason is set when the artifacts are missing; every test skips with it.
var skipReason string

// Env is one staged ghost stack.
type Env struct {
	Root  string // repository root
	Dir   string // staging directory (0755, under /tmp)
	Sock  string // ghostd socket, staged
	Conf  string // ghost.json, staged
	Logs  string // directory for process logs (inside Dir)
	Ghost string // build/ghostd (absolute)

	HTTP    string // varnishd main listener, "127.0.0.1:port" (socket name "http")
	Proxy   string // varnishd PROXY-protocol listener (socket name "proxy")
	Admin   string // varnishd -T address
	Secret  string // varnishd -S file
	WorkDir string // varnishd -n
	Metrics string // ghostd -metrics address

	Ports map[string]int    // upstream key -> port
	Names map[string]string // upstream key -> name it answers with (X-Upstream)

	mu       sync.Mutex
	procs    []*Proc
	ghostd   *Proc // the current ghostd (replaced by the socket-activation tests)
	varnishd *Proc
}

// Proc is a child process started by the suite.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
	done chan struct{}
	err  error
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM to the process (and its process group when it has
// one of its own), waits up to grace, then SIGKILLs.
func (p *Proc) Stop(grace time.Duration) error {
	if p == nil || p.Cmd.Process == nil {
		return nil
	}
	pid := p.Cmd.Process.Pid
	if !p.Exited() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-p.done
		}
	}
	if p.Cmd.SysProcAttr != nil && p.Cmd.SysProcAttr.Setpgid {
		// Children left in the group (e.g. varnishd's cache-main when the
		// manager had to be killed) are ours too.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	return p.err
}

// start launches a child process with its output in <Logs>/<name>.log.
// ownGroup puts it in its own process group. extra are inherited fds
// (fd 3 onwards).
func (e *Env) start(name string, env []string, extra []*os.File, ownGroup bool, argv ...string) (*Proc, error) {
	logPath := filepath.Join(e.Logs, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(lf, "=== %s: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: ownGroup}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

// stopAll stops every process the suite started, newest first.
func (e *Env) stopAll() {
	e.mu.Lock()
	procs := append([]*Proc(nil), e.procs...)
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
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	var missing []string
	for _, f := range []string{"build/ghostd", "build/libvmod_ghost.so", "build/upstream"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			missing = append(missing, f)
		}
	}
	for _, bin := range []string{"varnishd", "varnishadm"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		skipReason = "e2e: missing " + strings.Join(missing, ", ") + " — run `make build` first (make test does)"
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
		b, err := os.ReadFile(filepath.Join(e.Logs, ent.Name()))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		fmt.Fprintf(os.Stderr, "----- %s (last %d lines)\n%s\n", ent.Name(), len(lines), strings.Join(lines, "\n"))
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
	dir, err := os.MkdirTemp("/tmp", "ghost-e2e-")
	if err != nil {
		return nil, err
	}
	e := &Env{
		Root:  root,
		Dir:   dir,
		Sock:  filepath.Join(dir, "g.sock"),
		Conf:  filepath.Join(dir, "ghost.json"),
		Logs:  filepath.Join(dir, "logs"),
		Ghost: filepath.Join(root, "build/ghostd"),
	}
	// The varnish and vcache users must traverse and read the staging dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return e, err
	}
	if err := os.Mkdir(e.Logs, 0o755); err != nil {
		return e, err
	}
	for _, f := range [][2]string{
		{"build/libvmod_ghost.so", "libvmod_ghost.so"},
		{"vcl/ghost.vcl", "ghost.vcl"},
	} {
		if err := copyFile(filepath.Join(root, f[0]), filepath.Join(dir, f[1]), 0o644); err != nil {
			return e, err
		}
	}
	mainVCL := fmt.Sprintf("vcl 4.1;\nimport ghost from %q;\ninclude %q;\nsub vcl_init {\n\tghost.init(%q);\n}\n",
		filepath.Join(dir, "libvmod_ghost.so"), filepath.Join(dir, "ghost.vcl"), e.Sock)
	if err := os.WriteFile(filepath.Join(dir, "main.vcl"), []byte(mainVCL), 0o644); err != nil {
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
	if err := e.startVarnishd(); err != nil {
		return e, err
	}
	return e, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitTCP waits until addr accepts connections or p exits.
func waitTCP(addr string, p *Proc, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before %s was ready: %v", p.Name, addr, p.err)
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v", addr, d)
}

// waitUnix waits until the Unix socket at path accepts connections.
func waitUnix(path string, p *Proc, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before %s was ready: %v", p.Name, path, p.err)
		}
		c, err := net.DialTimeout("unix", path, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("socket %s not ready after %v", path, d)
}

func (e *Env) startUpstreams() error {
	keys := UpstreamKeys()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(len(keys))
		if err != nil {
			return err
		}
		e.Ports, e.Names = map[string]int{}, map[string]string{}
		argv := []string{filepath.Join(e.Root, "build/upstream")}
		for i, k := range keys {
			e.Ports[k] = ports[i]
			e.Names[k] = UpstreamName(k)
			argv = append(argv, "-listen", fmt.Sprintf("127.0.0.1:%d=%s", ports[i], e.Names[k]))
		}
		p, err := e.start(fmt.Sprintf("upstream-%d", attempt), nil, nil, false, argv...)
		if err != nil {
			return err
		}
		ok := true
		for _, port := range ports {
			if err := waitTCP(fmt.Sprintf("127.0.0.1:%d", port), p, 5*time.Second); err != nil {
				lastErr, ok = err, false
				break
			}
		}
		if ok {
			return nil
		}
		_ = p.Stop(2 * time.Second)
	}
	return fmt.Errorf("upstreams: %w", lastErr)
}

// ghostdArgs is the ghostd command line for the staged config and socket.
// The reload endpoint tests need to know that only an explicit reload
// changes the table, so file watching is off for this instance.
func (e *Env) ghostdArgs() []string {
	return []string{e.Ghost, "-config", e.Conf, "-socket", e.Sock, "-socket-mode", "0666",
		"-metrics", e.Metrics, "-log-level", "debug", "-watch=false"}
}

func (e *Env) startGhostd() error {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		e.Metrics = fmt.Sprintf("127.0.0.1:%d", ports[0])
		p, err := e.start("ghostd", nil, nil, false, e.ghostdArgs()...)
		if err != nil {
			return err
		}
		if lastErr = waitUnix(e.Sock, p, 10*time.Second); lastErr != nil {
			_ = p.Stop(5 * time.Second)
			continue
		}
		e.ghostd = p
		return nil
	}
	return fmt.Errorf("ghostd: %w", lastErr)
}

func (e *Env) startVarnishd() error {
	e.Secret = filepath.Join(e.Dir, "secret")
	if err := os.WriteFile(e.Secret, []byte(strconv.FormatInt(time.Now().UnixNano(), 36)+"-ghost-e2e\n"), 0o600); err != nil {
		return err
	}
	e.WorkDir = filepath.Join(e.Dir, "varnish")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		ports, err := freePorts(3)
		if err != nil {
			return err
		}
		e.HTTP = fmt.Sprintf("127.0.0.1:%d", ports[0])
		e.Proxy = fmt.Sprintf("127.0.0.1:%d", ports[1])
		e.Admin = fmt.Sprintf("127.0.0.1:%d", ports[2])
		p, err := e.start(fmt.Sprintf("varnishd-%d", attempt), nil, nil, true,
			"varnishd", "-F",
			"-n", e.WorkDir,
			"-a", "http="+e.HTTP,
			"-a", "proxy="+e.Proxy+",PROXY",
			"-T", e.Admin, "-S", e.Secret,
			"-f", filepath.Join(e.Dir, "main.vcl"),
			"-s", "malloc,64m",
			"-P", filepath.Join(e.Dir, "varnishd.pid"))
		if err != nil {
			return err
		}
		if err := waitTCP(e.HTTP, p, 60*time.Second); err != nil {
			lastErr = err
			_ = p.Stop(5 * time.Second)
			continue
		}
		e.varnishd = p
		return nil
	}
	return fmt.Errorf("varnishd: %w", lastErr)
}

// VarnishAdm runs a varnishadm command against the suite's varnishd.
func (e *Env) VarnishAdm(args ...string) (string, error) {
	argv := append([]string{"-T", e.Admin, "-S", e.Secret}, args...)
	out, err := exec.Command("varnishadm", argv...).CombinedOutput()
	return string(out), err
}

// GhostdLogTail returns the last n lines of the current ghostd's log.
func (e *Env) GhostdLogTail(n int) string {
	if e.ghostd == nil {
		return ""
	}
	b, _ := os.ReadFile(e.ghostd.Log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
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

package fault

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// shimTimeout is the ghost.init() default timeout (docs/design.md); the
// staged VCL does not override it.
const shimTimeout = 100 * time.Millisecond

var (
	longMode = os.Getenv("GHOST_FAULT_LONG") == "1"
	repoRoot string
)

// pick returns the short-form or the long-form value.
func pick[T any](short, long T) T {
	if longMode {
		return long
	}
	return short
}

func TestMain(m *testing.M) {
	root, err := filepath.Abs("../..")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	repoRoot = root
	raiseNofile()
	started := time.Now()
	load0 := loadAvg()
	code := m.Run()
	writeReport(started, load0)
	os.Exit(code)
}

// raiseNofile lifts RLIMIT_NOFILE for this process and, because it is set
// explicitly, for the ghostd and varnishd processes started from it.
func raiseNofile() {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil || rl.Cur >= 65536 {
		return
	}
	want := syscall.Rlimit{Cur: 65536, Max: max(rl.Max, 65536)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) != nil {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

func requireParts(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("fault tests start varnishd with its default jail and need root")
	}
	for _, p := range []string{"build/ghostd", "build/libvmod_ghost.so", "build/upstream", "vcl/ghost.vcl"} {
		if _, err := os.Stat(filepath.Join(repoRoot, p)); err != nil {
			t.Fatalf("%s is missing (run `make build`): %v", p, err)
		}
	}
	for _, b := range []string{"varnishd", "varnishadm", "varnishstat", "varnishlog"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Fatalf("%s not found: %v", b, err)
		}
	}
}

// ---------------------------------------------------------------- upstreams

type upstreams struct {
	cmd   *exec.Cmd
	done  chan struct{}
	ports map[string][]int // name -> ports, in order
}

func (u *upstreams) port(name string, i int) int { return u.ports[name][i] }

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			_ = l.Close()
		}
	}()
	var ports []int
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

// startUpstreams runs one build/upstream process serving count[name]
// loopback ports for every name.
func startUpstreams(t *testing.T, dir string, count map[string]int) *upstreams {
	t.Helper()
	names := make([]string, 0, len(count))
	total := 0
	for n, c := range count {
		names = append(names, n)
		total += c
	}
	sort.Strings(names)
	var lastErr error
	for attempt := range 3 {
		ports, err := freePorts(total)
		if err != nil {
			t.Fatalf("free ports: %v", err)
		}
		u := &upstreams{ports: map[string][]int{}, done: make(chan struct{})}
		var args []string
		i := 0
		for _, n := range names {
			for range count[n] {
				u.ports[n] = append(u.ports[n], ports[i])
				args = append(args, "-listen", fmt.Sprintf("127.0.0.1:%d=%s", ports[i], n))
				i++
			}
		}
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("upstream-%d.log", attempt)))
		u.cmd = exec.Command(filepath.Join(repoRoot, "build/upstream"), args...)
		u.cmd.Stdout, u.cmd.Stderr = logf, logf
		if err := u.cmd.Start(); err != nil {
			t.Fatalf("start upstream: %v", err)
		}
		go func() { _ = u.cmd.Wait(); _ = logf.Close(); close(u.done) }()
		if lastErr = u.waitReady(5 * time.Second); lastErr == nil {
			t.Cleanup(u.stop)
			return u
		}
		u.stop()
	}
	t.Fatalf("upstreams did not start: %v", lastErr)
	return nil
}

func (u *upstreams) waitReady(d time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(d)
	for name, ports := range u.ports {
		for _, p := range ports {
			for {
				select {
				case <-u.done:
					return errors.New("upstream process exited")
				default:
				}
				resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", p))
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if got := resp.Header.Get("X-Upstream"); got != name {
						return fmt.Errorf("port %d answers as %q, want %q", p, got, name)
					}
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("port %d: %v", p, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	return nil
}

func (u *upstreams) stop() {
	_ = u.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-u.done:
	case <-time.After(3 * time.Second):
		_ = u.cmd.Process.Kill()
		<-u.done
	}
}

// ---------------------------------------------------------------- ghostd

type ghostd struct {
	cmd     *exec.Cmd
	pid     int
	done    chan struct{}
	logPath string
}

func (g *ghostd) alive() bool {
	select {
	case <-g.done:
		return false
	default:
		return true
	}
}

func (g *ghostd) signal(s syscall.Signal) error { return g.cmd.Process.Signal(s) }

// waitExit waits for the process to exit, killing it after d.
func (g *ghostd) waitExit(d time.Duration) {
	select {
	case <-g.done:
	case <-time.After(d):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
}

// rssKB reads VmRSS from /proc/<pid>/status.
func rssKB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

// stateFile is ghostd's 64-byte state file (docs/protocol.md).
type stateFile struct {
	gen, heartbeatMS uint64
	pid              int
}

func readState(path string) (stateFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return stateFile{}, err
	}
	if len(b) < 32 || string(b[:8]) != "GHOSTST1" {
		return stateFile{}, fmt.Errorf("state file %s: bad magic or size %d", path, len(b))
	}
	return stateFile{
		gen:         binary.LittleEndian.Uint64(b[8:]),
		heartbeatMS: binary.LittleEndian.Uint64(b[16:]),
		pid:         int(binary.LittleEndian.Uint64(b[24:])),
	}, nil
}

// ---------------------------------------------------------------- wire

func writeFrame(c io.Writer, v any) error {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return err
	}
	hdr := make([]byte, 4, 4+len(b))
	binary.BigEndian.PutUint32(hdr, uint32(len(b)))
	_, err = c.Write(append(hdr, b...))
	return err
}

func readFrame(c net.Conn) (map[string]any, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > 1<<20 {
		return nil, fmt.Errorf("bad frame length %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	var m map[string]any
	if err := msgpack.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func asInt(v any) int64 {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		return int64(x)
	case int:
		return int64(x)
	}
	return 0
}

func asString(v any) string {
	s, _ := v.(string)
	return s
}

// dialGhostd connects and completes the hello handshake.
func dialGhostd(sock string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("unix", sock, timeout)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := writeFrame(c, map[string]any{"t": "hello", "v": 1, "client": "ghost-fault-test"}); err != nil {
		_ = c.Close()
		return nil, err
	}
	m, err := readFrame(c)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	if asString(m["t"]) != "hello" {
		_ = c.Close()
		return nil, fmt.Errorf("hello answered with %v", m)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// ghostdCall asks one question on a fresh connection.
func ghostdCall(sock string, req map[string]any, timeout time.Duration) (map[string]any, error) {
	c, err := dialGhostd(sock, timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if err := writeFrame(c, req); err != nil {
		return nil, err
	}
	return readFrame(c)
}

// ---------------------------------------------------------------- varnishd

type varnish struct {
	ndir string
	pid  int // manager
	addr string
}

func (v *varnish) adm(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "varnishadm", append([]string{"-n", v.ndir}, args...)...).CombinedOutput()
	return string(out), err
}

// stats returns the named counters from varnishstat -1.
func (v *varnish) stats(names ...string) map[string]int64 {
	args := []string{"-n", v.ndir, "-1"}
	for _, n := range names {
		args = append(args, "-f", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, "varnishstat", args...).Output()
	m := map[string]int64{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				m[f[0]] = n
			}
		}
	}
	return m
}

func (v *varnish) threads() int64 { return v.stats("MAIN.threads")["MAIN.threads"] }

// childPid finds the cache-main process (the manager's child).
func (v *varnish) childPid() int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 2 {
			if pp, _ := strconv.Atoi(f[1]); pp == v.pid {
				return pid
			}
		}
	}
	return 0
}

func (v *varnish) stop() {
	if v.pid <= 0 {
		return
	}
	child := v.childPid()
	_ = syscall.Kill(v.pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(v.pid, 0) != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(v.pid, syscall.SIGKILL)
	if child > 0 {
		_ = syscall.Kill(child, syscall.SIGKILL)
	}
}

// vlog is a varnishlog process writing to a file.
type vlog struct {
	cmd  *exec.Cmd
	path string
	done chan struct{}
}

func (v *varnish) startLog(path string, args ...string) (*vlog, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	l := &vlog{path: path, done: make(chan struct{})}
	l.cmd = exec.Command("varnishlog", append([]string{"-n", v.ndir}, args...)...)
	l.cmd.Stdout, l.cmd.Stderr = f, f
	if err := l.cmd.Start(); err != nil {
		_ = f.Close()
		return nil, err
	}
	go func() { _ = l.cmd.Wait(); _ = f.Close(); close(l.done) }()
	time.Sleep(500 * time.Millisecond) // let it attach to the shared memory log
	return l, nil
}

// stop ends varnishlog (once) and returns what it wrote.
func (l *vlog) stop() string {
	_ = l.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.done
	}
	b, _ := os.ReadFile(l.path)
	return string(b)
}

// explain5xx logs the reason lines of the first 5xx request groups seen
// by varnishlog since varnishd started.
func (e *env) explain5xx(n int) {
	e.t.Helper()
	if e.vl5xx == nil {
		return
	}
	txt := e.vl5xx.stop()
	groups := logGroups(txt)
	e.t.Logf("varnishlog recorded %d 5xx request groups; reasons of the first %d:", len(groups), min(n, len(groups)))
	for i, g := range groups {
		if i == n {
			break
		}
		var keep []string
		for _, l := range strings.Split(g, "\n") {
			for _, tag := range []string{"ReqURL", "ReqHeader      Host:", "FetchError", "BerespReason", "BerespStatus", "VCL_Log", " Error ", "RespStatus", "Timestamp      Beresp", "Timestamp      Resp"} {
				if strings.Contains(l, tag) {
					keep = append(keep, strings.TrimSpace(l))
					break
				}
			}
		}
		e.t.Logf("  %s", strings.Join(keep, " | "))
	}
}

// logGroups splits `varnishlog -g request` output into top-level groups.
func logGroups(s string) []string {
	var groups []string
	var cur strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "* ") && cur.Len() > 0 {
			groups = append(groups, cur.String())
			cur.Reset()
		}
		cur.WriteString(l)
		cur.WriteByte('\n')
	}
	if strings.TrimSpace(cur.String()) != "" {
		groups = append(groups, cur.String())
	}
	return groups
}

// ---------------------------------------------------------------- env

type env struct {
	t      *testing.T
	dir    string // staged, 0755
	sock   string
	cfg    string
	ups    *upstreams
	gd     *ghostd
	all    []*ghostd
	v      *varnish
	client *http.Client
	nlog   int
	vl5xx  *vlog // varnishlog of every 5xx request group since varnishd started
	// summarized is set once the scenario recorded its figures; a scenario
	// that stops earlier is recorded as aborted.
	summarized bool
}

type envOpts struct {
	upstreams map[string]int                  // name -> number of ports; default baseUpstreams
	config    func(*upstreams) map[string]any // the initial ghost.json; default baseConfig
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	requireParts(t)
	dir, err := os.MkdirTemp("/tmp", "ghost-fault-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, sock: filepath.Join(dir, "g.sock"), cfg: filepath.Join(dir, "ghost.json")}
	began := time.Now()
	t.Cleanup(func() {
		if !e.summarized {
			report.Lock()
			report.list = append(report.list, scenarioResult{name: t.Name(), pass: !t.Failed(),
				notes: "stopped before its summary (see the test log)", elapsed: time.Since(began)})
			report.Unlock()
		}
		if t.Failed() {
			e.dumpLogs()
			t.Logf("kept %s for inspection", dir)
			return
		}
		if os.Getenv("GHOST_FAULT_KEEP") == "1" {
			t.Logf("kept %s (GHOST_FAULT_KEEP=1)", dir)
			return
		}
		_ = os.RemoveAll(dir)
	})
	if o.upstreams == nil {
		o.upstreams = baseUpstreams()
	}
	if o.config == nil {
		o.config = baseConfig
	}
	e.ups = startUpstreams(t, dir, o.upstreams)
	e.writeConfig(o.config(e.ups))
	return e
}

// start brings up ghostd (bound by itself) and varnishd.
func (e *env) start() {
	e.t.Helper()
	e.startGhostd(nil)
	e.startVarnish()
}

func (e *env) dumpLogs() {
	for _, g := range e.all {
		b, _ := os.ReadFile(g.logPath)
		s := string(b)
		if len(s) > 4000 {
			s = "..." + s[len(s)-4000:]
		}
		e.t.Logf("%s (pid %d):\n%s", filepath.Base(g.logPath), g.pid, s)
	}
}

func (e *env) writeConfig(cfg map[string]any) {
	e.t.Helper()
	b, err := json.MarshalIndent(cfg, "", " ")
	if err != nil {
		e.t.Fatal(err)
	}
	e.writeConfigBytes(b)
}

// writeConfigBytes writes the file with write-then-rename.
func (e *env) writeConfigBytes(b []byte) {
	e.t.Helper()
	tmp := e.cfg + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.cfg); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) ghostdArgs() []string {
	return []string{"-config", e.cfg, "-socket", e.sock, "-socket-mode", "0666",
		"-metrics", "", "-log-level", "info"}
}

// startGhostd starts a ghostd; with a listener file it is socket-activated
// (fd 3, LISTEN_FDS=1, LISTEN_PID set by a sh wrapper before exec). It
// returns once the state file names the new process and it answers status.
func (e *env) startGhostd(listener *os.File) *ghostd {
	e.t.Helper()
	e.nlog++
	g := &ghostd{done: make(chan struct{}), logPath: filepath.Join(e.dir, fmt.Sprintf("ghostd-%d.log", e.nlog))}
	logf, err := os.Create(g.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	bin := filepath.Join(repoRoot, "build/ghostd")
	if listener != nil {
		args := append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, bin}, e.ghostdArgs()...)
		g.cmd = exec.Command("/bin/sh", args...)
		g.cmd.ExtraFiles = []*os.File{listener}
		g.cmd.Env = append(cleanEnv(), "LISTEN_FDS=1")
	} else {
		g.cmd = exec.Command(bin, e.ghostdArgs()...)
		g.cmd.Env = cleanEnv()
	}
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	if err := g.cmd.Start(); err != nil {
		e.t.Fatalf("start ghostd: %v", err)
	}
	g.pid = g.cmd.Process.Pid
	go func() { _ = g.cmd.Wait(); _ = logf.Close(); close(g.done) }()
	e.all = append(e.all, g)
	e.gd = g
	e.t.Cleanup(func() {
		if g.alive() {
			_ = g.signal(syscall.SIGCONT)
			_ = g.signal(syscall.SIGTERM)
			g.waitExit(5 * time.Second)
		}
	})
	if err := e.waitGhostd(g, 10*time.Second); err != nil {
		e.t.Fatalf("ghostd (pid %d) not ready: %v", g.pid, err)
	}
	return g
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LISTEN_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			out = append(out, kv)
		}
	}
	return out
}

func (e *env) waitGhostd(g *ghostd, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		if !g.alive() {
			return fmt.Errorf("exited: %s", g.cmd.ProcessState)
		}
		st, err := readState(e.sock + ".state")
		switch {
		case err != nil:
			last = err
		case st.pid != g.pid:
			last = fmt.Errorf("state file names pid %d", st.pid)
		default:
			if _, err := ghostdCall(e.sock, map[string]any{"t": "status"}, time.Second); err != nil {
				last = err
			} else {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return last
}

func (e *env) status() (map[string]any, error) {
	return ghostdCall(e.sock, map[string]any{"t": "status"}, 2*time.Second)
}

func (e *env) mainVCL() string {
	return fmt.Sprintf("vcl 4.1;\nimport ghost from %q;\ninclude %q;\nsub vcl_init { ghost.init(%q); }\n",
		filepath.Join(e.dir, "libvmod_ghost.so"), filepath.Join(e.dir, "ghost.vcl"), e.sock)
}

func copyFile(dst, src string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func (e *env) startVarnish() {
	e.t.Helper()
	ghostVCL := filepath.Join(repoRoot, "vcl/ghost.vcl")
	if p := os.Getenv("GHOST_FAULT_VCL"); p != "" { // try a candidate ghost.vcl
		ghostVCL = p
	}
	for _, f := range [][2]string{{"libvmod_ghost.so", filepath.Join(repoRoot, "build/libvmod_ghost.so")}, {"ghost.vcl", ghostVCL}} {
		if err := copyFile(filepath.Join(e.dir, f[0]), f[1]); err != nil {
			e.t.Fatal(err)
		}
	}
	vclPath := filepath.Join(e.dir, "main.vcl")
	if err := os.WriteFile(vclPath, []byte(e.mainVCL()), 0o644); err != nil {
		e.t.Fatal(err)
	}
	v := &varnish{ndir: filepath.Join(e.dir, "n")}
	pidFile := filepath.Join(e.dir, "varnishd.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "varnishd", "-n", v.ndir, "-a", "127.0.0.1:0", "-T", "127.0.0.1:0",
		"-f", vclPath, "-s", "malloc,64m", "-P", pidFile,
		"-p", "thread_pool_min=20", "-p", "thread_pool_max=1000").CombinedOutput()
	if err != nil {
		e.t.Fatalf("varnishd: %v\n%s", err, out)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		e.t.Fatalf("varnishd pid file: %v", err)
	}
	v.pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	e.v = v
	e.t.Cleanup(v.stop)
	la, err := v.adm("debug.listen_address")
	if err != nil {
		e.t.Fatalf("debug.listen_address: %v %s", err, la)
	}
	for _, l := range strings.Split(la, "\n") {
		if f := strings.Fields(l); len(f) == 3 {
			v.addr = net.JoinHostPort(f[1], f[2])
			break
		}
	}
	if v.addr == "" {
		e.t.Fatalf("no listen address in %q", la)
	}
	e.client = &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: 64, MaxIdleConns: 64, DisableCompression: true,
			DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if e.vl5xx, err = v.startLog(filepath.Join(e.dir, "varnishlog-5xx.txt"), "-g", "request", "-q", "RespStatus >= 500"); err != nil {
		e.t.Fatalf("varnishlog: %v", err)
	}
	e.t.Cleanup(func() { e.vl5xx.stop() })
	// Routing works end to end before any fault.
	deadline := time.Now().Add(15 * time.Second)
	for _, tg := range baseTargets() {
		for {
			r := e.do(tg)
			if r.ok(tg) {
				break
			}
			if time.Now().After(deadline) {
				e.t.Fatalf("routing through varnish does not work: %s -> status %d upstream %q err %v",
					tg, r.status, r.upstream, r.err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// ---------------------------------------------------------------- config

func baseUpstreams() map[string]int {
	return map[string]int{"u0": 1, "u1": 1, "u2": 1, "u3": 1, "u4": 1, "u5": 1}
}

func be(port int) map[string]any { return map[string]any{"address": "127.0.0.1", "port": port} }

func pm(typ, val string) map[string]any { return map[string]any{"type": typ, "value": val} }

func rt(path map[string]any, port int, extra ...any) map[string]any {
	r := map[string]any{"path_match": path, "backends": []any{be(port)}}
	for i := 0; i+1 < len(extra); i += 2 {
		r[extra[i].(string)] = extra[i+1]
	}
	return r
}

// baseConfig is the table every scenario's load is checked against.
func baseConfig(u *upstreams) map[string]any {
	p := func(n string) int { return u.port(n, 0) }
	return map[string]any{
		"version": 2,
		"vhosts": map[string]any{
			"a.test": map[string]any{
				"routes": []any{
					rt(pm("PathPrefix", "/a0"), p("u0")),
					rt(pm("PathPrefix", "/a1"), p("u1")),
					rt(pm("Exact", "/x"), p("u2")),
					rt(pm("PathPrefix", "/h"), p("u3"), "headers",
						[]any{map[string]any{"name": "x-env", "value": "canary", "type": "Exact"}}),
					rt(pm("PathPrefix", "/h"), p("u4")),
					rt(pm("PathPrefix", "/m"), p("u5"), "method", "POST"),
					rt(pm("PathPrefix", "/m"), p("u0"), "method", "GET"),
					rt(pm("RegularExpression", "^/r/[0-9]+$"), p("u1")),
					rt(pm("PathPrefix", "/q"), p("u2"), "query_params",
						[]any{map[string]any{"name": "v", "value": "2", "type": "Exact"}}),
					rt(pm("PathPrefix", "/q"), p("u3")),
				},
				"default_backends": []any{be(p("u5"))},
			},
			"*.wild.test": map[string]any{
				"routes":           []any{rt(pm("PathPrefix", "/w"), p("u2"))},
				"default_backends": []any{be(p("u1"))},
			},
			"b.test": map[string]any{
				"routes": []any{rt(pm("PathPrefix", "/"), p("u4"))},
			},
			"spoof.test": map[string]any{
				"routes": []any{
					rt(pm("PathPrefix", "/"), p("u5"), "method", "POST"),
					rt(pm("PathPrefix", "/"), p("u3"), "listeners", []any{"other"}),
					rt(pm("PathPrefix", "/"), p("u2"), "headers",
						[]any{map[string]any{"name": "x-ghost-route", "value": "u2", "type": "Exact"}}),
				},
				"default_backends": []any{be(p("u0"))},
			},
		},
	}
}

// ---------------------------------------------------------------- load

type target struct {
	Method, Host, Path string
	Hdr                [][2]string
	Want               string // expected X-Upstream ("" when a status without upstream is expected)
	WantStatus         int    // 0 = 200
	// Tail: every request is a new URL, "-<n>" appended to the path
	// (before the query), n counting across the load.
	Tail bool
}

// tailPath appends "-<n>" to the path part of p.
func tailPath(p string, n int64) string {
	path, q, _ := strings.Cut(p, "?")
	out := path + "-" + strconv.FormatInt(n, 10)
	if q != "" || strings.Contains(p, "?") {
		out += "?" + q
	}
	return out
}

func (tg target) String() string {
	m := tg.Method
	if m == "" {
		m = "GET"
	}
	return fmt.Sprintf("%s %s%s%v", m, tg.Host, tg.Path, tg.Hdr)
}

func (tg target) status() int {
	if tg.WantStatus == 0 {
		return 200
	}
	return tg.WantStatus
}

func baseTargets() []target {
	return []target{
		{Host: "a.test", Path: "/a0", Want: "u0"},
		{Host: "a.test", Path: "/a1/deep", Want: "u1"},
		{Host: "a.test", Path: "/x", Want: "u2"},
		{Host: "a.test", Path: "/h", Hdr: [][2]string{{"X-Env", "canary"}}, Want: "u3"},
		{Host: "a.test", Path: "/h", Want: "u4"},
		{Host: "a.test", Path: "/m", Want: "u0"},
		{Method: "POST", Host: "a.test", Path: "/m", Want: "u5"},
		{Host: "a.test", Path: "/r/123", Want: "u1"},
		{Host: "a.test", Path: "/q?v=2", Want: "u2"},
		{Host: "a.test", Path: "/q?v=3", Want: "u3"},
		{Host: "a.test", Path: "/elsewhere", Want: "u5"},
		{Host: "A.Test:80", Path: "/a0/y", Want: "u0"},
		{Host: "x.wild.test", Path: "/w/1", Want: "u2"},
		{Host: "y.z.wild.test", Path: "/z", Want: "u1"},
		{Host: "b.test", Path: "/anything", Want: "u4"},
		{Host: "spoof.test", Path: "/s", Want: "u0"},
		{Host: "nowhere.test", Path: "/", WantStatus: 404},
	}
}

type sample struct {
	start, end time.Time
	status     int
	upstream   string
	err        error
	target     int
	leak       string // an X-Ghost-* header the upstream received, if any
}

func (s sample) ok(tg target) bool {
	return s.err == nil && s.status == tg.status() && s.upstream == tg.Want
}

// failed: no answer or a 5xx. misrouted: an answer that is not the
// expected one (wrong upstream, or a 2xx-4xx status other than expected).
func (s sample) failed() bool { return s.err != nil || s.status >= 500 }

func (e *env) do(tg target) sample {
	var body io.Reader
	m := tg.Method
	if m == "" {
		m = http.MethodGet
	}
	if m == http.MethodPost {
		body = strings.NewReader("payload")
	}
	s := sample{start: time.Now()}
	req, err := http.NewRequest(m, "http://"+e.v.addr+tg.Path, body)
	if err != nil {
		s.err = err
		s.end = time.Now()
		return s
	}
	req.Host = tg.Host
	for _, h := range tg.Hdr {
		req.Header.Add(h[0], h[1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		s.err = err
		s.end = time.Now()
		return s
	}
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	s.end = time.Now()
	s.status = resp.StatusCode
	s.upstream = resp.Header.Get("X-Upstream")
	if s.upstream != "" && bytes.Contains(rb, []byte(`"x-ghost-`)) {
		var echo struct {
			Headers map[string][]string `json:"headers"`
		}
		if json.Unmarshal(rb, &echo) == nil {
			for k, v := range echo.Headers {
				if strings.HasPrefix(k, "x-ghost-") {
					s.leak = k + ": " + strings.Join(v, ",")
				}
			}
		}
	}
	return s
}

type loadGen struct {
	e       *env
	targets []target
	stopc   chan struct{}
	wg      sync.WaitGroup
	res     [][]sample
	once    sync.Once
	seq     atomic.Int64 // Tail targets
}

type loadOpts struct {
	conc     int           // workers
	interval time.Duration // per worker, between request starts
	maxDur   time.Duration // hard bound
	maxCount int           // hard bound per worker
}

func defaultLoad() loadOpts {
	return loadOpts{conc: 6, interval: 5 * time.Millisecond, maxDur: 150 * time.Second, maxCount: 100000}
}

// startLoad runs o.conc workers cycling through targets until stop() or
// a bound is hit.
func (e *env) startLoad(targets []target, o loadOpts) *loadGen {
	l := &loadGen{e: e, targets: targets, stopc: make(chan struct{}), res: make([][]sample, o.conc)}
	deadline := time.Now().Add(o.maxDur)
	for w := range o.conc {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			next := time.Now()
			for i := 0; i < o.maxCount && time.Now().Before(deadline); i++ {
				select {
				case <-l.stopc:
					return
				default:
				}
				ti := (w + i) % len(targets)
				tg := targets[ti]
				if tg.Tail {
					tg.Path = tailPath(tg.Path, l.seq.Add(1))
				}
				s := e.do(tg)
				s.target = ti
				l.res[w] = append(l.res[w], s)
				next = next.Add(o.interval)
				if d := time.Until(next); d > 0 {
					time.Sleep(d)
				} else {
					next = time.Now()
				}
			}
		}()
	}
	return l
}

type loadStats struct {
	sent, failed, misrouted int
	samples                 []sample
	failures                []sample
	misroutes               []sample
	targets                 []target
}

func (l *loadGen) stop() loadStats {
	l.once.Do(func() { close(l.stopc) })
	l.wg.Wait()
	st := loadStats{targets: l.targets}
	for _, r := range l.res {
		st.samples = append(st.samples, r...)
	}
	sort.Slice(st.samples, func(i, j int) bool { return st.samples[i].start.Before(st.samples[j].start) })
	for _, s := range st.samples {
		st.sent++
		tg := l.targets[s.target]
		switch {
		case s.failed():
			st.failed++
			st.failures = append(st.failures, s)
		case !s.ok(tg):
			st.misrouted++
			st.misroutes = append(st.misroutes, s)
		}
	}
	return st
}

func (st loadStats) describe(s sample) string {
	return fmt.Sprintf("%s at %s (%.0f ms): status %d upstream %q err %v", st.targets[s.target],
		s.start.Format("15:04:05.000"), s.end.Sub(s.start).Seconds()*1000, s.status, s.upstream, s.err)
}

// logSome logs up to n of the samples.
func (st loadStats) logSome(t *testing.T, what string, ss []sample, n int) {
	for i, s := range ss {
		if i == n {
			t.Logf("... %d more %s", len(ss)-n, what)
			break
		}
		t.Logf("%s: %s", what, st.describe(s))
	}
}

// ---------------------------------------------------------------- thread sampler

type threadSampler struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	max   int64
	last  int64
}

func (v *varnish) sampleThreads(every time.Duration) *threadSampler {
	ts := &threadSampler{stopc: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(ts.done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			n := v.threads()
			ts.mu.Lock()
			ts.max = max(ts.max, n)
			ts.last = n
			ts.mu.Unlock()
			select {
			case <-ts.stopc:
				return
			case <-tk.C:
			}
		}
	}()
	return ts
}

func (ts *threadSampler) stop() (maxThreads int64) {
	close(ts.stopc)
	<-ts.done
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.max
}

// ---------------------------------------------------------------- raw HTTP

// rawHTTP sends bytes to varnish and reads one response.
func rawHTTP(addr string, req []byte, timeout time.Duration) (int, http.Header, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return 0, nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(req); err != nil {
		// varnish may answer and close before reading everything
		_ = err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, nil, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header, nil
}

// ---------------------------------------------------------------- report

type scenarioResult struct {
	name                    string
	pass                    bool
	sent, failed, misrouted int
	notes                   string
	elapsed                 time.Duration
}

var report struct {
	sync.Mutex
	list []scenarioResult
}

// summarize logs the one-line summary and records it for the report.
func (e *env) summarize(name string, st loadStats, began time.Time, notes string) {
	e.summarized = true
	e.t.Logf("scenario %s: sent=%d failed=%d misrouted=%d; %s", name, st.sent, st.failed, st.misrouted, notes)
	st.logSome(e.t, "misrouted", st.misroutes, 10)
	e.t.Cleanup(func() {
		report.Lock()
		defer report.Unlock()
		report.list = append(report.list, scenarioResult{name: name, pass: !e.t.Failed(), sent: st.sent,
			failed: st.failed, misrouted: st.misrouted, notes: notes, elapsed: time.Since(began)})
	})
}

// loadAvg is the first three fields of /proc/loadavg.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func writeReport(started time.Time, load0 string) {
	report.Lock()
	defer report.Unlock()
	if len(report.list) == 0 {
		return
	}
	var b bytes.Buffer
	mode := "short"
	cmd := "go test -count=1 -timeout 400s ./test/fault/"
	if longMode {
		mode = "long"
		cmd = "GHOST_FAULT_LONG=1 go test -count=1 -v -timeout 1200s ./test/fault/"
	}
	free, _ := exec.Command("free", "-h").Output()
	fmt.Fprintf(&b, "Command: `%s` (%s form)\n\n", cmd, mode)
	fmt.Fprintf(&b, "Date: %s, total %s\n\n", started.UTC().Format("2006-01-02 15:04 MST"),
		time.Since(started).Round(time.Second))
	vv, _ := exec.Command("varnishd", "-V").CombinedOutput()
	vline, _, _ := strings.Cut(string(vv), "\n")
	fmt.Fprintf(&b, "Machine: nproc %d, %s, %s; load average %s at start, %s at end\n\n```\n%s```\n\n",
		runtime.NumCPU(), runtime.GOARCH, strings.TrimSpace(vline), load0, loadAvg(), free)
	sort.SliceStable(report.list, func(i, j int) bool { return report.list[i].name < report.list[j].name })
	b.WriteString("| scenario | result | sent | failed | misrouted | time | notes |\n|---|---|---|---|---|---|---|\n")
	for _, r := range report.list {
		res := "pass"
		if !r.pass {
			res = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %s | %s |\n", r.name, res, r.sent, r.failed, r.misrouted,
			r.elapsed.Round(100*time.Millisecond), strings.ReplaceAll(r.notes, "|", "/"))
	}
	_ = os.MkdirAll(filepath.Join(repoRoot, "build"), 0o755)
	_ = os.WriteFile(filepath.Join(repoRoot, "build/fault-report.md"), b.Bytes(), 0o644)
}

package fault

import (
	"bufio"
	"bytes"
	"encoding/json"
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

	"github.com/varnish/ghost/protocol"
	"github.com/varnish/ghost/test/stack"
	"github.com/varnish/ghost/test/stack/procfs"
	"github.com/vmihailenco/msgpack/v5"
)

// shimTimeout is the ghost.init() default timeout (vmod_ghost.vcc); the
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
	load0 := procfs.LoadAvg()
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

// ---------------------------------------------------------------- processes

// startUpstreams runs one build/upstream process serving count[name]
// loopback ports for every name; the test stops it.
func startUpstreams(t *testing.T, dir string, count map[string]int) *stack.Upstreams {
	t.Helper()
	u, err := stack.StartUpstreams(repoRoot, dir, count)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Stop(3 * time.Second) })
	return u
}

// ---------------------------------------------------------------- wire

// The protocol abuse tests write frames the Go client would never send
// (wrong versions, unknown types, stalls): they build messages as maps and
// frame them with protocol's own framing. Everything else uses
// protocol.Client through test/stack.

func writeFrame(c io.Writer, v any) error {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.Write(protocol.AppendFrame(nil, b))
	return err
}

func readFrame(c net.Conn) (map[string]any, error) {
	body, err := protocol.ReadFrame(bufio.NewReader(c), nil)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := msgpack.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	return m, nil
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

// ---------------------------------------------------------------- varnishd

type varnish struct {
	*stack.Varnishd
	addr string // the client listener
}

func (v *varnish) threads() int64 { return v.Stats("MAIN.threads")["MAIN.threads"] }

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
	l.cmd = exec.Command("varnishlog", append([]string{"-n", v.WorkDir}, args...)...)
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
	ups    *stack.Upstreams
	gd     *stack.Proc
	all    []*stack.Proc
	v      *varnish
	client *http.Client
	nlog   int
	vl5xx  *vlog // varnishlog of every 5xx request group since varnishd started
	// summarized is set once the scenario recorded its figures; a scenario
	// that stops earlier is recorded as aborted.
	summarized bool
}

type envOpts struct {
	upstreams map[string]int                        // name -> number of ports; default baseUpstreams
	config    func(*stack.Upstreams) map[string]any // the initial ghost.json; default baseConfig
}

func newEnv(t *testing.T, o envOpts) *env {
	t.Helper()
	requireParts(t)
	dir, err := stack.StageDir("ghost-fault-")
	if err != nil {
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

// scenario sets up a scenario: the stack of o with ghostd and varnishd
// started, when it began, and varnishd's child as it was.
func scenario(t *testing.T, o envOpts) (*env, time.Time, childCheck) {
	t.Helper()
	e := newEnv(t, o)
	e.start()
	return e, time.Now(), e.childState()
}

// start brings up ghostd (bound by itself) and varnishd.
func (e *env) start() {
	e.t.Helper()
	e.startGhostd(nil)
	e.startVarnish()
}

func (e *env) dumpLogs() {
	for _, g := range e.all {
		e.t.Logf("%s (pid %d):\n%s", filepath.Base(g.Log), g.Pid(), g.LogTail(60))
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
	if err := stack.ReplaceFile(e.cfg, b); err != nil {
		e.t.Fatal(err)
	}
}

// startGhostd starts a ghostd; with a listener file it is socket-activated
// (fd 3). It returns once the state file names the new process and it
// answers status.
func (e *env) startGhostd(listener *os.File) *stack.Proc {
	e.t.Helper()
	e.nlog++
	name := fmt.Sprintf("ghostd-%d", e.nlog)
	argv := stack.GhostdArgs(repoRoot, e.cfg, e.sock, "", "info")
	o := stack.Opts{CleanEnv: true}
	if listener != nil {
		argv = stack.Activated(argv)
		o.Extra = []*os.File{listener}
	}
	g, err := stack.StartGhostd(name, filepath.Join(e.dir, name+".log"), e.sock, o, argv...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.all = append(e.all, g)
	e.gd = g
	e.t.Cleanup(func() { _ = g.Stop(5 * time.Second) })
	return g
}

func (e *env) status() (*protocol.Status, error) { return stack.GhostdStatus(e.sock, 2*time.Second) }

func (e *env) startVarnish() {
	e.t.Helper()
	ghostVCL := os.Getenv("GHOST_FAULT_VCL") // try a candidate ghost.vcl
	main, err := stack.StageVCL(repoRoot, e.dir, ghostVCL, e.sock, "")
	if err != nil {
		e.t.Fatal(err)
	}
	sv, err := stack.StartVarnishd(stack.VarnishdOpts{Dir: e.dir, VCL: main, Listen: []string{"http"},
		Params: []string{"thread_pool_min=20", "thread_pool_max=1000"}})
	if err != nil {
		e.t.Fatal(err)
	}
	v := &varnish{Varnishd: sv, addr: sv.Listen["http"]}
	e.v = v
	e.t.Cleanup(func() { _ = v.Stop(10 * time.Second) })
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
func baseConfig(u *stack.Upstreams) map[string]any {
	p := func(n string) int { return u.Port(n, 0) }
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

// checkLoad fails the test for any failed or misrouted request of the
// background load (what says when it ran), logging the first failures and
// the reasons varnishlog recorded, and checks that varnishd's child did
// not restart.
func (e *env) checkLoad(st loadStats, what string, child childCheck) {
	e.t.Helper()
	if st.failed > 0 {
		e.t.Errorf("%d failed requests %s (want 0)", st.failed, what)
		st.logSome(e.t, "failed", st.failures, 10)
		e.explain5xx(5)
	}
	if st.misrouted > 0 {
		e.t.Errorf("%d misrouted requests %s", st.misrouted, what)
	}
	e.checkChild(child)
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
		runtime.NumCPU(), runtime.GOARCH, strings.TrimSpace(vline), load0, procfs.LoadAvg(), free)
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

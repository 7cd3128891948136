package main

// These tests run the real ghostd binary, built once in TestMain, on
// temporary sockets.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/varnish/ghost/protocol"
	"github.com/varnish/ghost/route"
)

var ghostdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ghostd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ghostdBin = filepath.Join(dir, "ghostd")
	// A race-enabled binary otherwise sleeps 1 s at exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0 halt_on_error=1")
	// Tests run a race-enabled daemon; benchmarks a normal one.
	flag.Parse()
	race := []string{"-race"}
	if f := flag.Lookup("test.bench"); f != nil && f.Value.String() != "" {
		race = nil
	}
	out, err := exec.Command("go", append(append([]string{"build"}, race...), "-o", ghostdBin, ".")...).CombinedOutput()
	if err != nil && race != nil {
		// -race needs cgo; fall back to a plain build.
		out, err = exec.Command("go", "build", "-o", ghostdBin, ".").CombinedOutput()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "building ghostd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Two configurations whose decisions differ observably: a.test routes to
// 10.0.0.1:8001 under A and to 10.0.0.2:8002 under B.
const (
	configA = `{"version":2,"vhosts":{"a.test":{"routes":[{"path_match":{"type":"PathPrefix","value":"/"},"backends":[{"address":"10.0.0.1","port":8001}]}]}}}`
	configB = `{"version":2,"vhosts":{"a.test":{"routes":[{"path_match":{"type":"PathPrefix","value":"/"},"backends":[{"address":"10.0.0.2","port":8002}]}]}}}`
	// configBad fails validation with a message naming the file.
	configBad = `{"version":2,"vhosts":{"a.test":{"routes":[{"path_match":{"type":"PathPrefix","value":"api"}}]}}}`
)

// endpointOf returns the endpoint a config routes a.test to, "" for 404.
func endpointOf(a *protocol.RouteAnswer) string {
	if a.Decision.Outcome != route.OutcomeBackend || len(a.Decision.Groups) == 0 {
		return ""
	}
	e := a.Decision.Groups[0].Endpoints[0]
	return fmt.Sprintf("%s:%d", e.Address, e.Port)
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes data to a temporary name and renames it into place.
func replaceFile(t testing.TB, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, data)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type daemon struct {
	t      testing.TB
	dir    string
	config string
	sock   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDaemon starts ghostd on a temporary socket with config (written
// unless it is "-": no file) and extra flags, and waits until it answers.
func startDaemon(t testing.TB, config string, extra ...string) *daemon {
	t.Helper()
	d := newDaemon(t, config)
	args := append([]string{"-config", d.config, "-socket", d.sock, "-metrics", "", "-log-level", "debug"}, extra...)
	d.start(exec.Command(ghostdBin, args...))
	return d
}

func newDaemon(t testing.TB, config string) *daemon {
	t.Helper()
	// Unix socket paths are limited to 108 bytes: keep the directory short.
	dir, err := os.MkdirTemp("", "gd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &daemon{t: t, dir: dir, config: filepath.Join(dir, "ghost.json"), sock: filepath.Join(dir, "g.sock"),
		stderr: &syncBuffer{}, exited: make(chan error, 1)}
	if config != "-" {
		writeFile(t, d.config, config)
	}
	return d
}

func (d *daemon) start(cmd *exec.Cmd) {
	t := d.t
	t.Helper()
	d.cmd = cmd
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-d.exited
		}
		if t.Failed() {
			t.Logf("ghostd stderr:\n%s", d.stderr.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := protocol.Dial(d.sock, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case err := <-d.exited:
			t.Fatalf("ghostd exited at start: %v\n%s", err, d.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("ghostd not answering: %v\n%s", err, d.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *daemon) dial() *protocol.Client {
	d.t.Helper()
	c, err := protocol.Dial(d.sock, 5*time.Second)
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	return c
}

func (d *daemon) status() *protocol.Status {
	d.t.Helper()
	c := d.dial()
	defer c.Close()
	s, err := c.Status()
	if err != nil {
		d.t.Fatal(err)
	}
	return s
}

// waitGen waits until the daemon's generation reaches gen.
func (d *daemon) waitGen(gen uint64) *protocol.Status {
	d.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := d.status()
		if s.Gen >= gen {
			return s
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("generation stuck at %d, want %d\n%s", s.Gen, gen, d.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and returns the exit error.
func (d *daemon) stop() error {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		return err
	case <-time.After(10 * time.Second):
		d.t.Fatal("ghostd did not stop on SIGTERM")
		return nil
	}
}

func routeA(t testing.TB, c *protocol.Client) *protocol.RouteAnswer {
	t.Helper()
	a, err := c.Route(&route.Request{Host: "a.test", Method: "GET", URL: "/x?y=1",
		Headers: []route.Header{{Name: "User-Agent", Value: "test"}}})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestServeRouteStatusLiveState(t *testing.T) {
	d := startDaemon(t, configA)
	fi, err := os.Stat(d.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want 0660", fi.Mode().Perm())
	}
	c := d.dial()
	a := routeA(t, c)
	if got := endpointOf(a); got != "10.0.0.1:8001" {
		t.Fatalf("routed to %q: %+v", got, a)
	}
	if a.Decision.Vhost != "a.test" || a.Decision.RouteIndex != 0 || a.Decision.Status != 200 {
		t.Fatalf("answer %+v", a)
	}
	if a.Gen != c.HelloGen() || a.Gen < uint64(time.Now().Add(-time.Minute).UnixNano()) {
		t.Fatalf("gen %d, hello gen %d", a.Gen, c.HelloGen())
	}
	nf, err := c.Route(&route.Request{Host: "nowhere.test", Method: "GET", URL: "/"})
	if err != nil || nf.Decision.Status != 404 || nf.Decision.RouteIndex != route.RouteNone {
		t.Fatalf("404: %+v %v", nf, err)
	}
	s := d.status()
	if s.Vhosts != 1 || s.Routes != 1 || s.Endpoints != 1 || s.Config != d.config || s.LastError != "" ||
		s.Gen != a.Gen || s.Loaded == 0 || s.Server != protocol.ServerName {
		t.Fatalf("status %+v", s)
	}
	l, err := c.Live([]route.Endpoint{{Address: "10.0.0.1", Port: 8001}, {Address: "10.0.0.2", Port: 8002}})
	if err != nil || len(l.Dead) != 1 || l.Dead[0] != 1 {
		t.Fatalf("live %+v %v", l, err)
	}

	// State file: magic, gen, fresh heartbeat that moves, pid; mode 0644.
	st := readState(t, d.sock+".state")
	if st.magic != "GHOSTST1" || st.gen != a.Gen || st.pid != uint64(d.cmd.Process.Pid) {
		t.Fatalf("state %+v", st)
	}
	if st.originGen != st.gen { // configA has no cache_policy
		t.Fatalf("origin_gen %d, want the gen %d (no cache_policy, -cache-default origin)", st.originGen, st.gen)
	}
	if st.fetchGen != st.gen { // configA routes on no header
		t.Fatalf("fetch_gen %d, want the gen %d (no route reads a header a fetch rewrites)", st.fetchGen, st.gen)
	}
	if age := time.Now().UnixMilli() - int64(st.heartbeat); age < -100 || age > 1000 {
		t.Fatalf("heartbeat %d ms old", age)
	}
	time.Sleep(600 * time.Millisecond)
	if st2 := readState(t, d.sock+".state"); st2.heartbeat <= st.heartbeat {
		t.Fatalf("heartbeat did not move: %d -> %d", st.heartbeat, st2.heartbeat)
	}
	if fi, err := os.Stat(d.sock + ".state"); err != nil || fi.Mode().Perm() != 0o644 || fi.Size() != 64 {
		t.Fatalf("state file: %v %v", fi.Mode(), err)
	}

	if err := d.stop(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	if _, err := os.Stat(d.sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed at exit: %v", err)
	}
	if st := readState(t, d.sock+".state"); st.heartbeat != 0 || st.gen != a.Gen {
		t.Errorf("state after stop: %+v", st)
	}
}

type stateContent struct {
	magic               string
	gen, heartbeat, pid uint64
	originGen           uint64 // gen when its table decides only "origin"
	fetchGen            uint64 // gen when its table reads no header a fetch rewrites
}

func readState(t testing.TB, path string) stateContent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) != 64 {
		t.Fatalf("state file: %d bytes, %v", len(b), err)
	}
	le := binary.LittleEndian
	return stateContent{string(b[:8]), le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:]), le.Uint64(b[40:]), le.Uint64(b[48:])}
}

func TestStateFileReopenedInPlace(t *testing.T) {
	d := newDaemon(t, configA)
	state := d.sock + ".state"
	writeFile(t, state, strings.Repeat("x", 64))
	before, _ := os.Stat(state)
	d.start(exec.Command(ghostdBin, "-config", d.config, "-socket", d.sock, "-metrics", ""))
	after, _ := os.Stat(state)
	if !os.SameFile(before, after) {
		t.Fatal("state file replaced instead of reopened in place")
	}
	if st := readState(t, state); st.magic != "GHOSTST1" {
		t.Fatalf("state %+v", st)
	}
}

func TestVersionMismatch(t *testing.T) {
	d := startDaemon(t, configA)
	nc, err := net.Dial("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	body, _ := msgpack.Marshal(map[string]any{"t": "hello", "v": 2, "client": "future"})
	if _, err := nc.Write(protocol.AppendFrame(nil, body)); err != nil {
		t.Fatal(err)
	}
	ans, err := protocol.ReadFrame(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(ans, &m); err != nil {
		t.Fatal(err)
	}
	if m["t"] != "error" || m["code"] != "version" ||
		m["msg"] != "protocol version mismatch: ghostd speaks 1, client sent 2" {
		t.Fatalf("answer %v", m)
	}
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("connection not closed: %v", err)
	}
}

// rawHello opens a connection and completes the handshake by hand.
func rawHello(t testing.TB, sock string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	body, _ := msgpack.Marshal(map[string]any{"t": "hello", "v": 1})
	if _, err := nc.Write(protocol.AppendFrame(nil, body)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	if _, err := protocol.ReadFrame(br, nil); err != nil {
		t.Fatal(err)
	}
	return nc, br
}

// closedByPeer reads until EOF (ignoring any error answer before it).
func closedByPeer(nc net.Conn, within time.Duration) bool {
	_ = nc.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, nc)
	return err == nil || errors.Is(err, syscall.ECONNRESET)
}

func TestHostileClients(t *testing.T) {
	d := startDaemon(t, configA, "-frame-timeout", "300ms")
	hdr := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	cases := []struct {
		name  string
		hello bool
		send  []byte
		half  bool // close our write side after sending
	}{
		{"garbage", false, []byte("\x00\x00\x00\x05\xff\xfe\xfd\xfc\xfb"), false},
		{"http", false, []byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), false},
		{"random", true, bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 1000), false},
		{"zero length", true, hdr(0), false},
		{"oversized", true, hdr(protocol.MaxFrame + 1), false},
		{"truncated", true, append(hdr(50), 0x81, 0xa1), true},
		{"stall mid-frame", true, append(hdr(50), 0x81, 0xa1), false},
		{"stall in header", true, []byte{0, 0}, false},
		{"not a map", true, append(hdr(1), 0x01), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var nc net.Conn
			if tc.hello {
				nc, _ = rawHello(t, d.sock)
			} else {
				var err error
				if nc, err = net.Dial("unix", d.sock); err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
			}
			if _, err := nc.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			if tc.half {
				_ = nc.(*net.UnixConn).CloseWrite()
			}
			if !closedByPeer(nc, 5*time.Second) {
				t.Fatal("ghostd did not drop the connection")
			}
			// Everyone else is still served.
			routeA(t, d.dial())
		})
	}
}

func TestManyConnections(t *testing.T) {
	const n = 2000
	d := startDaemon(t, configA, "-log-level", "info")
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 2*n+100 {
		lim.Cur = min(lim.Max, 2*n+100)
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	clients := make([]*protocol.Client, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := protocol.Dial(d.sock, 20*time.Second)
			if err != nil {
				errs <- err
				return
			}
			clients[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("dial: %v", err)
	}
	// Every connection is open at once; each routes.
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := clients[i].Route(&route.Request{Host: "a.test", Method: "GET", URL: "/"})
			if err != nil || endpointOf(a) != "10.0.0.1:8001" {
				t.Errorf("conn %d: %+v %v", i, a, err)
			}
		}()
	}
	wg.Wait()
	for _, c := range clients {
		c.Close()
	}
	routeA(t, d.dial())
}

func TestReloadStormWhileRouting(t *testing.T) {
	d := startDaemon(t, configA, "-log-level", "warn", "-watch=false")
	start := d.status().Gen
	var mu sync.Mutex
	configOf := map[uint64]string{start: "10.0.0.1:8001"} // gen -> expected endpoint
	stop := make(chan struct{})
	var wg sync.WaitGroup
	type seen struct {
		gen uint64
		ep  string
	}
	results := make(chan []seen, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := d.dial()
			var out []seen
			for {
				select {
				case <-stop:
					results <- out
					return
				default:
				}
				a := routeA(t, c)
				out = append(out, seen{a.Gen, endpointOf(a)})
			}
		}()
	}
	rc := d.dial()
	for i := 0; i < 60; i++ {
		cfg, ep := configB, "10.0.0.2:8002"
		if i%2 == 1 {
			cfg, ep = configA, "10.0.0.1:8001"
		}
		replaceFile(t, d.config, cfg)
		r, err := rc.Reload()
		if err != nil || !r.OK {
			t.Fatalf("reload %d: %+v %v", i, r, err)
		}
		mu.Lock()
		configOf[r.Gen] = ep
		mu.Unlock()
		if i%10 == 0 {
			_ = d.cmd.Process.Signal(syscall.SIGHUP) // a no-op reload racing in
		}
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	total := 0
	for w := 0; w < 4; w++ {
		for _, s := range <-results {
			total++
			want, ok := configOf[s.gen]
			if !ok {
				t.Fatalf("answer with unknown generation %d", s.gen)
			}
			if s.ep != want {
				t.Fatalf("gen %d routed to %q, want %q", s.gen, s.ep, want)
			}
		}
	}
	if got := d.status().Gen; got != start+60 {
		t.Fatalf("final gen %d, want %d", got, start+60)
	}
	t.Logf("%d decisions checked across 60 reloads", total)
}

func TestSIGHUPReload(t *testing.T) {
	d := startDaemon(t, configA, "-watch=false")
	gen := d.status().Gen
	writeFile(t, d.config, configB)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	d.waitGen(gen + 1)
	if got := endpointOf(routeA(t, d.dial())); got != "10.0.0.2:8002" {
		t.Fatalf("after SIGHUP routed to %q", got)
	}
	if st := readState(t, d.sock+".state"); st.gen != gen+1 {
		t.Fatalf("state file gen %d after reload, want %d", st.gen, gen+1)
	}
}

func TestWatchRename(t *testing.T) {
	d := startDaemon(t, configA)
	gen := d.status().Gen
	replaceFile(t, d.config, configB)
	d.waitGen(gen + 1)
	if got := endpointOf(routeA(t, d.dial())); got != "10.0.0.2:8002" {
		t.Fatalf("after rename routed to %q", got)
	}
	// In-place write.
	writeFile(t, d.config, configA)
	d.waitGen(gen + 2)
	// Touching without changing the content is not a reload.
	writeFile(t, d.config, configA)
	time.Sleep(300 * time.Millisecond)
	if s := d.status(); s.Gen != gen+2 || s.Reloads != 2 {
		t.Fatalf("no-op write reloaded: %+v", s)
	}
}

func TestWatchConfigMapSymlinkSwap(t *testing.T) {
	d := newDaemon(t, "-")
	// Kubernetes layout: ghost.json -> ..data/ghost.json, ..data -> ..v1
	mk := func(version, content string) {
		if err := os.Mkdir(filepath.Join(d.dir, version), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(d.dir, version, "ghost.json"), content)
	}
	mk("..v1", configA)
	if err := os.Symlink("..v1", filepath.Join(d.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/ghost.json", d.config); err != nil {
		t.Fatal(err)
	}
	d.start(exec.Command(ghostdBin, "-config", d.config, "-socket", d.sock, "-metrics", "", "-log-level", "debug"))
	gen := d.status().Gen
	if got := endpointOf(routeA(t, d.dial())); got != "10.0.0.1:8001" {
		t.Fatalf("routed to %q", got)
	}
	// The atomic swap kubelet does: new dir, new symlink, rename over ..data.
	mk("..v2", configB)
	if err := os.Symlink("..v2", filepath.Join(d.dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(d.dir, "..data_tmp"), filepath.Join(d.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(d.dir, "..v1"))
	d.waitGen(gen + 1)
	if got := endpointOf(routeA(t, d.dial())); got != "10.0.0.2:8002" {
		t.Fatalf("after ..data swap routed to %q", got)
	}
}

func TestBadConfigKeepsOldTable(t *testing.T) {
	if _, err := route.Parse("ghost.json", []byte(configBad)); err == nil {
		t.Skip("route.Parse accepts the bad config (placeholder route package)")
	}
	d := startDaemon(t, configA, "-watch=false")
	gen := d.status().Gen
	writeFile(t, d.config, configBad)
	c := d.dial()
	r, err := c.Reload()
	if err != nil {
		t.Fatal(err)
	}
	_, wantErr := route.Parse(d.config, []byte(configBad))
	if r.OK || r.Err != wantErr.Error() || r.Gen != gen {
		t.Fatalf("reload of a bad file: %+v, want error %q", r, wantErr)
	}
	if !strings.HasPrefix(r.Err, d.config+": ") {
		t.Errorf("error does not name the file by its whole path: %q", r.Err)
	}
	s := d.status()
	if s.LastError != r.Err || s.ReloadFailures != 1 || s.Gen != gen {
		t.Fatalf("status %+v", s)
	}
	if got := endpointOf(routeA(t, c)); got != "10.0.0.1:8001" {
		t.Fatalf("old table not kept: routed to %q", got)
	}
	// The reload subcommand prints the error and exits 1.
	out, err := exec.Command(ghostdBin, "reload", "-socket", d.sock).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || strings.TrimSpace(string(out)) != r.Err {
		t.Fatalf("ghostd reload: %v %q", err, out)
	}
	// Fixing the file clears last_error.
	writeFile(t, d.config, configB)
	if r, err := c.Reload(); err != nil || !r.OK || r.Gen != gen+1 {
		t.Fatalf("reload: %+v %v", r, err)
	}
	if s := d.status(); s.LastError != "" {
		t.Fatalf("last_error not cleared: %+v", s)
	}
}

func TestMissingConfigAtStart(t *testing.T) {
	d := startDaemon(t, "-")
	gen := d.status().Gen
	c := d.dial()
	if a := routeA(t, c); a.Decision.Status != 404 {
		t.Fatalf("empty table answered %+v", a)
	}
	if s := d.status(); !strings.Contains(s.LastError, "no such file") || s.ReloadFailures != 0 || s.Loaded != 0 {
		t.Fatalf("status %+v", s)
	}
	replaceFile(t, d.config, configA)
	d.waitGen(gen + 1)
	if got := endpointOf(routeA(t, c)); got != "10.0.0.1:8001" {
		t.Fatalf("after the file appeared routed to %q", got)
	}
	if s := d.status(); s.LastError != "" || s.Reloads != 1 || s.Loaded == 0 {
		t.Fatalf("status %+v", s)
	}
}

func TestStaleAndLiveSocket(t *testing.T) {
	d := newDaemon(t, configA)
	// A stale socket file (listener gone) is replaced.
	l, err := net.Listen("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	d.start(exec.Command(ghostdBin, "-config", d.config, "-socket", d.sock, "-metrics", ""))
	// A second ghostd on the same, live socket refuses to start.
	out, err := exec.Command(ghostdBin, "-config", d.config, "-socket", d.sock, "-metrics", "",
		"-state", filepath.Join(d.dir, "other.state")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "in use") {
		t.Fatalf("second ghostd: %v %s", err, out)
	}
	routeA(t, d.dial())
}

func TestSocketModeAndGroup(t *testing.T) {
	d := newDaemon(t, configA)
	gid := os.Getgid()
	d.start(exec.Command(ghostdBin, "-config", d.config, "-socket", d.sock, "-metrics", "",
		"-socket-mode", "0600", "-socket-group", fmt.Sprint(gid)))
	fi, err := os.Stat(d.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || int(fi.Sys().(*syscall.Stat_t).Gid) != gid {
		t.Fatalf("socket %v gid %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Gid)
	}
}

func TestSocketActivation(t *testing.T) {
	sa, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed")
	}
	d := newDaemon(t, configA)
	d.start(exec.Command(sa, "-l", d.sock, ghostdBin, "-config", d.config, "-socket", d.sock, "-metrics", "", "-log-level", "debug"))
	routeA(t, d.dial())
	if !strings.Contains(d.stderr.String(), "socket-activated") {
		t.Fatalf("not socket-activated:\n%s", d.stderr.String())
	}
	if err := d.stop(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	// The socket belongs to the activator: ghostd must not unlink it.
	if _, err := os.Stat(d.sock); err != nil {
		t.Fatalf("socket-activated socket was removed: %v", err)
	}
}

func TestNotifyReadyStatusWatchdogStopping(t *testing.T) {
	d := newDaemon(t, configA)
	ns := filepath.Join(d.dir, "notify")
	pc, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	cmd := exec.Command(ghostdBin, "-config", d.config, "-socket", d.sock, "-metrics", "")
	// A 1 s watchdog: ghostd must ping at least every 500 ms.
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns, "WATCHDOG_USEC=1000000")
	d.start(cmd)
	read := func() string {
		_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 256)
		n, err := pc.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
	gen := d.status().Gen
	wantStatus := fmt.Sprintf("STATUS=serving generation %d: 1 vhosts, 1 routes, 1 endpoints", gen)
	if got := read(); got != wantStatus {
		t.Fatalf("first notification %q, want %q", got, wantStatus)
	}
	if got := read(); got != "READY=1" {
		t.Fatalf("second notification %q", got)
	}
	for i := 0; i < 2; i++ {
		if got := read(); got != "WATCHDOG=1" {
			t.Fatalf("watchdog ping %d: %q", i, got)
		}
	}
	writeFile(t, d.config, configB)
	if out, err := exec.Command(ghostdBin, "reload", "-socket", d.sock).CombinedOutput(); err != nil {
		t.Fatalf("reload: %v %s", err, out)
	}
	wantStatus = fmt.Sprintf("STATUS=serving generation %d: 1 vhosts, 1 routes, 1 endpoints", gen+1)
	for got := read(); got != wantStatus; got = read() {
		if got != "WATCHDOG=1" {
			t.Fatalf("after reload: %q, want %q", got, wantStatus)
		}
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	for got := read(); got != "STOPPING=1"; got = read() {
		if got != "WATCHDOG=1" {
			t.Fatalf("notification at stop %q", got)
		}
	}
}

func TestMetrics(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := startDaemon(t, configA, "-metrics", addr)
	c := d.dial()
	routeA(t, c)
	routeA(t, c)
	if _, err := c.Route(&route.Request{Host: "none.test", URL: "/"}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`ghost_decisions_total{outcome="backend",vhost="a.test"} 2`,
		`ghost_decisions_total{outcome="not_found",vhost=""} 1`,
		`ghost_decision_duration_seconds_count 3`,
		`ghost_reloads_total 0`,
		`ghost_reload_failures_total 0`,
		`ghost_table_vhosts 1`,
		`ghost_table_routes 1`,
		`ghost_table_endpoints 1`,
		`ghost_connections_open 1`,
		`ghost_config_generation `,
		`ghost_config_last_reload_successful 1`,
		`ghost_config_last_reload_success_timestamp_seconds 1.`,
		`ghost_build_info{goversion="go`,
	}
	// Connections closed just before (the start-up probe) may still be
	// counted for a moment: scrape until everything matches.
	var missing []string
	var body []byte
	for deadline := time.Now().Add(3 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		missing = missing[:0]
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(missing) > 0 {
		t.Fatalf("metrics lack %q:\n%s", missing, body)
	}
}

func TestSubcommands(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "ghost.json")
	writeFile(t, good, configA)
	bad := filepath.Join(dir, "bad.json")
	writeFile(t, bad, configBad)
	run := func(args ...string) (string, int) { return runGhostd(t, args...) }
	if out, code := run("check", good); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("check good: %d %q", code, out)
	}
	if _, err := route.Parse(bad, []byte(configBad)); err != nil {
		if out, code := run("check", bad); code != 1 || strings.TrimSpace(out) != err.Error() {
			t.Errorf("check bad: %d %q, want %q", code, out, err)
		}
	}
	if out, code := run("check", filepath.Join(dir, "missing.json")); code != 1 || !strings.Contains(out, "no such file") {
		t.Errorf("check missing: %d %q", code, out)
	}
	out, code := run("route", "-config", good, "-host", "a.test", "-H", "x-env: canary", "/api?x=1")
	if code != 0 {
		t.Fatalf("route: %d %q", code, out)
	}
	for _, want := range []string{"vhost:", "a.test", "route:", "outcome:", "200", "10.0.0.1:8001", "pick:", "depends on:"} {
		if !strings.Contains(out, want) {
			t.Errorf("route output lacks %q:\n%s", want, out)
		}
	}
	if out, code := run("route", "-config", good, "-host", "b.test", "/"); code != 0 || !strings.Contains(out, "404") {
		t.Errorf("route 404: %d %q", code, out)
	}
	if _, code := run("route", "-config", good, "/"); code != 2 {
		t.Errorf("route without -host: exit %d", code)
	}
	if out, code := run("-h"); code != 0 || !strings.Contains(out, "-socket-mode") || !strings.Contains(out, "ghostd check [-strict] FILE") {
		t.Errorf("-h: %d %q", code, out)
	}
	if _, code := run("-no-such-flag"); code != 2 {
		t.Errorf("bad flag: exit %d", code)
	}
	if out, code := run("status", "-socket", filepath.Join(dir, "none.sock")); code != 1 || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("status without daemon: %d %q", code, out)
	}

	d := startDaemon(t, configA, "-watch=false")
	if out, code := run("status", "-socket", d.sock); code != 0 || !strings.Contains(out, "1 vhosts, 1 routes, 1 endpoints") {
		t.Errorf("status: %d %q", code, out)
	}
	writeFile(t, d.config, configB)
	if out, code := run("reload", "-socket", d.sock); code != 0 || !strings.Contains(out, "loaded "+d.config) {
		t.Errorf("reload: %d %q", code, out)
	}
}

func TestWatchSymlinkToOtherDirectory(t *testing.T) {
	d := newDaemon(t, "-")
	other := filepath.Join(d.dir, "elsewhere")
	if err := os.Mkdir(other, 0o755); err != nil {
		t.Fatal(err)
	}
	real := filepath.Join(other, "real.json")
	writeFile(t, real, configA)
	if err := os.Symlink(real, d.config); err != nil {
		t.Fatal(err)
	}
	d.start(exec.Command(ghostdBin, "-config", d.config, "-socket", d.sock, "-metrics", "", "-log-level", "debug"))
	gen := d.status().Gen
	replaceFile(t, real, configB)
	d.waitGen(gen + 1)
	if got := endpointOf(routeA(t, d.dial())); got != "10.0.0.2:8002" {
		t.Fatalf("after changing the symlink target routed to %q", got)
	}
}

// A restart with the same binary and configuration keeps the generation
// (the VMOD's memoised decisions stay valid: the table is the same); a
// changed configuration gets a newer one; a state file without the magic
// is ignored.
func TestRestartKeepsGeneration(t *testing.T) {
	d := newDaemon(t, configA)
	var last stateContent
	run := func(args ...string) uint64 {
		t.Helper()
		d.exited = make(chan error, 1)
		d.start(exec.Command(ghostdBin, append([]string{"-config", d.config, "-socket", d.sock, "-metrics", ""}, args...)...))
		last = readState(t, d.sock+".state")
		if err := d.stop(); err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
		return last.gen
	}
	g1 := run()
	if g2 := run(); g2 != g1 {
		t.Errorf("same file, same binary: generation %d after restart, want %d", g2, g1)
	}
	// The same file under another cache default decides otherwise: a
	// new generation, and no longer "origin only".
	gp := run("-cache-default", "pass")
	if gp <= g1 || last.originGen != 0 {
		t.Errorf("-cache-default pass: generation %d (want > %d), origin_gen %d (want 0)", gp, g1, last.originGen)
	}
	if g := run(); g <= gp || last.originGen != g {
		t.Errorf("back to origin: generation %d (want > %d), origin_gen %d (want %d)", g, gp, last.originGen, g)
	}
	// A route on Range: the fetch's request does not carry it, so
	// fetch_gen is 0 (origin_gen still the gen).
	writeFile(t, d.config, strings.Replace(configB, `"backends"`, `"headers":[{"name":"Range","value":"bytes=0-1"}],"backends"`, 1))
	if g := run(); last.fetchGen != 0 || last.originGen != g {
		t.Errorf("route on Range: fetch_gen %d (want 0), origin_gen %d (want %d)", last.fetchGen, last.originGen, g)
	}
	writeFile(t, d.config, configB)
	g3 := run()
	if g3 <= g1 || last.fetchGen != g3 {
		t.Errorf("changed file: generation %d after restart (want > %d), fetch_gen %d (want %d)", g3, g1, last.fetchGen, g3)
	}
	writeFile(t, d.config, configA) // the same content as the first run
	if g4 := run(); g4 <= g3 {
		t.Errorf("file changed back: generation %d, want > %d (only the last table counts)", g4, g3)
	}
	writeFile(t, d.sock+".state", strings.Repeat("x", 64))
	if g5 := run(); g5 >= 0x7878787878787878 || g5 < g1 {
		t.Errorf("state file without magic: generation %d taken from its garbage", g5)
	}
}

package protocol

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/varnish/ghost/protocol/protocoltest"
	"github.com/varnish/ghost/route"
)

// tableHandler is a Handler over one fixed table (what ghostd does, minus
// metrics and reloads).
type tableHandler struct {
	t   *route.Table
	gen uint64
}

func (h *tableHandler) Generation() uint64 { return h.gen }
func (h *tableHandler) Route(r *route.Request, d *route.Decision) uint64 {
	h.t.Decide(r, d)
	return h.gen
}
func (h *tableHandler) Reload() ReloadResult { return ReloadResult{Gen: h.gen, OK: true} }
func (h *tableHandler) Status() Status       { return Status{Gen: h.gen} }
func (h *tableHandler) Live(eps []route.Endpoint, dead []int) ([]int, uint64) {
	return dead, h.gen
}

func newTableHandler(tb testing.TB) *tableHandler {
	t, err := route.Parse("bench.json", protocoltest.Config())
	if err != nil {
		tb.Fatal(err)
	}
	return &tableHandler{t: t, gen: uint64(time.Now().UnixNano())}
}

// BenchmarkServerCodec measures the server's hot path without I/O: decode
// a route request, decide, pick, encode the answer.
func BenchmarkServerCodec(b *testing.B) {
	h := newTableHandler(b)
	frame, err := newEncoder().RouteRequest(protocoltest.Request())
	if err != nil {
		b.Fatal(err)
	}
	body := frame[4:]
	dec, enc := newRequestDecoder(), newEncoder()
	var req request
	var d route.Decision
	var out []byte
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := dec.Decode(body, &req); err != nil {
			b.Fatal(err)
		}
		gen := h.Route(&req.Route, &d)
		if out, err = enc.RouteAnswer(gen, &d); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if d.Outcome != route.OutcomeBackend {
		b.Fatalf("benchmark request not routed: %+v", d)
	}
	b.ReportMetric(float64(len(out)), "answer-bytes")
}

// The socket benchmarks run the server in a child process (this test
// binary re-executed) so that its CPU can be measured apart from the
// client's.
const benchServeEnv = "GHOST_PROTOCOL_BENCH_SERVE"

func TestMain(m *testing.M) {
	if sock := os.Getenv(benchServeEnv); sock != "" {
		os.Exit(benchServe(sock))
	}
	os.Exit(m.Run())
}

func benchServe(sock string) int {
	ln, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s := &Server{Handler: newTableHandler(&testing.B{})}
	if err := s.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// procCPU returns the user+system CPU time a process used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100), nil // USER_HZ = 100
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkUnixSocketRoute: route round trips over a real Unix socket to a
// server in another process, with 1 and 4 connections (one request
// outstanding each, like the VMOD). Reports calls/s and CPU per call on
// each side.
func BenchmarkUnixSocketRoute(b *testing.B) {
	dir, err := os.MkdirTemp("", "gb")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServeEnv+"="+sock)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for i := 0; ; i++ {
		c, err := Dial(sock, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if i > 500 {
			b.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			clients := make([]*Client, conns)
			for i := range clients {
				if clients[i], err = Dial(sock, 5*time.Second); err != nil {
					b.Fatal(err)
				}
				defer clients[i].Close()
			}
			req := protocoltest.Request()
			var next atomic.Int64
			srv0, _ := procCPU(cmd.Process.Pid)
			cli0 := selfCPU()
			t0 := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			var failed atomic.Value
			for _, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						a, err := c.Route(req)
						if err == nil && a.Decision.Outcome != route.OutcomeBackend {
							err = errors.New("not routed")
						}
						if err != nil {
							failed.Store(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			el := time.Since(t0)
			srv1, _ := procCPU(cmd.Process.Pid)
			cli1 := selfCPU()
			n := float64(b.N)
			b.ReportMetric(n/el.Seconds(), "calls/s")
			b.ReportMetric(float64((srv1-srv0).Microseconds())/n, "server-µs/call")
			b.ReportMetric(float64((cli1-cli0).Microseconds())/n, "client-µs/call")
		})
	}
}

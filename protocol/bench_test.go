package protocol

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
func (h *tableHandler) Reload(time.Duration) ReloadResult { return ReloadResult{Gen: h.gen, OK: true} }
func (h *tableHandler) Status() Status                    { return Status{Gen: h.gen} }
func (h *tableHandler) Live(eps []route.Endpoint, _ []uint32, dead []int) ([]int, uint64) {
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
			req := protocoltest.Request()
			calls := make([]func() error, conns)
			for i := range calls {
				c, err := Dial(sock, 5*time.Second)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				calls[i] = func() error {
					a, err := c.Route(req)
					if err == nil && a.Decision.Outcome != route.OutcomeBackend {
						err = errors.New("not routed")
					}
					return err
				}
			}
			protocoltest.RunCalls(b, calls, cmd.Process.Pid, "server")
		})
	}
}

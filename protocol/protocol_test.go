package protocol

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/varnish/ghost/protocol/protocoltest"
	"github.com/varnish/ghost/route"
)

// stubHandler answers from a fixed decision so that the protocol can be
// tested independently of the routing engine.
type stubHandler struct {
	gen      atomic.Uint64
	decision route.Decision
	lastReq  atomic.Pointer[route.Request]
	reloadOK bool
}

func (h *stubHandler) Generation() uint64 { return h.gen.Load() }
func (h *stubHandler) Route(r *route.Request, d *route.Decision) uint64 {
	// Copy the request: its strings point into the connection's buffer.
	c := &route.Request{Host: strings.Clone(r.Host), Method: strings.Clone(r.Method), URL: strings.Clone(r.URL),
		Socket: strings.Clone(r.Socket), HTTPS: r.HTTPS}
	for _, hd := range r.Headers {
		c.Headers = append(c.Headers, route.Header{Name: strings.Clone(hd.Name), Value: strings.Clone(hd.Value)})
	}
	h.lastReq.Store(c)
	*d = h.decision
	return h.gen.Load()
}
func (h *stubHandler) Reload(time.Duration) ReloadResult {
	if h.reloadOK {
		return ReloadResult{Gen: h.gen.Add(1), OK: true, Msg: "loaded x"}
	}
	return ReloadResult{Gen: h.gen.Load(), Err: `ghost.json: vhost "a" route 2: path "api" must start with "/"`}
}
func (h *stubHandler) Status() Status {
	return Status{Gen: h.gen.Load(), Vhosts: 3, Routes: 7, Endpoints: 2, Config: "/x/ghost.json",
		Loaded: 1700000000, LastError: "boom", Reloads: 4, ReloadFailures: 1, Uptime: 12, Server: ServerName}
}
func (h *stubHandler) Live(eps []route.Endpoint, _ []uint32, dead []int) ([]int, uint64) {
	for i, e := range eps {
		if e.Port == 9 {
			dead = append(dead, i)
		}
	}
	return dead, h.gen.Load()
}

func richDecision() route.Decision {
	return route.Decision{
		Outcome: route.OutcomeBackend, Status: 200, Vhost: "api.example.com", RouteIndex: 2, RouteName: "r2",
		Groups: []route.Group{
			{Weight: 90, Endpoints: []route.Endpoint{{Address: "10.0.0.1", Port: 8080}}},
			{Weight: 10, Endpoints: []route.Endpoint{{Address: "::1", Port: 9000}, {Address: "10.0.0.2", Port: 80}}},
		},
		RequestHeaders:  &route.HeaderOps{Set: []route.Header{{Name: "x-a", Value: "1"}}, Add: []route.Header{{Name: "x-b", Value: "2"}}, Remove: []string{"x-c"}},
		ResponseHeaders: &route.HeaderOps{Set: []route.Header{{Name: "x-r", Value: "3"}}, Remove: []string{"server"}},
		NewPath:         "/new",
		NewHost:         "upstream.example",
		Scope:           5,
		PathEdit:        &route.PathEdit{Cut: 4, With: "/new"},
		Deps: route.Deps{Path: true, Method: true, Query: true, Headers: []string{"ua", "x-env"},
			HeaderValues: [][]string{nil, {"beta", "canary"}},
			QueryValues:  []route.ParamValues{{Name: "v", Values: []string{"1", "2"}}},
			ScopeLens:    []int{1, 3, 5}, CacheHeaders: []string{"authorization"}},
		Reason:      "OK",
		Uncacheable: "request filter changes routed header x-env",
		Cache:       route.CacheLookup,
		Policy: &route.CachePolicy{TTL: 60, Forced: true, Grace: -1, Keep: 3600,
			KeyHeaders: []string{"accept-language"}, QueryExclude: []string{"utm_source"}},
		Health: &route.HealthCheck{ID: 0xdeadbeef, Path: "/healthz", Host: "app.internal", Interval: 2 * time.Second,
			Timeout: 500 * time.Millisecond, Window: 5, Threshold: 3, Initial: 3, ExpectedStatus: 204},
		Outlier: &route.Outlier{ConsecutiveFailures: 5, BaseEjection: 30 * time.Second,
			MaxEjection: 300 * time.Second, MaxEjectionPercent: 10},
		Panic: 50,
		Balancer: &route.Balancer{RingID: 1<<63 + 5, Keys: []route.HashKey{{Kind: route.KeyCookie, Name: "user"},
			{Kind: route.KeyHeader, Name: "x-user"}, {Kind: route.KeySourceIP}}},
		Session: &route.Session{Type: route.SessionHeader, Name: "x-session", Absolute: 3600, Idle: 0,
			Tokens: []string{"AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB", "CCCCCCCCCCCCCCCC"}},
		Timeouts: &route.Timeouts{Request: 10000, BackendRequest: 2000},
		Retry:    &route.Retry{Attempts: 2, Codes: []int{500, 502, 503, 504}, Backoff: 100},
		CORS: &route.CORS{Exact: []string{"https://a.test", "https://a.test:443"},
			Wild: []route.OriginPattern{{Prefix: "https://", Suffix: ".b.test"}},
			Echo: true, Headers: []route.Header{{Name: "Access-Control-Allow-Credentials", Value: "true"}},
			Vary: []string{"Origin"},
			Preflight: &route.Preflight{Status: 204, Reason: "No Content", Require: []string{"access-control-request-method", "origin"},
				Headers: []route.Header{{Name: "Access-Control-Max-Age", Value: "5"}}, EchoMethod: true}},
	}
}

func startServer(t testing.TB, h Handler, tweak func(*Server)) (string, *Server) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "g.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, IdleTimeout: 5 * time.Second, FrameTimeout: 300 * time.Millisecond}
	if tweak != nil {
		tweak(s)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		_ = s.Shutdown(t.Context())
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock, s
}

func TestClientServerRoundTrip(t *testing.T) {
	h := &stubHandler{decision: richDecision()}
	h.gen.Store(1 << 62)
	sock, _ := startServer(t, h, nil)
	c, err := Dial(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.HelloGen() != 1<<62 || c.Server() != ServerName {
		t.Fatalf("hello: gen %d server %q", c.HelloGen(), c.Server())
	}
	req := &route.Request{Host: "api.example.com:8080", Method: "HEAD", URL: "/api/x?y=1",
		Headers: []route.Header{{Name: "X-Env", Value: "canary"}, {Name: "Cookie", Value: "a=b"}},
		Socket:  "http-80", HTTPS: true}
	a, err := c.Route(req)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.lastReq.Load(); !reflect.DeepEqual(got, req) {
		t.Fatalf("server saw %+v, want %+v", got, req)
	}
	want := richDecision()
	want.Query = "?y=1"
	if !reflect.DeepEqual(a.Decision, want) {
		t.Fatalf("decision\n got %+v\nwant %+v", a.Decision, want)
	}
	if a.Gen != 1<<62 {
		t.Fatalf("gen %d", a.Gen)
	}

	r, err := c.Reload()
	if err != nil || r.OK || !strings.Contains(r.Err, `must start with "/"`) || r.Gen != 1<<62 {
		t.Fatalf("reload: %+v %v", r, err)
	}
	h.reloadOK = true
	if r, err = c.Reload(); err != nil || !r.OK || r.Msg != "loaded x" || r.Gen != 1<<62+1 {
		t.Fatalf("reload: %+v %v", r, err)
	}
	st, err := c.Status()
	if err != nil {
		t.Fatal(err)
	}
	wantSt := h.Status()
	if !reflect.DeepEqual(*st, wantSt) {
		t.Fatalf("status\n got %+v\nwant %+v", *st, wantSt)
	}
	l, err := c.Live([]route.Endpoint{{Address: "10.0.0.1", Port: 80}, {Address: "10.0.0.1", Port: 9}, {Address: "::1", Port: 9}, {Address: "::1", Port: 10}})
	if err != nil || !reflect.DeepEqual(l.Dead, []int{1, 2}) {
		t.Fatalf("live: %+v %v", l, err)
	}
	// Not-found decision: only the mandatory keys.
	h.decision = route.Decision{Outcome: route.OutcomeNotFound, Status: 404, RouteIndex: route.RouteNone}
	a, err = c.Route(&route.Request{Host: "x", Method: "GET", URL: "/"})
	if err != nil || a.Decision.Status != 404 || a.Decision.RouteIndex != -2 || a.Decision.Vhost != "" {
		t.Fatalf("404: %+v %v", a, err)
	}
}

// rawConn speaks frames by hand.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, sock string) *rawConn {
	nc, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (r *rawConn) send(v any) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		r.t.Fatal(err)
	}
	r.sendRaw(AppendFrame(nil, b))
}

func (r *rawConn) sendRaw(b []byte) {
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) recv() map[string]any {
	body, err := ReadFrame(r.br, nil)
	if err != nil {
		r.t.Fatalf("reading answer: %v", err)
	}
	var m map[string]any
	if err := msgpack.Unmarshal(body, &m); err != nil {
		r.t.Fatal(err)
	}
	return m
}

// closed reports whether the server closed the connection (EOF).
func (r *rawConn) closed() bool {
	_ = r.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := r.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (err != nil && strings.Contains(err.Error(), "reset"))
}

func TestHandshake(t *testing.T) {
	h := &stubHandler{decision: richDecision()}
	h.gen.Store(42)
	sock, _ := startServer(t, h, nil)

	r := dialRaw(t, sock)
	r.send(map[string]any{"t": "hello", "v": 2, "client": "x"})
	m := r.recv()
	if m["t"] != "error" || m["code"] != "version" || m["msg"] != "protocol version mismatch: ghostd speaks 1, client sent 2" {
		t.Fatalf("version mismatch answer: %v", m)
	}
	if !r.closed() {
		t.Fatal("connection not closed after version mismatch")
	}

	r = dialRaw(t, sock)
	r.send(map[string]any{"t": "route", "url": "/"})
	if m := r.recv(); m["code"] != "hello" || m["msg"] != "expected hello first" {
		t.Fatalf("no hello: %v", m)
	}
	if !r.closed() {
		t.Fatal("connection not closed without hello")
	}

	r = dialRaw(t, sock)
	r.send(map[string]any{"client": "x", "v": 1, "t": "hello", "future": []any{1, map[string]any{"a": nil}}})
	m = r.recv()
	if m["t"] != "hello" || m["server"] != ServerName {
		t.Fatalf("hello: %v", m)
	}
	if v, _ := m["v"].(int8); v != 1 {
		t.Fatalf("hello v: %#v", m["v"])
	}
	r.send(map[string]any{"t": "bogus"})
	if m := r.recv(); m["code"] != "type" {
		t.Fatalf("unknown type: %v", m)
	}
	r.send(map[string]any{"t": "status"}) // still open after "type"
	if m := r.recv(); m["t"] != "status" {
		t.Fatalf("status after type error: %v", m)
	}
	r.send(map[string]any{"t": "route", "host": 5})
	if m := r.recv(); m["code"] != "decode" || !strings.Contains(m["msg"].(string), `"host"`) {
		t.Fatalf("wrong type: %v", m)
	}
	if !r.closed() {
		t.Fatal("connection not closed after decode error")
	}
}

func TestClientVersionCheck(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if _, err := ReadFrame(bufio.NewReader(c), nil); err != nil {
			return
		}
		b, _ := msgpack.Marshal(map[string]any{"t": "hello", "v": 2, "gen": 1, "server": "future"})
		_, _ = c.Write(AppendFrame(nil, b))
	}()
	_, err = Dial(sock, time.Second)
	var pe *Error
	if !errors.As(err, &pe) || pe.Code != CodeVersion || pe.Msg != "protocol version mismatch: ghostd speaks 2, client sent 1" {
		t.Fatalf("got %v", err)
	}
}

func TestFraming(t *testing.T) {
	var errs atomic.Int32
	h := &stubHandler{decision: richDecision()}
	sock, _ := startServer(t, h, func(s *Server) { s.OnError = func(string) { errs.Add(1) } })
	hello := func() *rawConn {
		r := dialRaw(t, sock)
		r.send(map[string]any{"t": "hello", "v": 1})
		r.recv()
		return r
	}
	hdr := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

	cases := map[string][]byte{
		"zero length": hdr(0),
		"oversized":   hdr(MaxFrame + 1),
		"huge":        hdr(0xffffffff),
	}
	for name, b := range cases {
		r := hello()
		r.sendRaw(b)
		if m := r.recv(); m["code"] != "frame" || !strings.Contains(m["msg"].(string), "bad frame length") {
			t.Errorf("%s: answer %v", name, m)
		}
		if !r.closed() {
			t.Errorf("%s: not closed", name)
		}
	}
	// Garbage: a length of "GET " is 1.19 GB > MaxFrame, dropped.
	r := dialRaw(t, sock)
	r.sendRaw([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	if m := r.recv(); m["code"] != "frame" {
		t.Errorf("garbage: answer %v", m)
	}
	if !r.closed() {
		t.Error("garbage: not closed")
	}
	// Not a map / trailing bytes: decode error answer, then close.
	for name, body := range map[string][]byte{
		"not a map": {0x92, 0x01, 0x02},
		"trailing":  append(mustMarshal(t, map[string]any{"t": "status"}), 0xc0),
		"truncated": mustMarshal(t, map[string]any{"t": "status"})[:3],
		"bad utf":   {0x81, 0xa1, 't', 0xc1},
	} {
		r := hello()
		r.sendRaw(AppendFrame(nil, body))
		if m := r.recv(); m["code"] != "decode" {
			t.Errorf("%s: %v", name, m)
		}
		if !r.closed() {
			t.Errorf("%s: not closed", name)
		}
	}
	// A frame that stalls mid-body is dropped after the frame timeout.
	r = hello()
	t0 := time.Now()
	r.sendRaw(append(hdr(100), 0x81))
	if !r.closed() {
		t.Error("stalled frame: not closed")
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("stalled frame dropped after %v", d)
	}
	// Also when it stalls inside the header.
	r = hello()
	r.sendRaw([]byte{0, 0})
	if !r.closed() {
		t.Error("stalled header: not closed")
	}
	// A large frame (not fitting the read buffer) works.
	r = hello()
	big := strings.Repeat("x", 200<<10)
	r.send(map[string]any{"t": "route", "host": "h", "url": "/" + big, "hdrs": [][]string{{"a", big}}})
	if m := r.recv(); m["t"] != "route" {
		t.Fatalf("big frame: %v", m)
	}
	if got := h.lastReq.Load(); got.URL != "/"+big || got.Headers[0].Value != big {
		t.Fatal("big frame decoded wrongly")
	}
	// Deep nesting under an unknown key is refused, not recursed into.
	deep := append(bytes.Repeat([]byte{0x91}, 100000), 0xc0)
	body := append([]byte{0x82, 0xa1, 't', 0xa6}, "status"...)
	body = append(append(body, 0xa1, 'z'), deep...)
	r = hello()
	r.sendRaw(AppendFrame(nil, body))
	if m := r.recv(); m["code"] != "decode" {
		t.Fatalf("deep: %v", m)
	}
	// The server still serves.
	c, err := Dial(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Status(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if errs.Load() == 0 {
		t.Error("OnError never called")
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPanicInHandlerClosesOnlyThatConnection(t *testing.T) {
	h := &panicky{stubHandler: stubHandler{decision: richDecision()}}
	sock, _ := startServer(t, h, nil)
	c1, err := Dial(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	if _, err := c1.Route(&route.Request{URL: "/panic"}); err == nil {
		t.Fatal("want an error from the panicking connection")
	}
	c2, err := Dial(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Route(&route.Request{URL: "/"}); err != nil {
		t.Fatal(err)
	}
}

type panicky struct{ stubHandler }

func (p *panicky) Route(r *route.Request, d *route.Decision) uint64 {
	if r.URL == "/panic" {
		panic("boom")
	}
	return p.stubHandler.Route(r, d)
}

// TestServerRouteAllocations checks that answering a route request over a
// real socket allocates nothing on the server side: the client here
// reuses pre-built frames and buffers, so every allocation counted is the
// server's.
func TestServerRouteAllocations(t *testing.T) {
	sock, _ := startServer(t, newTableHandler(t), nil)
	r := dialRaw(t, sock)
	r.send(map[string]any{"t": "hello", "v": 1})
	r.recv()
	_ = r.nc.SetDeadline(time.Time{})
	frame, err := newEncoder().RouteRequest(protocoltest.Request())
	if err != nil {
		t.Fatal(err)
	}
	frame = append([]byte(nil), frame...)
	buf := make([]byte, 64<<10)
	call := func() {
		if _, err := r.nc.Write(frame); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(r.br, buf[:4]); err != nil {
			t.Fatal(err)
		}
		n := binary.BigEndian.Uint32(buf)
		if _, err := io.ReadFull(r.br, buf[:n]); err != nil {
			t.Fatal(err)
		}
	}
	call()
	if n := testing.AllocsPerRun(2000, call); n != 0 {
		t.Fatalf("%v allocations per route round trip, want 0", n)
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	var open atomic.Int32
	sock, _ := startServer(t, &stubHandler{decision: richDecision()}, func(s *Server) {
		s.IdleTimeout = 200 * time.Millisecond
		s.OnConn = func(d int) { open.Add(int32(d)) }
	})
	r := dialRaw(t, sock)
	r.send(map[string]any{"t": "hello", "v": 1})
	r.recv()
	t0 := time.Now()
	if !r.closed() {
		t.Fatal("idle connection not closed")
	}
	if d := time.Since(t0); d < 150*time.Millisecond || d > 2*time.Second {
		t.Fatalf("idle connection closed after %v", d)
	}
	for i := 0; open.Load() != 0 && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open.Load(); n != 0 {
		t.Fatalf("%d connections still counted open", n)
	}
}

// live endpoints may carry the probe id of their native backend as a
// third element (docs/protocol.md, "live").
func TestDecodeLiveProbes(t *testing.T) {
	body, err := msgpack.Marshal(map[string]any{"t": "live", "eps": []any{
		[]any{"10.0.0.1", 80}, []any{"10.0.0.1", 80, uint32(0xdeadbeef)}}})
	if err != nil {
		t.Fatal(err)
	}
	var req request
	if err := newRequestDecoder().Decode(body, &req); err != nil {
		t.Fatal(err)
	}
	if len(req.Eps) != 2 || !reflect.DeepEqual(req.Probes, []uint32{0, 0xdeadbeef}) {
		t.Fatalf("eps %+v probes %x", req.Eps, req.Probes)
	}
	for _, bad := range []struct {
		ep   []any
		want string
	}{
		{[]any{"10.0.0.1"}, "endpoint 0: want [addr, port] or [addr, port, probe], got 1 elements"},
		{[]any{"10.0.0.1", 80, uint64(1) << 33}, "endpoint 0 probe: 8589934592 out of range"},
	} {
		body, _ = msgpack.Marshal(map[string]any{"t": "live", "eps": []any{bad.ep}})
		err := newRequestDecoder().Decode(body, &req)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: got %v, want %s", bad.ep, err, bad.want)
		}
	}
}

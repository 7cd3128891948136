package protocol

import (
	"encoding/binary"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varnish/ghost/route"
)

// Before hello a frame is at most MaxHelloFrame: a peer cannot make ghostd
// allocate 1 MiB per connection without saying hello (issue: 300 such
// connections took RSS from 23 to 332 MB).
func TestPreHelloFrameCap(t *testing.T) {
	sock, _ := startServer(t, &stubHandler{decision: richDecision()}, nil)
	for _, n := range []uint32{MaxHelloFrame + 1, MaxFrame} {
		r := dialRaw(t, sock)
		r.sendRaw(binary.BigEndian.AppendUint32(nil, n))
		m := r.recv()
		if m["code"] != "frame" || !strings.Contains(m["msg"].(string), "before hello") {
			t.Errorf("%d-byte frame before hello: answer %v", n, m)
		}
		if !r.closed() {
			t.Errorf("%d-byte frame before hello: not closed", n)
		}
	}
	// a hello padded to exactly the cap is still a hello
	r := dialRaw(t, sock)
	r.send(map[string]any{"t": "hello", "v": 1, "client": strings.Repeat("c", MaxHelloFrame-40)})
	if m := r.recv(); m["t"] != "hello" {
		t.Fatalf("hello: %v", m)
	}
}

// A connection that never says hello is closed after HelloTimeout; after
// hello the (longer) idle timeout applies.
func TestHelloTimeout(t *testing.T) {
	sock, _ := startServer(t, &stubHandler{decision: richDecision()}, func(s *Server) {
		s.HelloTimeout = 100 * time.Millisecond
		s.IdleTimeout = 5 * time.Second
	})
	silent := dialRaw(t, sock)
	talker := dialRaw(t, sock)
	talker.send(map[string]any{"t": "hello", "v": 1})
	talker.recv()
	if !silent.closed() {
		t.Fatal("a connection without hello was not closed")
	}
	time.Sleep(200 * time.Millisecond) // past the hello timeout
	talker.send(map[string]any{"t": "status"})
	if m := talker.recv(); m["t"] != "status" {
		t.Fatalf("after hello: %v", m)
	}
}

// MaxConns: connections beyond it are closed at accept, and counted; one
// closing makes room.
func TestMaxConns(t *testing.T) {
	var refused, open atomic.Int32
	sock, _ := startServer(t, &stubHandler{decision: richDecision()}, func(s *Server) {
		s.MaxConns = 3
		s.OnRefused = func() { refused.Add(1) }
		s.OnConn = func(d int) { open.Add(int32(d)) }
	})
	var rs []*rawConn
	for range 3 {
		r := dialRaw(t, sock)
		r.send(map[string]any{"t": "hello", "v": 1})
		r.recv()
		rs = append(rs, r)
	}
	extra := dialRaw(t, sock)
	if !extra.closed() {
		t.Fatal("a fourth connection was not closed")
	}
	if refused.Load() != 1 {
		t.Fatalf("refused %d, want 1", refused.Load())
	}
	rs[0].nc.Close()
	for i := 0; open.Load() != 2 && i < 300; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	r := dialRaw(t, sock)
	r.send(map[string]any{"t": "hello", "v": 1})
	if m := r.recv(); m["t"] != "hello" {
		t.Fatalf("after one closed: %v", m)
	}
}

// A large frame's buffer grows with the bytes received, not the length
// announced, and is given back when the connection goes.
func TestFrameMemoryFollowsBytes(t *testing.T) {
	sock, s := startServer(t, &stubHandler{decision: richDecision()}, func(s *Server) {
		s.FrameTimeout = 5 * time.Second
	})
	const conns = 50
	var rs []*rawConn
	for range conns {
		r := dialRaw(t, sock)
		r.send(map[string]any{"t": "hello", "v": 1})
		r.recv()
		r.sendRaw(binary.BigEndian.AppendUint32(nil, MaxFrame))
		r.sendRaw(make([]byte, readBufSize+100)) // past the read buffer
		rs = append(rs, r)
	}
	for i := 0; s.bodyMem.Load() < conns*growStep && i < 300; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.bodyMem.Load(); got != conns*growStep {
		t.Fatalf("%d connections announcing %d bytes hold %d bytes, want %d", conns, MaxFrame, got, conns*growStep)
	}
	for _, r := range rs {
		r.nc.Close()
	}
	for i := 0; s.bodyMem.Load() != 0 && i < 300; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.bodyMem.Load(); got != 0 {
		t.Fatalf("%d bytes still held after the connections closed", got)
	}
}

// busyHandler sheds every route request for host "heavy.test".
type busyHandler struct {
	stubHandler
	done atomic.Int32
}

func (h *busyHandler) Admit(r *route.Request) (held, ok bool) {
	if r.Host == "heavy.test" {
		return false, false
	}
	return true, true
}

func (h *busyHandler) Done() { h.done.Add(1) }

// An Admitter's refusal is a "busy" error answer on a connection that stays
// open; an admitted request is followed by Done.
func TestAdmitterBusy(t *testing.T) {
	h := &busyHandler{stubHandler: stubHandler{decision: richDecision()}}
	sock, _ := startServer(t, h, nil)
	r := dialRaw(t, sock)
	r.send(map[string]any{"t": "hello", "v": 1})
	r.recv()
	r.send(map[string]any{"t": "route", "host": "heavy.test", "method": "GET", "url": "/"})
	if m := r.recv(); m["t"] != "error" || m["code"] != CodeBusy {
		t.Fatalf("shed request: %v", m)
	}
	r.send(map[string]any{"t": "route", "host": "a.test", "method": "GET", "url": "/"})
	if m := r.recv(); m["t"] != "route" {
		t.Fatalf("after a shed request: %v", m)
	}
	// Done runs once the answer is written: wait for it
	for i := 0; h.done.Load() != 1 && i < 300; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if h.done.Load() != 1 {
		t.Fatalf("Done called %d times, want 1", h.done.Load())
	}
}

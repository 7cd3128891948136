package protocol

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/varnish/ghost/route"
	"github.com/varnish/ghost/route/ring"
)

// Handler answers the requests a Server receives. Its methods are called
// concurrently from every connection.
type Handler interface {
	// Generation returns the current config generation.
	Generation() uint64
	// Route computes the decision for r into d and returns the generation
	// of the table it used. The strings of r point into the connection's
	// read buffer: copy whatever must outlive the call.
	Route(r *route.Request, d *route.Decision) uint64
	// Reload reloads the configuration. A wait > 0 bounds how long the
	// caller waits: a reload still running then is answered Pending and
	// goes on.
	Reload(wait time.Duration) ReloadResult
	// Status describes the daemon.
	Status() Status
	// Live appends to dead the indexes of the endpoints in eps that the
	// current table no longer references under the probe id in probes
	// (parallel to eps; 0: without a probe), and returns dead and the
	// generation of that table.
	Live(eps []route.Endpoint, probes []uint32, dead []int) ([]int, uint64)
}

// Admitter is implemented by a Handler that limits how many expensive
// decisions run at once, so that they cannot starve the others. Admit is
// called before Route: held says Done must be called after it; when ok is
// false the request is answered with a CodeBusy error instead (the
// connection stays open) and Route is not called.
type Admitter interface {
	Admit(r *route.Request) (held, ok bool)
	Done()
}

// Inspector is implemented by a Handler that can describe its live table
// to operators. Both return the generation described and a JSON document.
type Inspector interface {
	// Dump describes the whole live table.
	Dump() (uint64, []byte)
	// Explain describes how the live table decides r.
	Explain(r *route.Request) (uint64, []byte)
}

// Ringer is implemented by a Handler that serves the consistent-hash
// rings its route answers name (route.Balancer): Ring returns the
// current generation and the ring of that ID, nil when the current table
// has none.
type Ringer interface {
	Ring(id uint64) (uint64, *ring.Ring)
}

// Clusterer is implemented by a Handler whose node shards its cache over
// a cluster of Varnish nodes. Cluster returns the generation and the
// cluster (nil: not clustered).
type Clusterer interface {
	Cluster() (uint64, *route.Cluster)
}

// dumpChunk is the largest piece of a JSON document sent in one frame.
const dumpChunk = 512 << 10

// Defaults of a Server's limits.
const (
	// DefaultIdleTimeout: the shim keeps at most a few idle connections
	// per VCL and reconnects (retrying once) when one was closed, so
	// idle connections need not live long.
	DefaultIdleTimeout  = 60 * time.Second
	DefaultFrameTimeout = 10 * time.Second
	// DefaultHelloTimeout: a new connection must complete hello within
	// it (the shim sends hello as soon as it connects).
	DefaultHelloTimeout = 5 * time.Second
	// DefaultMaxConns: connections beyond it are closed as soon as they
	// are accepted. The shim holds one per request being routed plus a
	// few idle ones per VCL.
	DefaultMaxConns = 4096
)

// MaxHelloFrame is the largest frame accepted before hello (a hello is
// some 40 bytes): a connection that has not said hello costs at most its
// read buffer.
const MaxHelloFrame = 4 << 10

// MaxBodyMemory bounds the memory all connections together hold for frames
// larger than their read buffer (route requests with long URLs): a
// connection whose frame would take more is dropped.
const MaxBodyMemory = 64 << 20

// growStep is how much a large frame's buffer grows at a time: memory
// follows the bytes actually received, not the length announced.
const growStep = 64 << 10

// readBufSize is the per-connection read buffer: frames that fit are
// decoded in place, larger ones are copied into a separate buffer.
const readBufSize = 8 << 10

// keepBuf is the largest body buffer a connection keeps between frames.
const keepBuf = 64 << 10

// Server serves the protocol on a listener. Set the fields before Serve.
type Server struct {
	Handler      Handler
	Logger       *slog.Logger  // nil: slog.Default()
	IdleTimeout  time.Duration // between frames; 0: DefaultIdleTimeout
	FrameTimeout time.Duration // to receive a started frame or send an answer; 0: DefaultFrameTimeout
	HelloTimeout time.Duration // from accept to a complete hello; 0: DefaultHelloTimeout
	MaxConns     int           // open connections; 0: DefaultMaxConns
	Name         string        // server name in hello; "": ServerName

	// OnConn, when set, is called with +1 when a connection opens and -1
	// when it closes.
	OnConn func(delta int)
	// OnError, when set, is called once per protocol error with its code
	// (CodeFrame also covers bad lengths, stalls and truncated frames).
	OnError func(code string)
	// OnRefused, when set, is called for each connection closed at
	// accept because MaxConns were open.
	OnRefused func()

	refusedLog time.Time    // last "too many connections" log (Serve's goroutine)
	bodyMem    atomic.Int64 // bytes held in conn.body buffers

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*conn]struct{}
	wg       sync.WaitGroup
	shutdown atomic.Bool
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("protocol server closed")

// Serve accepts connections on l and serves each in its own goroutine until
// Shutdown is called (it then returns ErrServerClosed) or l fails
// permanently.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.ln = l
	s.mu.Unlock()
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			if isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logger().Error("accept failed, retrying", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accepting connections: %w", err)
		}
		backoff = 0
		c := s.newConn(nc)
		s.mu.Lock()
		if s.shutdown.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		if max := s.maxConns(); len(s.conns) >= max {
			s.mu.Unlock()
			s.refused(max) // counted before the peer can see the close
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return DefaultMaxConns
}

// refused counts a connection closed at accept, and logs it at most once a
// second.
func (s *Server) refused(max int) {
	if s.OnRefused != nil {
		s.OnRefused()
	}
	if now := time.Now(); now.Sub(s.refusedLog) >= time.Second {
		s.refusedLog = now
		s.logger().Warn("too many connections, closing new ones", "max", max)
	}
}

func isTemporary(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, os.ErrDeadlineExceeded)
}

// Shutdown stops accepting (closing the listener), lets every connection
// finish the request it is answering, closes the connections and waits for
// them until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	s.mu.Lock()
	var err error
	if s.ln != nil {
		err = s.ln.Close()
	}
	for c := range s.conns {
		// Wakes a connection waiting for a frame; one answering a request
		// sees the shutdown flag when it is done.
		_ = c.nc.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("closing listener: %w", err)
	}
	return nil
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// conn is one client connection with all its reusable state.
type conn struct {
	s           *Server
	nc          net.Conn
	br          *bufio.Reader
	body        []byte // for frames larger than the read buffer (accounted in Server.bodyMem)
	consumed    int    // bytes of br to discard after the current frame
	dec         *requestDecoder
	enc         *encoder
	req         request
	decision    route.Decision
	dead        []int
	idle, frame time.Duration
	idleAfter   time.Duration // idle timeout once hello is done (idle is the hello timeout until then)
	rdlIdle     bool          // the read deadline is an idle deadline
	inFrame     bool          // the read deadline is this frame's deadline
	rdlSet      time.Time
	wdlSet      time.Time
	helloDone   bool
	serverName  string
}

func (s *Server) newConn(nc net.Conn) *conn {
	c := &conn{
		s:          s,
		nc:         nc,
		br:         bufio.NewReaderSize(nc, readBufSize),
		dec:        newRequestDecoder(),
		enc:        newEncoder(),
		idle:       s.HelloTimeout,
		idleAfter:  s.IdleTimeout,
		frame:      s.FrameTimeout,
		serverName: s.Name,
	}
	if c.idle <= 0 {
		c.idle = DefaultHelloTimeout
	}
	if c.idleAfter <= 0 {
		c.idleAfter = DefaultIdleTimeout
	}
	if c.frame <= 0 {
		c.frame = DefaultFrameTimeout
	}
	if c.serverName == "" {
		c.serverName = ServerName
	}
	return c
}

func (c *conn) serve() {
	s := c.s
	if s.OnConn != nil {
		s.OnConn(1)
	}
	defer func() {
		if p := recover(); p != nil {
			s.logger().Error("panic in connection handler; connection closed",
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
		c.nc.Close()
		c.setBody(nil)
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if s.OnConn != nil {
			s.OnConn(-1)
		}
		s.wg.Done()
	}()
	for !s.shutdown.Load() {
		body, err := c.readFrame()
		if err != nil {
			c.readFailed(err)
			return
		}
		if !c.handle(body) {
			return
		}
		if _, err := c.br.Discard(c.consumed); err != nil {
			return
		}
		if cap(c.body) > keepBuf {
			c.setBody(nil)
		}
	}
}

func (c *conn) protoError(code string) {
	if c.s.OnError != nil {
		c.s.OnError(code)
	}
}

// readFailed logs why reading a frame failed (a clean close between
// frames is not an error).
func (c *conn) readFailed(err error) {
	if c.s.shutdown.Load() {
		return
	}
	if errors.Is(err, io.EOF) && c.br.Buffered() == 0 {
		return // clean close between frames
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && c.rdlIdle {
		c.s.logger().Debug("closing idle connection")
		return
	}
	if errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
		return
	}
	if errors.Is(err, ErrFrameSize) {
		// Tell the peer why (best effort), without reading the body.
		c.fail(CodeFrame, err.Error())
		return
	}
	c.protoError(CodeFrame)
	c.s.logger().Warn("dropping connection", "err", err)
}

// readFrame returns the next frame's body, waiting at most the idle
// timeout for its first byte and the frame timeout for the rest.
func (c *conn) readFrame() ([]byte, error) {
	c.inFrame = false
	if c.br.Buffered() == 0 {
		now := time.Now()
		// Refreshing the deadline costs a timer update: do it only when
		// the one in place is stale by more than 1/8 of the timeout.
		if !c.rdlIdle || now.Sub(c.rdlSet) > c.idle/8 {
			if err := c.nc.SetReadDeadline(now.Add(c.idle)); err != nil {
				return nil, fmt.Errorf("setting idle deadline: %w", err)
			}
			c.rdlIdle, c.rdlSet = true, now
		}
		if _, err := c.br.Peek(1); err != nil {
			return nil, err
		}
	}
	if c.br.Buffered() < 4 {
		if err := c.frameDeadline(); err != nil {
			return nil, err
		}
	}
	hdr, err := c.br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("reading frame header: %w", err)
	}
	n, err := frameLen(hdr)
	if err != nil {
		return nil, err
	}
	if !c.helloDone && n > MaxHelloFrame {
		return nil, fmt.Errorf("%w %d before hello (must be 1..%d)", ErrFrameSize, n, MaxHelloFrame)
	}
	if 4+n <= c.br.Size() {
		if c.br.Buffered() < 4+n {
			if err := c.frameDeadline(); err != nil {
				return nil, err
			}
		}
		b, err := c.br.Peek(4 + n)
		if err != nil {
			return nil, fmt.Errorf("reading %d-byte frame: %w", n, err)
		}
		c.consumed = 4 + n
		return b[4:], nil
	}
	if err := c.frameDeadline(); err != nil {
		return nil, err
	}
	if _, err := c.br.Discard(4); err != nil {
		return nil, err
	}
	// Grown as the body arrives: a peer announcing 1 MiB and sending
	// nothing costs nothing.
	b := c.body[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			size := min(n, max(2*cap(b), growStep))
			if c.s.bodyMem.Load()+int64(size-cap(b)) > MaxBodyMemory {
				c.setBody(nil)
				return nil, fmt.Errorf("%d-byte frame: frame buffers of all connections would exceed %d bytes", n, MaxBodyMemory)
			}
			nb := make([]byte, len(b), size)
			copy(nb, b)
			c.setBody(nb)
			b = nb
		}
		m, err := c.br.Read(b[len(b):min(n, cap(b))])
		b = b[:len(b)+m]
		if err != nil && len(b) < n {
			c.setBody(nil)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("reading %d-byte frame: %w", n, err)
		}
	}
	c.body = b
	c.consumed = 0
	return c.body, nil
}

// setBody replaces the frame buffer, keeping Server.bodyMem in step.
func (c *conn) setBody(b []byte) {
	if d := cap(b) - cap(c.body); d != 0 {
		c.s.bodyMem.Add(int64(d))
	}
	c.body = b
}

// frameDeadline bounds the rest of a frame that has begun: a client that
// stalls mid-frame is dropped after the frame timeout.
func (c *conn) frameDeadline() error {
	if c.inFrame {
		return nil // already counting down for this frame
	}
	c.inFrame = true
	now := time.Now()
	if err := c.nc.SetReadDeadline(now.Add(c.frame)); err != nil {
		return fmt.Errorf("setting frame deadline: %w", err)
	}
	c.rdlIdle, c.rdlSet = false, now
	return nil
}

func (c *conn) write(b []byte, err error) bool {
	if err != nil {
		c.s.logger().Error("encoding answer", "err", err)
		return false
	}
	now := time.Now()
	if now.Sub(c.wdlSet) > c.frame/8 {
		if err := c.nc.SetWriteDeadline(now.Add(c.frame)); err != nil {
			return false
		}
		c.wdlSet = now
	}
	if _, err := c.nc.Write(b); err != nil {
		c.s.logger().Debug("writing answer", "err", err)
		return false
	}
	return true
}

// fail answers an error and reports whether the connection stays open.
func (c *conn) fail(code, msg string) bool {
	c.protoError(code)
	ok := c.write(c.enc.ErrorAnswer(c.s.Handler.Generation(), code, msg))
	if code != CodeType && code != CodeBusy {
		c.s.logger().Warn("protocol error, closing connection", "code", code, "msg", msg)
		return false
	}
	return ok
}

// handle answers one frame and reports whether to keep the connection.
func (c *conn) handle(body []byte) bool {
	h := c.s.Handler
	req := &c.req
	if err := c.dec.Decode(body, req); err != nil {
		return c.fail(CodeDecode, err.Error())
	}
	if !c.helloDone {
		if req.Type != TypeHello {
			return c.fail(CodeHello, "expected hello first")
		}
		if req.Version != Version {
			return c.fail(CodeVersion, versionMismatch(Version, req.Version))
		}
		c.helloDone = true
		c.idle, c.rdlIdle = c.idleAfter, false // set the longer deadline next
		return c.write(c.enc.HelloAnswer(h.Generation(), c.serverName))
	}
	switch req.Type {
	case TypeRoute:
		if a, ok := h.(Admitter); ok {
			held, ok := a.Admit(&req.Route)
			if !ok {
				return c.fail(CodeBusy, "busy: too many expensive decisions waiting")
			}
			if held {
				defer a.Done()
			}
		}
		d := &c.decision
		gen := h.Route(&req.Route, d)
		return c.write(c.enc.RouteAnswer(gen, d))
	case TypeHello:
		if req.Version != Version {
			return c.fail(CodeVersion, versionMismatch(Version, req.Version))
		}
		return c.write(c.enc.HelloAnswer(h.Generation(), c.serverName))
	case TypeReload:
		r := h.Reload(req.Wait)
		return c.write(c.enc.ReloadAnswer(&r))
	case TypeStatus:
		st := h.Status()
		return c.write(c.enc.StatusAnswer(&st))
	case TypeLive:
		var gen uint64
		c.dead, gen = h.Live(req.Eps, req.Probes, c.dead[:0])
		return c.write(c.enc.LiveAnswer(gen, c.dead))
	case TypeRing:
		rg, ok := h.(Ringer)
		if !ok {
			return c.fail(CodeType, fmt.Sprintf("request type %q is not supported by this server", req.Type))
		}
		gen, r := rg.Ring(req.ID)
		return c.write(c.enc.RingAnswer(gen, req.ID, r))
	case TypeCluster:
		var gen uint64
		var cl *route.Cluster
		if cr, ok := h.(Clusterer); ok {
			gen, cl = cr.Cluster()
		} else {
			gen = h.Generation()
		}
		return c.write(c.enc.ClusterAnswer(gen, cl))
	case TypeDump, TypeExplain:
		in, ok := h.(Inspector)
		if !ok {
			return c.fail(CodeType, fmt.Sprintf("request type %q is not supported by this server", req.Type))
		}
		var gen uint64
		var doc []byte
		if req.Type == TypeDump {
			gen, doc = in.Dump()
		} else {
			gen, doc = in.Explain(&req.Route)
		}
		for {
			n := min(len(doc), dumpChunk)
			if !c.write(c.enc.DataAnswer(req.Type, gen, doc[:n], n < len(doc))) {
				return false
			}
			if doc = doc[n:]; len(doc) == 0 {
				return true
			}
		}
	}
	return c.fail(CodeType, fmt.Sprintf("unknown request type %q", req.Type))
}

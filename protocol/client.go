package protocol

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/varnish/ghost/route"
)

// Client is a connection to ghostd. Its methods are safe for concurrent
// use; they are serialised (one request outstanding per connection). After
// an I/O or framing error the client is broken and every call fails: dial
// again.
type Client struct {
	mu      sync.Mutex
	nc      net.Conn
	br      *bufio.Reader
	enc     *encoder
	rd      bytes.Reader
	dec     *msgpack.Decoder
	body    []byte
	timeout time.Duration
	broken  error
	gen     uint64
	server  string
}

// answerHead holds the keys every answer may carry.
type answerHead struct {
	t, code, msg, err string
	gen               uint64
}

// Dial connects to the ghostd socket at path and does the hello handshake.
// timeout bounds the dial and every later call (0 = no limit).
func Dial(path string, timeout time.Duration) (*Client, error) {
	nc, err := net.DialTimeout("unix", path, timeout)
	if err != nil {
		return nil, fmt.Errorf("connecting to ghostd: %w", err)
	}
	c := &Client{
		nc:      nc,
		br:      bufio.NewReaderSize(nc, 8<<10),
		enc:     newEncoder(),
		timeout: timeout,
	}
	c.dec = msgpack.NewDecoder(&c.rd)
	var v int64
	var server string
	head, err := c.call(TypeHello, func(e *encoder) ([]byte, error) { return e.Hello(Version, ClientName) }, func(key string) (err error) {
		switch key {
		case "v":
			v, err = c.dec.DecodeInt64()
		case "server":
			server, err = c.dec.DecodeString()
		default:
			err = c.dec.Skip()
		}
		return err
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("hello to ghostd at %s: %w", path, err)
	}
	if v != Version {
		nc.Close()
		return nil, &Error{Gen: head.gen, Code: CodeVersion, Msg: versionMismatch(v, Version)}
	}
	c.gen, c.server = head.gen, server
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.nc.Close() }

// Server returns the server name ghostd sent in its hello.
func (c *Client) Server() string { return c.server }

// HelloGen returns the generation ghostd sent in its hello.
func (c *Client) HelloGen() uint64 { return c.gen }

// call encodes a request with build, sends it and decodes the answer: the
// common keys go into the returned head, every other key is handed to fn,
// positioned on its value. An error answer is returned as *Error.
func (c *Client) call(want string, build func(*encoder) ([]byte, error), fn func(key string) error) (answerHead, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.callLocked(want, build, fn)
}

// callLocked is call with c.mu held. A nil build reads one more answer
// frame without sending anything.
func (c *Client) callLocked(want string, build func(*encoder) ([]byte, error), fn func(key string) error) (answerHead, error) {
	var head answerHead
	if c.broken != nil {
		return head, c.broken
	}
	var frame []byte
	if build != nil {
		var err error
		if frame, err = build(c.enc); err != nil {
			return head, err
		}
	}
	head, err := c.exchange(frame, fn)
	if err != nil {
		c.broken = fmt.Errorf("connection unusable after earlier error: %w", err)
		return head, err
	}
	if head.t == TypeError {
		if head.code != CodeType {
			c.broken = fmt.Errorf("connection closed by ghostd after error: %s", head.msg)
		}
		return head, &Error{Gen: head.gen, Code: head.code, Msg: head.msg}
	}
	if head.t != want {
		c.broken = fmt.Errorf("unexpected %q answer to %q", head.t, want)
		return head, c.broken
	}
	return head, nil
}

func (c *Client) exchange(frame []byte, fn func(key string) error) (head answerHead, err error) {
	if c.timeout > 0 {
		if err := c.nc.SetDeadline(time.Now().Add(c.timeout)); err != nil {
			return head, fmt.Errorf("setting deadline: %w", err)
		}
	}
	if frame != nil {
		if _, err := c.nc.Write(frame); err != nil {
			return head, fmt.Errorf("sending request: %w", err)
		}
	}
	body, err := ReadFrame(c.br, c.body)
	if err != nil {
		return head, fmt.Errorf("reading answer: %w", err)
	}
	if cap(body) <= keepBuf {
		c.body = body
	}
	c.rd.Reset(body)
	n, err := c.dec.DecodeMapLen()
	if err != nil {
		return head, fmt.Errorf("decoding answer: %w", err)
	}
	for i := 0; i < n; i++ {
		key, err := c.dec.DecodeString()
		if err != nil {
			return head, fmt.Errorf("decoding answer key: %w", err)
		}
		switch key {
		case "t":
			head.t, err = c.dec.DecodeString()
		case "gen":
			head.gen, err = c.dec.DecodeUint64()
		case "code":
			head.code, err = c.dec.DecodeString()
		case "msg":
			head.msg, err = c.dec.DecodeString()
		case "err":
			head.err, err = c.dec.DecodeString()
		default:
			err = fn(key)
		}
		if err != nil {
			return head, fmt.Errorf("decoding answer field %q: %w", key, err)
		}
	}
	if c.rd.Len() != 0 {
		return head, errors.New("decoding answer: trailing bytes")
	}
	return head, nil
}

// Route asks ghostd for the decision on r.
func (c *Client) Route(r *route.Request) (*RouteAnswer, error) {
	a := &RouteAnswer{}
	d := &a.Decision
	d.Scope = route.ScopeExact
	if i := strings.IndexByte(r.URL, '?'); i >= 0 {
		d.Query = r.URL[i:]
	}
	head, err := c.call(TypeRoute, func(e *encoder) ([]byte, error) { return e.RouteRequest(r) }, func(key string) (err error) {
		switch key {
		case "o":
			err = intInto(c, &d.Outcome)
		case "st":
			err = intInto(c, &d.Status)
		case "ri":
			err = intInto(c, &d.RouteIndex)
		case "vh":
			d.Vhost, err = c.dec.DecodeString()
		case "rn":
			d.RouteName, err = c.dec.DecodeString()
		case "path":
			d.NewPath, err = c.dec.DecodeString()
		case "hst":
			d.NewHost, err = c.dec.DecodeString()
		case "loc":
			d.RedirectBase, err = c.dec.DecodeString()
		case "rs":
			d.Reason, err = c.dec.DecodeString()
		case "bd":
			d.Body, err = c.dec.DecodeString()
		case "nc":
			d.Uncacheable, err = c.dec.DecodeString()
		case "deps":
			err = c.deps(&d.Deps)
		case "sc":
			err = intInto(c, &d.Scope)
		case "pe":
			d.PathEdit, err = c.pathEdit()
		case "g":
			d.Groups, err = c.groups()
		case "rqs", "rqa", "rqr":
			err = c.ops(&d.RequestHeaders, key[2])
		case "rss", "rsa", "rsr":
			err = c.ops(&d.ResponseHeaders, key[2])
		case "cm":
			err = intInto(c, &d.Cache)
		case "cp":
			d.Policy, err = c.policy()
		case "lb":
			d.Balancer, err = c.balancer()
		case "sp":
			d.Session, err = c.session()
		case "hp":
			d.Health, err = c.health()
		case "ol":
			d.Outlier, err = c.outlier()
		case "pn":
			err = intInto(c, &d.Panic)
		case "tm":
			d.Timeouts, err = c.timeouts()
		case "rt":
			d.Retry, err = c.retry()
		case "sh":
			d.Shard, err = c.dec.DecodeUint64()
		case "cr":
			d.CORS, err = c.cors()
		default:
			err = c.dec.Skip()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("route: %w", err)
	}
	a.Gen = head.gen
	return a, nil
}

// Reload asks ghostd to reload its configuration and waits until it is
// done. A failed reload is not a Go error: see ReloadResult.OK and Err.
func (c *Client) Reload() (*ReloadResult, error) { return c.ReloadWait(0) }

// ReloadWait is Reload that waits at most wait (0: until done): a reload
// still running then is answered with Pending and goes on in ghostd.
func (c *Client) ReloadWait(wait time.Duration) (*ReloadResult, error) {
	ok, pending := false, false
	head, err := c.call(TypeReload, func(e *encoder) ([]byte, error) { return e.ReloadRequest(wait) }, func(key string) (err error) {
		switch key {
		case "ok":
			ok, err = c.dec.DecodeBool()
			return err
		case "pending":
			pending, err = c.dec.DecodeBool()
			return err
		}
		return c.dec.Skip()
	})
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	return &ReloadResult{Gen: head.gen, OK: ok, Pending: pending, Msg: head.msg, Err: head.err}, nil
}

// Status asks ghostd for its status.
func (c *Client) Status() (*Status, error) {
	s := &Status{}
	head, err := c.call(TypeStatus, func(e *encoder) ([]byte, error) { return e.Simple(TypeStatus) }, func(key string) (err error) {
		switch key {
		case "vhosts":
			err = intInto(c, &s.Vhosts)
		case "routes":
			err = intInto(c, &s.Routes)
		case "endpoints":
			err = intInto(c, &s.Endpoints)
		case "config":
			s.Config, err = c.dec.DecodeString()
		case "loaded":
			s.Loaded, err = c.dec.DecodeInt64()
		case "last_error":
			s.LastError, err = c.dec.DecodeString()
		case "reloads":
			s.Reloads, err = c.dec.DecodeUint64()
		case "reload_failures":
			s.ReloadFailures, err = c.dec.DecodeUint64()
		case "uptime":
			s.Uptime, err = c.dec.DecodeInt64()
		case "server":
			s.Server, err = c.dec.DecodeString()
		default:
			err = c.dec.Skip()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	s.Gen = head.gen
	return s, nil
}

// Live sends the endpoints the caller holds and returns the indexes of
// those the current table no longer references.
func (c *Client) Live(eps []route.Endpoint) (*LiveAnswer, error) {
	a := &LiveAnswer{}
	head, err := c.call(TypeLive, func(e *encoder) ([]byte, error) { return e.LiveRequest(eps) }, func(key string) (err error) {
		if key != "dead" {
			return c.dec.Skip()
		}
		var is []int64
		is, err = c.ints()
		for _, i := range is {
			a.Dead = append(a.Dead, int(i))
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	a.Gen = head.gen
	return a, nil
}

// Cluster asks ghostd for the cluster its node shards over (nil members
// when it is not clustered).
func (c *Client) Cluster() (*ClusterAnswer, error) {
	a := &ClusterAnswer{}
	head, err := c.call(TypeCluster, func(e *encoder) ([]byte, error) { return e.Simple(TypeCluster) }, func(key string) (err error) {
		switch key {
		case "sh":
			a.Version, err = c.dec.DecodeUint64()
		case "self":
			err = intInto(c, &a.Self)
		case "m":
			a.Members, err = c.endpoints("member")
		case "r":
			a.Ring, err = c.dec.DecodeBytes()
		case "tok":
			a.Token, err = c.dec.DecodeString()
		case "sttl":
			a.SecondaryTTL, err = c.dec.DecodeInt64()
		case "down":
			a.DownSeconds, err = c.dec.DecodeInt64()
		case "ctmo":
			a.HopConnectMs, err = c.dec.DecodeInt64()
		default:
			err = c.dec.Skip()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	a.Gen = head.gen
	return a, nil
}

// Dump asks ghostd for a JSON description of its live table and returns
// it with the generation it describes.
func (c *Client) Dump() (uint64, []byte, error) {
	return c.inspect(TypeDump, func(e *encoder) ([]byte, error) { return e.Simple(TypeDump) })
}

// Explain asks ghostd to explain, in JSON, how its live table decides r.
func (c *Client) Explain(r *route.Request) (uint64, []byte, error) {
	return c.inspect(TypeExplain, func(e *encoder) ([]byte, error) { return e.ExplainRequest(r) })
}

// inspect sends a dump or explain request and joins the document of the
// answer's frames.
func (c *Client) inspect(t string, build func(*encoder) ([]byte, error)) (uint64, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var doc []byte
	more := false
	fn := func(key string) (err error) {
		switch key {
		case "data":
			var b []byte
			b, err = c.dec.DecodeBytes()
			doc = append(doc, b...)
		case "more":
			more, err = c.dec.DecodeBool()
		default:
			err = c.dec.Skip()
		}
		return err
	}
	head, err := c.callLocked(t, build, fn)
	for err == nil && more {
		more = false
		head, err = c.callLocked(t, nil, fn)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", t, err)
	}
	return head.gen, doc, nil
}

// list decodes an array, each element with elem (given its index). An
// empty or nil array gives a nil slice.
func list[T any](c *Client, elem func(i int) (T, error)) ([]T, error) {
	n, err := c.dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	var out []T
	for i := 0; i < n; i++ {
		v, err := elem(i)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// pairLen decodes the length of a 2-element array; what names the array
// in the error.
func (c *Client) pairLen(what string) error {
	if m, err := c.dec.DecodeArrayLen(); err != nil || m != 2 {
		return fmt.Errorf("%s: want 2 elements (%v)", what, err)
	}
	return nil
}

// intInto decodes an integer into *p.
func intInto[T ~int | ~uint8](c *Client, p *T) error {
	i, err := c.dec.DecodeInt64()
	*p = T(i)
	return err
}

func (c *Client) ints() ([]int64, error) {
	return list(c, func(int) (int64, error) { return c.dec.DecodeInt64() })
}

func (c *Client) strs() ([]string, error) {
	return list(c, func(int) (string, error) { return c.dec.DecodeString() })
}

func (c *Client) pairs() ([]route.Header, error) {
	return list(c, func(i int) (h route.Header, err error) {
		if err = c.pairLen(fmt.Sprintf("header pair %d", i)); err != nil {
			return h, err
		}
		if h.Name, err = c.dec.DecodeString(); err != nil {
			return h, err
		}
		h.Value, err = c.dec.DecodeString()
		return h, err
	})
}

// ops decodes one of set ('s'), add ('a') or remove ('r') into *p.
func (c *Client) ops(p **route.HeaderOps, which byte) (err error) {
	if *p == nil {
		*p = &route.HeaderOps{}
	}
	switch which {
	case 's':
		(*p).Set, err = c.pairs()
	case 'a':
		(*p).Add, err = c.pairs()
	default:
		(*p).Remove, err = c.strs()
	}
	return err
}

func (c *Client) deps(dp *route.Deps) error {
	n, err := c.dec.DecodeMapLen()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		k, err := c.dec.DecodeString()
		if err != nil {
			return err
		}
		switch k {
		case "p":
			dp.Path, err = c.dec.DecodeBool()
		case "m":
			dp.Method, err = c.dec.DecodeBool()
		case "q":
			dp.Query, err = c.dec.DecodeBool()
		case "s":
			dp.Socket, err = c.dec.DecodeBool()
		case "x":
			dp.HTTPS, err = c.dec.DecodeBool()
		case "h":
			dp.Headers, err = c.strs()
		case "hv":
			dp.HeaderValues, err = c.headerValues()
		case "qv":
			dp.QueryValues, err = c.queryValues()
		case "sl":
			var ls []int64
			ls, err = c.ints()
			dp.ScopeLens = make([]int, len(ls))
			for j, l := range ls {
				dp.ScopeLens[j] = int(l)
			}
		case "c":
			dp.CacheHeaders, err = c.strs()
		default:
			err = c.dec.Skip()
		}
		if err != nil {
			return fmt.Errorf("deps %q: %w", k, err)
		}
	}
	return nil
}

func (c *Client) pathEdit() (*route.PathEdit, error) {
	if n, err := c.dec.DecodeArrayLen(); err != nil || n != 2 {
		return nil, fmt.Errorf("want [cut, with] (%v)", err)
	}
	cut, err := c.dec.DecodeInt64()
	if err != nil {
		return nil, err
	}
	with, err := c.dec.DecodeString()
	return &route.PathEdit{Cut: int(cut), With: with}, err
}

// headerValues decodes deps "hv": an array of nil or string arrays.
func (c *Client) headerValues() ([][]string, error) {
	n, err := c.dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	out := make([][]string, n)
	for i := range out {
		if out[i], err = c.strs(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// queryValues decodes deps "qv": [[name, [values]], ...].
func (c *Client) queryValues() ([]route.ParamValues, error) {
	n, err := c.dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	out := make([]route.ParamValues, n)
	for i := range out {
		if m, err := c.dec.DecodeArrayLen(); err != nil || m != 2 {
			return nil, fmt.Errorf("qv %d: want [name, values] (%v)", i, err)
		}
		if out[i].Name, err = c.dec.DecodeString(); err != nil {
			return nil, err
		}
		if out[i].Values, err = c.strs(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// timeouts decodes "tm", a route's timeouts.
func (c *Client) timeouts() (*route.Timeouts, error) {
	t := &route.Timeouts{}
	err := c.fields("tm", func(k string) (err error) {
		switch k {
		case "r":
			t.Request, err = c.dec.DecodeInt64()
		case "b":
			t.BackendRequest, err = c.dec.DecodeInt64()
		default:
			err = c.dec.Skip()
		}
		return err
	})
	return t, err
}

// retry decodes "rt", a route's retry.
func (c *Client) retry() (*route.Retry, error) {
	r := &route.Retry{}
	err := c.fields("rt", func(k string) (err error) {
		switch k {
		case "a":
			err = intInto(c, &r.Attempts)
		case "c":
			r.Codes, err = list(c, func(int) (code int, err error) { return code, intInto(c, &code) })
		case "b":
			r.Backoff, err = c.dec.DecodeInt64()
		default:
			err = c.dec.Skip()
		}
		return err
	})
	return r, err
}

// policy decodes "cp", a route's cache_policy.
func (c *Client) policy() (*route.CachePolicy, error) {
	n, err := c.dec.DecodeMapLen()
	if err != nil {
		return nil, err
	}
	p := &route.CachePolicy{TTL: -1, Grace: -1, Keep: -1}
	for i := 0; i < n; i++ {
		k, err := c.dec.DecodeString()
		if err != nil {
			return nil, err
		}
		switch k {
		case "ttl":
			p.TTL, err = c.dec.DecodeInt64()
		case "f":
			p.Forced, err = c.dec.DecodeBool()
		case "gr":
			p.Grace, err = c.dec.DecodeInt64()
		case "kp":
			p.Keep, err = c.dec.DecodeInt64()
		case "kh":
			p.KeyHeaders, err = c.strs()
		case "qi":
			p.QueryInclude, err = c.strs()
		case "qx":
			p.QueryExclude, err = c.strs()
		default:
			err = c.dec.Skip()
		}
		if err != nil {
			return nil, fmt.Errorf("cp %q: %w", k, err)
		}
	}
	return p, nil
}

// health decodes "hp", the route's probe: "u" a string, the rest
// unsigned integers (durations in ms).
func (c *Client) health() (*route.HealthCheck, error) {
	h := &route.HealthCheck{}
	err := c.fields("hp", func(k string) (err error) {
		switch k {
		case "u":
			h.Path, err = c.dec.DecodeString()
			return err
		case "h":
			h.Host, err = c.dec.DecodeString()
			return err
		case "id", "iv", "to", "w", "th", "in", "x":
		default:
			return c.dec.Skip() // a later key
		}
		v, err := c.dec.DecodeUint64()
		ms := time.Duration(v) * time.Millisecond
		switch k {
		case "id":
			h.ID = uint32(v)
		case "iv":
			h.Interval = ms
		case "to":
			h.Timeout = ms
		case "w":
			h.Window = uint(v)
		case "th":
			h.Threshold = uint(v)
		case "in":
			h.Initial = uint(v)
		case "x":
			h.ExpectedStatus = int(v)
		}
		return err
	})
	return h, err
}

// outlier decodes "ol", the route's ejection rule (durations in ms).
func (c *Client) outlier() (*route.Outlier, error) {
	o := &route.Outlier{}
	err := c.fields("ol", func(k string) error {
		if k != "n" && k != "be" && k != "me" && k != "mp" {
			return c.dec.Skip() // a later key
		}
		v, err := c.dec.DecodeUint64()
		switch k {
		case "n":
			o.ConsecutiveFailures = uint(v)
		case "be":
			o.BaseEjection = time.Duration(v) * time.Millisecond
		case "me":
			o.MaxEjection = time.Duration(v) * time.Millisecond
		case "mp":
			o.MaxEjectionPercent = uint(v)
		}
		return err
	})
	return o, err
}

// balancer decodes "lb" (the ring itself: Client.Ring).
func (c *Client) balancer() (*route.Balancer, error) {
	b := &route.Balancer{}
	err := c.fields("lb", func(k string) (err error) {
		switch k {
		case "r":
			b.RingID, err = c.dec.DecodeUint64()
		case "k":
			b.Keys, err = list(c, func(i int) (hk route.HashKey, err error) {
				if err = c.pairLen(fmt.Sprintf("key %d [kind, name]", i)); err != nil {
					return hk, err
				}
				if err = intInto(c, &hk.Kind); err != nil {
					return hk, err
				}
				hk.Name, err = c.dec.DecodeString()
				return hk, err
			})
		default:
			err = c.dec.Skip()
		}
		return err
	})
	return b, err
}

// session decodes "sp".
func (c *Client) session() (*route.Session, error) {
	s := &route.Session{}
	err := c.fields("sp", func(k string) (err error) {
		switch k {
		case "t":
			err = intInto(c, &s.Type)
		case "n":
			s.Name, err = c.dec.DecodeString()
		case "a":
			s.Absolute, err = c.dec.DecodeInt64()
		case "i":
			s.Idle, err = c.dec.DecodeInt64()
		case "tk":
			s.Tokens, err = c.strs()
		default:
			err = c.dec.Skip()
		}
		return err
	})
	return s, err
}

// fields decodes a map with string keys, calling f for each key.
func (c *Client) fields(what string, f func(k string) error) error {
	n, err := c.dec.DecodeMapLen()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for i := 0; i < n; i++ {
		k, err := c.dec.DecodeString()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := f(k); err != nil {
			return fmt.Errorf("%s %q: %w", what, k, err)
		}
	}
	return nil
}

// Ring asks ghostd for the consistent-hash ring a route answer named
// (route.Balancer.RingID); Points is nil when its table has no such ring.
func (c *Client) Ring(id uint64) (*RingAnswer, error) {
	a := &RingAnswer{ID: id}
	head, err := c.call(TypeRing, func(e *encoder) ([]byte, error) { return e.RingRequest(id) }, func(key string) (err error) {
		switch key {
		case "id":
			a.ID, err = c.dec.DecodeUint64()
		case "n":
			a.Members, err = c.dec.DecodeInt()
		case "pts":
			a.Points, err = c.dec.DecodeBytes()
		default:
			err = c.dec.Skip()
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ring: %w", err)
	}
	a.Gen = head.gen
	return a, nil
}

func (c *Client) groups() ([]route.Group, error) {
	return list(c, func(i int) (g route.Group, err error) {
		if err = c.pairLen(fmt.Sprintf("group %d [weight, endpoints]", i)); err != nil {
			return g, err
		}
		if g.Weight, err = c.dec.DecodeUint64(); err != nil {
			return g, fmt.Errorf("group %d weight: %w", i, err)
		}
		g.Endpoints, err = c.endpoints(fmt.Sprintf("group %d endpoint", i))
		if err != nil {
			return g, fmt.Errorf("group %d endpoints: %w", i, err)
		}
		return g, nil
	})
}

// endpoints decodes [[addr, port], ...]; what names an element in errors.
func (c *Client) endpoints(what string) ([]route.Endpoint, error) {
	return list(c, func(j int) (ep route.Endpoint, err error) {
		if err = c.pairLen(fmt.Sprintf("%s %d [addr, port]", what, j)); err != nil {
			return ep, err
		}
		if ep.Address, err = c.dec.DecodeString(); err != nil {
			return ep, err
		}
		p, err := c.dec.DecodeUint64()
		ep.Port = uint16(p)
		return ep, err
	})
}

package protocol

import (
	"github.com/vmihailenco/msgpack/v5"
	"time"

	"github.com/varnish/ghost/route"
	"github.com/varnish/ghost/route/ring"
)

// frameBuf is an append-only writer; writing to it never fails, so the
// msgpack encoder's errors are ignored throughout this file.
type frameBuf struct{ b []byte }

// Write appends p.
func (w *frameBuf) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }

// WriteByte appends c.
func (w *frameBuf) WriteByte(c byte) error { w.b = append(w.b, c); return nil }

// encoder builds complete frames (length header included) for requests and
// answers into one reused buffer. The returned slice is valid until the next
// call. One per connection; not safe for concurrent use.
type encoder struct {
	w   frameBuf
	enc *msgpack.Encoder
}

// newEncoder returns an encoder ready for use.
func newEncoder() *encoder {
	e := &encoder{}
	e.enc = msgpack.NewEncoder(&e.w)
	e.enc.UseCompactInts(true)
	return e
}

func (e *encoder) begin(nkeys int, t string) {
	e.w.b = append(e.w.b[:0], 0, 0, 0, 0)
	_ = e.enc.EncodeMapLen(nkeys)
	e.str("t", t)
}

func (e *encoder) end() ([]byte, error) {
	if err := finishFrame(e.w.b); err != nil {
		return nil, err
	}
	return e.w.b, nil
}

func (e *encoder) key(k string)            { _ = e.enc.EncodeString(k) }
func (e *encoder) str(k, v string)         { e.key(k); _ = e.enc.EncodeString(v) }
func (e *encoder) uint(k string, v uint64) { e.key(k); _ = e.enc.EncodeUint(v) }
func (e *encoder) int(k string, v int64)   { e.key(k); _ = e.enc.EncodeInt(v) }
func (e *encoder) bool(k string, v bool)   { e.key(k); _ = e.enc.EncodeBool(v) }

func (e *encoder) pairs(k string, hs []route.Header) {
	e.key(k)
	_ = e.enc.EncodeArrayLen(len(hs))
	for _, h := range hs {
		_ = e.enc.EncodeArrayLen(2)
		_ = e.enc.EncodeString(h.Name)
		_ = e.enc.EncodeString(h.Value)
	}
}

// ops writes a header modifier's non-empty lists under the keys set, add
// and remove; opsKeys counts them.
func (e *encoder) ops(set, add, remove string, o *route.HeaderOps) {
	if len(o.Set) > 0 {
		e.pairs(set, o.Set)
	}
	if len(o.Add) > 0 {
		e.pairs(add, o.Add)
	}
	if len(o.Remove) > 0 {
		e.strs(remove, o.Remove)
	}
}

func opsKeys(o *route.HeaderOps) int {
	n := 0
	for _, l := range []int{len(o.Set), len(o.Add), len(o.Remove)} {
		if l > 0 {
			n++
		}
	}
	return n
}

func (e *encoder) strs(k string, ss []string) {
	e.key(k)
	e.strList(ss)
}

func (e *encoder) strList(ss []string) {
	_ = e.enc.EncodeArrayLen(len(ss))
	for _, s := range ss {
		_ = e.enc.EncodeString(s)
	}
}

func (e *encoder) endpoints(k string, eps []route.Endpoint) {
	e.key(k)
	_ = e.enc.EncodeArrayLen(len(eps))
	for _, ep := range eps {
		_ = e.enc.EncodeArrayLen(2)
		_ = e.enc.EncodeString(ep.Address)
		_ = e.enc.EncodeUint(uint64(ep.Port))
	}
}

// Hello encodes a hello request.
func (e *encoder) Hello(version int64, client string) ([]byte, error) {
	e.begin(3, TypeHello)
	e.int("v", version)
	e.str("client", client)
	return e.end()
}

// Simple encodes a request that has no fields besides its type (reload,
// status).
func (e *encoder) Simple(t string) ([]byte, error) {
	e.begin(1, t)
	return e.end()
}

// ReloadRequest encodes a reload request that waits at most wait (0:
// until the reload is done).
func (e *encoder) ReloadRequest(wait time.Duration) ([]byte, error) {
	if wait <= 0 {
		return e.Simple(TypeReload)
	}
	e.begin(2, TypeReload)
	e.uint("wait", uint64(wait.Milliseconds()))
	return e.end()
}

// RouteRequest encodes a route request.
func (e *encoder) RouteRequest(r *route.Request) ([]byte, error) {
	return e.routeRequest(TypeRoute, r)
}

// ExplainRequest encodes an explain request: the fields of a route request.
func (e *encoder) ExplainRequest(r *route.Request) ([]byte, error) {
	return e.routeRequest(TypeExplain, r)
}

// DataAnswer encodes one frame of a dump or explain answer: a piece of a
// JSON document, with more set when further frames follow.
func (e *encoder) DataAnswer(t string, gen uint64, data []byte, more bool) ([]byte, error) {
	e.begin(4, t)
	e.uint("gen", gen)
	e.key("data")
	_ = e.enc.EncodeBytes(data)
	e.bool("more", more)
	return e.end()
}

func (e *encoder) routeRequest(t string, r *route.Request) ([]byte, error) {
	n := 5
	if r.Socket != "" {
		n++
	}
	if r.HTTPS {
		n++
	}
	e.begin(n, t)
	e.str("host", r.Host)
	e.str("method", r.Method)
	e.str("url", r.URL)
	e.pairs("hdrs", r.Headers)
	if r.Socket != "" {
		e.str("sock", r.Socket)
	}
	if r.HTTPS {
		e.bool("https", true)
	}
	return e.end()
}

// LiveRequest encodes a live request.
func (e *encoder) LiveRequest(eps []route.Endpoint) ([]byte, error) {
	e.begin(2, TypeLive)
	e.endpoints("eps", eps)
	return e.end()
}

// HelloAnswer encodes the server's hello.
func (e *encoder) HelloAnswer(gen uint64, server string) ([]byte, error) {
	e.begin(4, TypeHello)
	e.int("v", Version)
	e.uint("gen", gen)
	e.str("server", server)
	return e.end()
}

// ErrorAnswer encodes an error answer.
func (e *encoder) ErrorAnswer(gen uint64, code, msg string) ([]byte, error) {
	e.begin(4, TypeError)
	e.uint("gen", gen)
	e.str("code", code)
	e.str("msg", msg)
	return e.end()
}

// ReloadAnswer encodes the answer to a reload.
func (e *encoder) ReloadAnswer(r *ReloadResult) ([]byte, error) {
	n := 4
	if r.Pending {
		n++
	}
	e.begin(n, TypeReload)
	e.uint("gen", r.Gen)
	e.bool("ok", r.OK)
	if r.Pending {
		e.bool("pending", true)
	}
	if r.OK {
		e.str("msg", r.Msg)
	} else {
		e.str("err", r.Err)
	}
	return e.end()
}

// StatusAnswer encodes the answer to a status request.
func (e *encoder) StatusAnswer(s *Status) ([]byte, error) {
	n := 11
	if s.LastError != "" {
		n++
	}
	e.begin(n, TypeStatus)
	e.uint("gen", s.Gen)
	e.int("vhosts", int64(s.Vhosts))
	e.int("routes", int64(s.Routes))
	e.int("endpoints", int64(s.Endpoints))
	e.str("config", s.Config)
	e.int("loaded", s.Loaded)
	if s.LastError != "" {
		e.str("last_error", s.LastError)
	}
	e.uint("reloads", s.Reloads)
	e.uint("reload_failures", s.ReloadFailures)
	e.int("uptime", s.Uptime)
	e.str("server", s.Server)
	return e.end()
}

// RingRequest encodes a ring request.
func (e *encoder) RingRequest(id uint64) ([]byte, error) {
	e.begin(2, TypeRing)
	e.uint("id", id)
	return e.end()
}

// RingAnswer encodes the answer to a ring request: gen and id, and when
// r is not nil its number of members "n" and its points "pts" (bin).
func (e *encoder) RingAnswer(gen, id uint64, r *ring.Ring) ([]byte, error) {
	n := 3
	if r != nil {
		n += 2
	}
	e.begin(n, TypeRing)
	e.uint("gen", gen)
	e.uint("id", id)
	if r != nil {
		e.int("n", int64(len(r.Members)))
		e.key("pts")
		_ = e.enc.EncodeBytes(r.Encode())
	}
	return e.end()
}

// LiveAnswer encodes the answer to a live request.
func (e *encoder) LiveAnswer(gen uint64, dead []int) ([]byte, error) {
	e.begin(3, TypeLive)
	e.uint("gen", gen)
	e.key("dead")
	_ = e.enc.EncodeArrayLen(len(dead))
	for _, i := range dead {
		_ = e.enc.EncodeInt(int64(i))
	}
	return e.end()
}

// RouteAnswer encodes the answer to a route request: t, gen, o, st, ri and
// deps are always present, the other keys only when they are not empty.
// The weighted pick among the groups is the client's, per request
// (route.Pick).
func (e *encoder) RouteAnswer(gen uint64, d *route.Decision) ([]byte, error) {
	n := 6
	cond := func(b bool) bool {
		if b {
			n++
		}
		return b
	}
	hasVh := cond(d.Vhost != "")
	hasRn := cond(d.RouteName != "")
	hasG := cond(len(d.Groups) > 0)
	rq, rs := d.RequestHeaders, d.ResponseHeaders
	if rq == nil {
		rq = &route.HeaderOps{}
	}
	if rs == nil {
		rs = &route.HeaderOps{}
	}
	n += opsKeys(rq)
	cond(d.NewPath != "")
	cond(d.NewHost != "")
	n += opsKeys(rs)
	cond(d.RedirectBase != "")
	cond(d.Scope != route.ScopeExact)
	cond(d.PathEdit != nil)
	cond(d.Reason != "")
	cond(d.Body != "")
	cond(d.Uncacheable != "")
	cond(d.Cache != route.CacheOrigin)
	cond(d.Policy != nil)
	cond(d.Health != nil)
	cond(d.Outlier != nil)
	cond(d.Health != nil || d.Outlier != nil)
	cond(d.Balancer != nil)
	cond(d.Session != nil)
	cond(d.Timeouts != nil)
	cond(d.Retry != nil)
	cond(d.Shard != 0)
	cond(d.CORS != nil)

	e.begin(n, TypeRoute)
	e.uint("gen", gen)
	e.int("o", int64(d.Outcome))
	e.int("st", int64(d.Status))
	e.int("ri", int64(d.RouteIndex))
	if hasVh {
		e.str("vh", d.Vhost)
	}
	if hasRn {
		e.str("rn", d.RouteName)
	}
	e.key("deps")
	dp := &d.Deps
	dn := 5
	for _, b := range []bool{len(dp.Headers) > 0, dp.HeaderValues != nil, dp.QueryValues != nil, dp.ScopeLens != nil} {
		if b {
			dn++
		}
	}
	if len(dp.CacheHeaders) > 0 {
		dn++
	}
	_ = e.enc.EncodeMapLen(dn)
	e.bool("p", dp.Path)
	e.bool("m", dp.Method)
	e.bool("q", dp.Query)
	e.bool("s", dp.Socket)
	e.bool("x", dp.HTTPS)
	if len(dp.Headers) > 0 {
		e.strs("h", dp.Headers)
	}
	if dp.HeaderValues != nil {
		e.key("hv")
		_ = e.enc.EncodeArrayLen(len(dp.HeaderValues))
		for _, vs := range dp.HeaderValues {
			if vs == nil {
				_ = e.enc.EncodeNil()
				continue
			}
			e.strList(vs)
		}
	}
	if dp.QueryValues != nil {
		e.key("qv")
		_ = e.enc.EncodeArrayLen(len(dp.QueryValues))
		for _, p := range dp.QueryValues {
			_ = e.enc.EncodeArrayLen(2)
			_ = e.enc.EncodeString(p.Name)
			e.strList(p.Values)
		}
	}
	if dp.ScopeLens != nil {
		e.key("sl")
		_ = e.enc.EncodeArrayLen(len(dp.ScopeLens))
		for _, l := range dp.ScopeLens {
			_ = e.enc.EncodeInt(int64(l))
		}
	}
	if len(dp.CacheHeaders) > 0 {
		e.strs("c", dp.CacheHeaders)
	}
	if hasG {
		e.key("g")
		_ = e.enc.EncodeArrayLen(len(d.Groups))
		for i := range d.Groups {
			g := &d.Groups[i]
			_ = e.enc.EncodeArrayLen(2)
			_ = e.enc.EncodeUint(g.Weight)
			_ = e.enc.EncodeArrayLen(len(g.Endpoints))
			for _, ep := range g.Endpoints {
				_ = e.enc.EncodeArrayLen(2)
				_ = e.enc.EncodeString(ep.Address)
				_ = e.enc.EncodeUint(uint64(ep.Port))
			}
		}
	}
	e.ops("rqs", "rqa", "rqr", rq)
	if d.NewPath != "" {
		e.str("path", d.NewPath)
	}
	if d.NewHost != "" {
		e.str("hst", d.NewHost)
	}
	e.ops("rss", "rsa", "rsr", rs)
	if d.RedirectBase != "" {
		e.str("loc", d.RedirectBase)
	}
	if d.Scope != route.ScopeExact {
		e.int("sc", int64(d.Scope))
	}
	if pe := d.PathEdit; pe != nil {
		e.key("pe")
		_ = e.enc.EncodeArrayLen(2)
		_ = e.enc.EncodeInt(int64(pe.Cut))
		_ = e.enc.EncodeString(pe.With)
	}
	if d.Reason != "" {
		e.str("rs", d.Reason)
	}
	if d.Body != "" {
		e.str("bd", d.Body)
	}
	if d.Uncacheable != "" {
		e.str("nc", d.Uncacheable)
	}
	if d.Cache != route.CacheOrigin {
		e.int("cm", int64(d.Cache))
	}
	if d.Policy != nil {
		e.policy(d.Policy)
	}
	if h := d.Health; h != nil {
		e.probe(h)
	}
	if o := d.Outlier; o != nil {
		e.key("ol")
		_ = e.enc.EncodeMapLen(4)
		e.uint("n", uint64(o.ConsecutiveFailures))
		e.int("be", o.BaseEjection.Milliseconds())
		e.int("me", o.MaxEjection.Milliseconds())
		e.uint("mp", uint64(o.MaxEjectionPercent))
	}
	if d.Health != nil || d.Outlier != nil {
		e.int("pn", int64(d.Panic))
	}
	if d.Balancer != nil {
		e.balancer(d.Balancer)
	}
	if d.Session != nil {
		e.session(d.Session)
	}
	if t := d.Timeouts; t != nil {
		e.timeouts(t)
	}
	if r := d.Retry; r != nil {
		e.retry(r)
	}
	if d.Shard != 0 {
		e.uint("sh", d.Shard)
	}
	if d.CORS != nil {
		e.cors(d.CORS)
	}
	return e.end()
}

// probe encodes an active probe as the map "hp": id, u, h (only when
// set), iv, to, w, th, in, x.
func (e *encoder) probe(h *route.HealthCheck) {
	e.key("hp")
	n := 8
	if h.Host != "" {
		n++
	}
	_ = e.enc.EncodeMapLen(n)
	e.uint("id", uint64(h.ID))
	e.str("u", h.Path)
	if h.Host != "" {
		e.str("h", h.Host)
	}
	e.int("iv", h.Interval.Milliseconds())
	e.int("to", h.Timeout.Milliseconds())
	e.uint("w", uint64(h.Window))
	e.uint("th", uint64(h.Threshold))
	e.uint("in", uint64(h.Initial))
	e.int("x", int64(h.ExpectedStatus))
}

// ClusterAnswer encodes the answer to a cluster request: t, gen, and
// when cl is not nil sh (its version), self, m (members), r (the ring as
// ring.Encode writes it, bin; absent without members), tok, sttl, down
// and ctmo, and hp (the probe of members' backends) when there is one.
func (e *encoder) ClusterAnswer(gen uint64, cl *route.Cluster) ([]byte, error) {
	if cl == nil {
		e.begin(2, TypeCluster)
		e.uint("gen", gen)
		return e.end()
	}
	n := 9
	if cl.Ring != nil {
		n++
	}
	if cl.Probe != nil {
		n++
	}
	e.begin(n, TypeCluster)
	e.uint("gen", gen)
	e.uint("sh", cl.Version)
	e.int("self", int64(cl.Self))
	e.endpoints("m", cl.Members)
	if cl.Ring != nil {
		e.key("r")
		_ = e.enc.EncodeBytes(cl.Ring.Encode())
	}
	e.str("tok", cl.Token)
	e.int("sttl", cl.SecondaryTTL)
	e.int("down", cl.DownSeconds)
	e.int("ctmo", cl.HopConnectMs)
	if cl.Probe != nil {
		e.probe(cl.Probe)
	}
	return e.end()
}

// timeouts encodes a route's timeouts as the map "tm": r (request) and b
// (backend_request) in milliseconds, each only when not 0.
func (e *encoder) timeouts(t *route.Timeouts) {
	n := 0
	for _, b := range []bool{t.Request > 0, t.BackendRequest > 0} {
		if b {
			n++
		}
	}
	e.key("tm")
	_ = e.enc.EncodeMapLen(n)
	if t.Request > 0 {
		e.int("r", t.Request)
	}
	if t.BackendRequest > 0 {
		e.int("b", t.BackendRequest)
	}
}

// retry encodes a route's retry as the map "rt": a (attempts), c (codes,
// when any), b (backoff in milliseconds, when not 0).
func (e *encoder) retry(r *route.Retry) {
	n := 1
	for _, b := range []bool{len(r.Codes) > 0, r.Backoff > 0} {
		if b {
			n++
		}
	}
	e.key("rt")
	_ = e.enc.EncodeMapLen(n)
	e.int("a", int64(r.Attempts))
	if len(r.Codes) > 0 {
		e.key("c")
		_ = e.enc.EncodeArrayLen(len(r.Codes))
		for _, c := range r.Codes {
			_ = e.enc.EncodeInt(int64(c))
		}
	}
	if r.Backoff > 0 {
		e.int("b", r.Backoff)
	}
}

// policy encodes a route's cache_policy as the map "cp": keys only for
// what is set (ttl, f, gr, kp, kh, qi, qx).
func (e *encoder) policy(p *route.CachePolicy) {
	n := 0
	for _, b := range []bool{p.TTL >= 0, p.Forced, p.Grace >= 0, p.Keep >= 0,
		len(p.KeyHeaders) > 0, len(p.QueryInclude) > 0, len(p.QueryExclude) > 0} {
		if b {
			n++
		}
	}
	e.key("cp")
	_ = e.enc.EncodeMapLen(n)
	if p.TTL >= 0 {
		e.int("ttl", p.TTL)
	}
	if p.Forced {
		e.bool("f", true)
	}
	if p.Grace >= 0 {
		e.int("gr", p.Grace)
	}
	if p.Keep >= 0 {
		e.int("kp", p.Keep)
	}
	if len(p.KeyHeaders) > 0 {
		e.strs("kh", p.KeyHeaders)
	}
	if len(p.QueryInclude) > 0 {
		e.strs("qi", p.QueryInclude)
	}
	if len(p.QueryExclude) > 0 {
		e.strs("qx", p.QueryExclude)
	}
}

// balancer encodes a consistent-hash load balancer as the map "lb":
// r the ring's ID, k the keys [[kind, name], ...].
func (e *encoder) balancer(b *route.Balancer) {
	e.key("lb")
	_ = e.enc.EncodeMapLen(2)
	e.uint("r", b.RingID)
	e.key("k")
	_ = e.enc.EncodeArrayLen(len(b.Keys))
	for _, k := range b.Keys {
		_ = e.enc.EncodeArrayLen(2)
		_ = e.enc.EncodeUint(uint64(k.Kind))
		_ = e.enc.EncodeString(k.Name)
	}
}

// session encodes session persistence as the map "sp": t type, n name,
// a and i the timeouts in seconds (0: none), tk the endpoints' tokens.
func (e *encoder) session(s *route.Session) {
	e.key("sp")
	_ = e.enc.EncodeMapLen(5)
	e.uint("t", uint64(s.Type))
	e.str("n", s.Name)
	e.int("a", s.Absolute)
	e.int("i", s.Idle)
	e.strs("tk", s.Tokens)
}

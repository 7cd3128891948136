package route

// Affinity: a route's "load_balancer" (consistent hashing over its
// endpoints on a ring of route/ring) and "session_persistence" (GEP-1619:
// a cookie or header naming the endpoint). Validation, the rings, the
// session tokens. docs/configuration.md has the rules for users; the
// shim applies them mechanically (docs/protocol.md, keys lb and sp).

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/varnish/ghost/route/ring"
)

// HashKeyKind says what a consistent-hash key is read from.
type HashKeyKind uint8

// Hash key kinds (the numbers are the wire's, docs/protocol.md "lb").
const (
	// KeyURL: the request URL as the client sent it (path and query).
	KeyURL HashKeyKind = iota
	// KeyCacheKey: the object's cache key (Varnish's hash digest,
	// which ghost.hash() fills from the host and cache-key URL).
	KeyCacheKey
	// KeyHeader: the value of the first line of request header Name;
	// absent or empty: the next key.
	KeyHeader
	// KeyCookie: the value of cookie Name in the Cookie header; absent
	// or empty: the next key.
	KeyCookie
	// KeySourceIP: the client's address (Varnish's client.ip).
	KeySourceIP
)

// MaxHashKeys bounds a load_balancer's key plus fallbacks.
const MaxHashKeys = 8

// HashKey is one key of a consistent-hash load balancer.
type HashKey struct {
	Kind HashKeyKind
	Name string // KeyHeader: lower-case header name; KeyCookie: cookie name
}

// String is the key as written in ghost.json.
func (k HashKey) String() string {
	switch k.Kind {
	case KeyCacheKey:
		return "cache_key"
	case KeyHeader:
		return "header:" + k.Name
	case KeyCookie:
		return "cookie:" + k.Name
	case KeySourceIP:
		return "source_ip"
	}
	return "url"
}

// Balancer is a route's consistent-hash load balancer: the data plane
// hashes the first of Keys the request has (ring.Hash of its bytes) and
// walks Ring from there, skipping unhealthy endpoints; a request without
// any of the keys is picked by weight as without a balancer. Ring's
// members are the endpoints of the decision's Groups, flattened in order
// (an endpoint listed twice owns its points through its first place).
type Balancer struct {
	Keys   []HashKey
	Ring   *ring.Ring
	RingID uint64 // Ring.ID(): the data plane asks for the ring by it
}

// String summarises the balancer for ghostd dump: "consistent_hash
// <key>[, <fallback>...] (ring <id>: <n> points over <m> endpoints)".
func (b *Balancer) String() string {
	keys := make([]string, len(b.Keys))
	for i, k := range b.Keys {
		keys[i] = k.String()
	}
	return fmt.Sprintf("consistent_hash %s (ring %d: %d points over %d endpoints)",
		strings.Join(keys, ", "), b.RingID, len(b.Ring.Points), len(b.Ring.Members))
}

// SessionType is where a persistent session's token travels.
type SessionType uint8

// Session types.
const (
	SessionCookie SessionType = iota // Set-Cookie / Cookie
	SessionHeader                    // a response header the client echoes
)

// Session is a route's session persistence (GEP-1619). The first
// response of a session carries Name (a cookie or header) with the token
// of the endpoint that served it; a later request carrying a token of
// Tokens goes to that endpoint while it is in the route and healthy.
type Session struct {
	Type SessionType
	Name string
	// Absolute and Idle timeouts in whole seconds, 0 when not set.
	Absolute, Idle int64
	// Tokens are the endpoints' tokens, parallel to the flattened
	// endpoints of the decision's Groups: a truncated HMAC-SHA256 of the
	// route's identity and the endpoint under the session secret
	// (Table.SetSessionSecret), base64url, TokenLen characters.
	Tokens []string

	ident string // vhost key, route identity: what the HMAC covers
	eps   []Endpoint
}

// String summarises the session persistence for ghostd dump: "cookie
// <name>[, absolute <s>s][, idle <s>s]" (or "header <name>...").
func (s *Session) String() string {
	out := "cookie " + s.Name
	if s.Type == SessionHeader {
		out = "header " + s.Name
	}
	if s.Absolute > 0 {
		out += fmt.Sprintf(", absolute %ds", s.Absolute)
	}
	if s.Idle > 0 {
		out += fmt.Sprintf(", idle %ds", s.Idle)
	}
	return out
}

// TokenLen is the length of a session token (96 bits of HMAC).
const TokenLen = 16

// loadBalancer validates a route's "load_balancer"; nil for the default
// (weighted random).
func loadBalancer(lj *loadBalancerJSON) ([]HashKey, error) {
	if lj.Type == nil {
		return nil, fmt.Errorf("load_balancer.type is required (consistent_hash or random)")
	}
	switch *lj.Type {
	case "random":
		if lj.Key != nil || len(lj.Fallback) > 0 {
			return nil, fmt.Errorf("load_balancer: key and fallback are only for type consistent_hash")
		}
		return nil, nil
	case "consistent_hash":
	default:
		return nil, fmt.Errorf("load_balancer.type %q must be consistent_hash or random", *lj.Type)
	}
	if lj.Key == nil {
		return nil, fmt.Errorf("load_balancer.key is required for consistent_hash")
	}
	if 1+len(lj.Fallback) > MaxHashKeys {
		return nil, fmt.Errorf("load_balancer: more than %d keys (key and fallback)", MaxHashKeys)
	}
	var keys []HashKey
	for i, s := range append([]string{*lj.Key}, lj.Fallback...) {
		field := "load_balancer.key"
		if i > 0 {
			field = fieldIndex("load_balancer.fallback", i-1)
		}
		k, err := hashKey(field, s)
		if err != nil {
			return nil, err
		}
		if slices.Contains(keys, k) {
			return nil, fmt.Errorf("%s %q repeats an earlier key", field, s)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func hashKey(field, s string) (HashKey, error) {
	switch s {
	case "url":
		return HashKey{Kind: KeyURL}, nil
	case "cache_key":
		return HashKey{Kind: KeyCacheKey}, nil
	case "source_ip":
		return HashKey{Kind: KeySourceIP}, nil
	}
	kind, name, ok := strings.Cut(s, ":")
	switch {
	case ok && kind == "header":
		if name == "" {
			return HashKey{}, fmt.Errorf("%s %q: the header name is empty", field, s)
		}
		if err := checkHeaderName(field, name); err != nil {
			return HashKey{}, err
		}
		return HashKey{Kind: KeyHeader, Name: strings.ToLower(name)}, nil
	case ok && kind == "cookie":
		if err := checkCookieName(field, name); err != nil {
			return HashKey{}, err
		}
		return HashKey{Kind: KeyCookie, Name: name}, nil
	}
	return HashKey{}, fmt.Errorf("%s %q must be url, cache_key, source_ip, header:<name> or cookie:<name>", field, s)
}

// checkCookieName: a cookie name is a non-empty RFC 6265 token.
func checkCookieName(field, n string) error {
	switch {
	case n == "":
		return fmt.Errorf("%s: the cookie name is empty", field)
	case len(n) > MaxNameLen:
		return fmt.Errorf("%s: cookie name longer than %d bytes", field, MaxNameLen)
	case !isToken(n):
		return fmt.Errorf("%s: cookie name %q is not an RFC 6265 token", field, n)
	}
	return nil
}

// sessionPersistence validates a route's "session_persistence".
func sessionPersistence(sj *sessionJSON) (*Session, error) {
	s := &Session{}
	typ := "cookie"
	if sj.Type != nil {
		typ = *sj.Type
	}
	switch typ {
	case "cookie", "Cookie":
		s.Type = SessionCookie
	case "header", "Header":
		s.Type = SessionHeader
	default:
		return nil, fmt.Errorf("session_persistence.type %q must be cookie or header", typ)
	}
	if sj.Name == nil {
		return nil, fmt.Errorf("session_persistence.name is required")
	}
	if s.Type == SessionCookie {
		if err := checkCookieName("session_persistence.name", *sj.Name); err != nil {
			return nil, err
		}
	} else {
		if *sj.Name == "" {
			return nil, fmt.Errorf("session_persistence.name: the header name is empty")
		}
		if err := checkHeaderName("session_persistence.name", *sj.Name); err != nil {
			return nil, err
		}
	}
	s.Name = *sj.Name
	var err error
	if s.Absolute, err = gatewayDuration("session_persistence.absolute_timeout", sj.AbsoluteTimeout); err != nil {
		return nil, err
	}
	if s.Idle, err = gatewayDuration("session_persistence.idle_timeout", sj.IdleTimeout); err != nil {
		return nil, err
	}
	return s, nil
}

// MaxSessionTimeout bounds a session timeout (a year).
const MaxSessionTimeout = 8760 * time.Hour

// gatewayDuration parses a session timeout (a Gateway API duration, see
// ParseDuration) into whole seconds, rounded up; 0 when v is nil.
func gatewayDuration(field string, v *string) (int64, error) {
	d, err := durationField(field, v, 0, time.Millisecond, MaxSessionTimeout)
	if err != nil {
		return 0, err
	}
	return int64((d + time.Second - 1) / time.Second), nil
}

// endpointID is an endpoint's identity on a ring: "addr:port", an IPv6
// address in brackets.
func endpointID(e Endpoint) string {
	return net.JoinHostPort(e.Address, strconv.Itoa(int(e.Port)))
}

// flatten lists the endpoints of groups in order, each with its group's
// weight shared by the group's endpoints.
func flatten(groups []Group) (eps []Endpoint, w []*big.Rat) {
	for _, g := range groups {
		for _, e := range g.Endpoints {
			eps = append(eps, e)
			w = append(w, big.NewRat(int64(g.Weight), int64(len(g.Endpoints))))
		}
	}
	return eps, w
}

// ringOf builds (or finds, when another route has the same endpoints and
// weights) the ring of groups: one member per flattened endpoint, an
// endpoint listed again adding its weight to its first place.
func (b *builder) ringOf(groups []Group) (*ring.Ring, error) {
	eps, w := flatten(groups)
	first := map[Endpoint]int{}
	for i, e := range eps {
		if j, dup := first[e]; dup {
			w[j].Add(w[j], w[i])
			w[i] = new(big.Rat)
			continue
		}
		first[e] = i
	}
	members := make([]ring.Member, len(eps))
	var key strings.Builder
	for i, e := range eps {
		id := endpointID(e)
		if first[e] != i {
			id += "\x00" + strconv.Itoa(i) // a repeat: no points
		}
		m := ring.Member{ID: id, Weight: 0, Share: 1}
		if w[i].Sign() > 0 {
			if !w[i].Num().IsUint64() || !w[i].Denom().IsUint64() {
				return nil, fmt.Errorf("load_balancer: endpoint weights too fine to share")
			}
			m.Weight, m.Share = w[i].Num().Uint64(), w[i].Denom().Uint64()
		}
		members[i] = m
		fmt.Fprintf(&key, "%s/%d/%d;", id, m.Weight, m.Share)
	}
	if r, ok := b.rings[key.String()]; ok {
		return r, nil
	}
	r, err := ring.New(members)
	if err != nil {
		return nil, fmt.Errorf("load_balancer: %w", err)
	}
	if b.rings == nil {
		b.rings = map[string]*ring.Ring{}
	}
	b.rings[key.String()] = r
	return r, nil
}

// affinity validates and compiles a route's load_balancer and
// session_persistence into r (whose groups are compiled). vhostKey and
// the route's name and index make the session's identity.
func (b *builder) affinity(r *croute, vhostKey string, rj *routeJSON) error {
	if rj.LoadBalancer != nil {
		keys, err := loadBalancer(rj.LoadBalancer)
		if err != nil {
			return err
		}
		if keys != nil && len(r.groups) > 0 {
			rg, err := b.ringOf(r.groups)
			if err != nil {
				return err
			}
			r.balancer = &Balancer{Keys: keys, Ring: rg, RingID: rg.ID()}
		}
	}
	if rj.SessionPersistence != nil {
		s, err := sessionPersistence(rj.SessionPersistence)
		if err != nil {
			return err
		}
		id := "#" + strconv.Itoa(r.index)
		if r.name != "" {
			id = r.name + "#" + strconv.FormatInt(r.ruleIndex, 10)
		}
		s.ident = vhostKey + "\x00" + id
		s.eps, _ = flatten(r.groups)
		s.setTokens(b.secret)
		r.session = s
	}
	return nil
}

// setTokens computes the endpoints' tokens under secret.
func (s *Session) setTokens(secret []byte) {
	s.Tokens = make([]string, len(s.eps))
	for i, e := range s.eps {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("ghost-session\x00" + s.ident + "\x00" + endpointID(e)))
		s.Tokens[i] = base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:TokenLen*3/4])
	}
}

// SetSessionSecret sets the key of the session tokens' HMAC (every node
// that should accept the others' sessions needs the same); a table is
// compiled under Options.SessionSecret, empty for Parse, which anyone can
// compute. Call it before the table is shared. It does nothing when the
// table has that secret already; it panics when the table shares vhosts
// with the table it was compiled from (Options.Prev), whose tokens it
// would change: compile such a table under the secret instead.
func (t *Table) SetSessionSecret(secret []byte) {
	if bytes.Equal(t.secret, secret) {
		return
	}
	if t.shared && t.HasSessions() {
		panic("route: SetSessionSecret on a table that shares vhosts with its previous one")
	}
	t.secret = bytes.Clone(secret)
	for _, vh := range t.vhosts {
		for i := range vh.routes {
			if s := vh.routes[i].session; s != nil {
				s.setTokens(secret)
			}
		}
	}
}

// HasSessions reports whether a route of the table has session
// persistence (its decisions then depend on the session secret).
func (t *Table) HasSessions() bool {
	for _, vh := range t.vhosts {
		for i := range vh.routes {
			if vh.routes[i].session != nil {
				return true
			}
		}
	}
	return false
}

// Ring returns the ring a decision's Balancer names by RingID (nil when
// no route of this table has it).
func (t *Table) Ring(id uint64) *ring.Ring {
	return t.rings[id]
}

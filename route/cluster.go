package route

// Self-sharding of Varnish nodes (docs/operations.md "Clustering"): the
// members of a cluster, which of them owns a cache key, the hop mark a
// member sends when it forwards a request to the owner, and the limits
// the data plane applies to what it forwards. Pure: ghostd resolves the
// members (DNS, a static list) and hands them here.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/varnish/ghost/route/ring"
)

// Cluster limits and defaults.
const (
	// MaxMembers bounds a cluster (the ring of 256 members fits an answer
	// far below the frame limit).
	MaxMembers = 256
	// DefaultSecondaryTTL is the default longest time (seconds) a node
	// keeps its copy of an object another member owns.
	DefaultSecondaryTTL = 10
	// DefaultDownSeconds is how long a member that failed a forwarded
	// fetch (refused, reset, timeout) is skipped.
	DefaultDownSeconds = 5
	// DefaultHopConnectMs is the connect timeout of a forwarded fetch.
	DefaultHopConnectMs = 500
	// MinSecretLen is the shortest accepted hop secret.
	MinSecretLen = 16
	// ClusterProbePath is what members' probes ask every member: its
	// Varnish answers it in vcl_recv (ghost.vcl), without ghostd, a
	// route or the cache, so it never depends on peers.
	ClusterProbePath = "/.varnish-ghost/healthz"
)

// ClusterProbe is the active probe of members' backends (Varnish's own
// probe on the native backend a node forwards to): interval 0 = none.
// Bounds are health's (MinProbeInterval, MinProbeTimeout, timeout <=
// interval, 1 <= threshold <= window <= MaxProbeWindow); the probe asks
// ClusterProbePath for a 200 and a new backend starts healthy.
func ClusterProbe(interval, timeout time.Duration, window, threshold int) (*HealthCheck, error) {
	if interval == 0 {
		return nil, nil
	}
	if interval < MinProbeInterval || interval > MaxProbeInterval {
		return nil, fmt.Errorf("cluster probe interval %s out of range %s-%s (0: no probe)", fmtDuration(interval), fmtDuration(MinProbeInterval), fmtDuration(MaxProbeInterval))
	}
	if timeout < MinProbeTimeout || timeout > interval {
		return nil, fmt.Errorf("cluster probe timeout %s out of range %s-%s (the interval)", fmtDuration(timeout), fmtDuration(MinProbeTimeout), fmtDuration(interval))
	}
	if window < 1 || window > MaxProbeWindow || threshold < 1 || threshold > window {
		return nil, fmt.Errorf("cluster probe window %d / threshold %d: need 1 <= threshold <= window <= %d", window, threshold, MaxProbeWindow)
	}
	h := &HealthCheck{Path: ClusterProbePath, Interval: interval, Timeout: timeout,
		Window: uint(window), Threshold: uint(threshold), Initial: uint(threshold), ExpectedStatus: 200}
	h.ID = h.id()
	return h, nil
}

// ClusterConfig is what a cluster is built from.
type ClusterConfig struct {
	// Self is this node's member address (its Varnish listener as the
	// other members reach it). A node whose Self is not among Members
	// (not yet published by DNS, say) owns nothing and forwards every
	// cacheable request.
	Self Endpoint
	// Members are the Varnish nodes, in any order, repeats allowed.
	Members []Endpoint
	// Secret is the shared secret of the hop mark (at least MinSecretLen
	// bytes).
	Secret string
	// SecondaryTTL: longest TTL, in seconds, of a non-owner's copy; 0
	// keeps none (forwarded requests are passed).
	SecondaryTTL int64
	// DownSeconds: how long a member whose forwarded fetch failed is
	// skipped (it then gets one request again).
	DownSeconds int64
	// HopConnectMs: connect timeout of a forwarded fetch.
	HopConnectMs int64
	// Probe is the active probe of members' backends (ClusterProbe;
	// nil: failures are only seen when a forwarded fetch fails).
	Probe *HealthCheck
}

// Cluster is a compiled cluster: immutable, shared by every decision.
type Cluster struct {
	// Version identifies everything below (never 0): the data plane
	// fetches the cluster again when an answer names another version.
	Version uint64
	// Members sorted by address then port, without repeats.
	Members []Endpoint
	// Self is the index of this node in Members, -1 when it is not one.
	Self int
	// Token is the hop mark's value (HopToken of the secret).
	Token        string
	SecondaryTTL int64
	DownSeconds  int64
	HopConnectMs int64
	// Probe: ClusterConfig.Probe.
	Probe *HealthCheck
	// Ring is the consistent ring over Members (nil when there are
	// none): member i's ID is Members[i].String().
	Ring  *ring.Ring
	addrs map[netip.Addr]bool
}

// ParseEndpoint parses "ip:port", "[v6]:port" or, with defPort > 0, an IP
// literal alone.
func ParseEndpoint(s string, defPort int) (Endpoint, error) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && defPort > 0 && a.Zone() == "" {
		return Endpoint{Address: a.String(), Port: uint16(defPort)}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Addr().Zone() != "" || ap.Port() == 0 {
		return Endpoint{}, fmt.Errorf("member %q is not ip:port (an IP literal and a port 1-65535)", s)
	}
	return Endpoint{Address: ap.Addr().Unmap().String(), Port: ap.Port()}, nil
}

// ParseMembers parses a comma- or blank-separated list of members
// (ParseEndpoint each).
func ParseMembers(list string, defPort int) ([]Endpoint, error) {
	var out []Endpoint
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		e, err := ParseEndpoint(f, defPort)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// String is "ip:port" or "[v6]:port".
func (e Endpoint) String() string {
	if strings.Contains(e.Address, ":") {
		return "[" + e.Address + "]:" + strconv.Itoa(int(e.Port))
	}
	return e.Address + ":" + strconv.Itoa(int(e.Port))
}

func endpointCmp(a, b Endpoint) int {
	aa, _ := netip.ParseAddr(a.Address)
	ba, _ := netip.ParseAddr(b.Address)
	if c := aa.Compare(ba); c != 0 {
		return c
	}
	return int(a.Port) - int(b.Port)
}

// HopToken is the value of the hop mark for a secret: an HMAC, so the
// secret itself never travels.
func HopToken(secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("ghost hop mark v1"))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// NewCluster validates and compiles c. Members are normalised (canonical
// addresses, sorted, repeats dropped).
func NewCluster(c ClusterConfig) (*Cluster, error) {
	if len(c.Secret) < MinSecretLen {
		return nil, fmt.Errorf("cluster: the hop secret must be at least %d bytes (it has %d)", MinSecretLen, len(c.Secret))
	}
	if c.SecondaryTTL < 0 || c.SecondaryTTL > MaxCacheSeconds {
		return nil, fmt.Errorf("cluster: secondary TTL %d s out of range 0-%d", c.SecondaryTTL, MaxCacheSeconds)
	}
	if c.DownSeconds < 1 || c.DownSeconds > 3600 {
		return nil, fmt.Errorf("cluster: down time %d s out of range 1-3600", c.DownSeconds)
	}
	if c.HopConnectMs < 1 || c.HopConnectMs > 60000 {
		return nil, fmt.Errorf("cluster: hop connect timeout %d ms out of range 1-60000", c.HopConnectMs)
	}
	ms := make([]Endpoint, 0, len(c.Members))
	for _, m := range c.Members {
		n, err := ParseEndpoint(m.String(), 0)
		if err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		ms = append(ms, n)
	}
	slices.SortFunc(ms, endpointCmp)
	ms = slices.Compact(ms)
	if len(ms) > MaxMembers {
		return nil, fmt.Errorf("cluster: %d members, more than %d", len(ms), MaxMembers)
	}
	cl := &Cluster{Members: ms, Self: -1, Token: HopToken(c.Secret),
		SecondaryTTL: c.SecondaryTTL, DownSeconds: c.DownSeconds, HopConnectMs: c.HopConnectMs,
		Probe: c.Probe, addrs: map[netip.Addr]bool{}}
	if c.Self.Address != "" {
		self, err := ParseEndpoint(c.Self.String(), 0)
		if err != nil {
			return nil, fmt.Errorf("cluster: self: %w", err)
		}
		cl.Self = slices.Index(ms, self)
	}
	for _, m := range ms {
		cl.addrs[netip.MustParseAddr(m.Address)] = true
	}
	if len(ms) > 0 {
		rm := make([]ring.Member, len(ms))
		for i, m := range ms {
			rm[i] = ring.Member{ID: m.String()}
		}
		var err error
		if cl.Ring, err = ring.New(rm); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
	}
	h := sha256.New()
	for _, m := range ms {
		h.Write([]byte(m.String() + "\n"))
	}
	fmt.Fprintf(h, "self %d\ntoken %s\nsttl %d\ndown %d\nconnect %d\n", cl.Self, cl.Token, cl.SecondaryTTL, cl.DownSeconds, cl.HopConnectMs)
	if cl.Probe != nil {
		fmt.Fprintf(h, "probe %d\n", cl.Probe.ID)
	}
	cl.Version = max(binary.LittleEndian.Uint64(h.Sum(nil)), 1)
	return cl, nil
}

// Has says whether e is a member (the data plane's backend for it stays).
func (c *Cluster) Has(e Endpoint) bool {
	if c == nil {
		return false
	}
	_, ok := slices.BinarySearchFunc(c.Members, e, endpointCmp)
	return ok
}

// ProbeID is the probe id of members' backends (0: no probe): the shim
// keys a member's backend on it, and `live` keeps exactly those.
func (c *Cluster) ProbeID() uint32 {
	if c == nil || c.Probe == nil {
		return 0
	}
	return c.Probe.ID
}

// IsMemberAddr says whether a client address is a member's: only members
// may send the hop mark.
func (c *Cluster) IsMemberAddr(a netip.Addr) bool {
	return c != nil && c.addrs[a.Unmap()]
}

// ShardKey is what the owner of a cached object is chosen by: the
// normalised host (as invalidation scopes it, see the shim's
// ghost_norm_host) and the cache-key URL (CacheURL), so that every
// variant of a URL has one owner.
func ShardKey(normHost, cacheURL string) string {
	return normHost + " " + cacheURL
}

// Owner is the member that owns key, skipping the members down reports
// as failed: ring.Walk from ring.HashString(key) (the shim walks the same
// encoded ring with the same hash, route/ring's vectors hold both to it);
// -1 when every member is down or there are none.
func (c *Cluster) Owner(key string, down func(int) bool) int {
	if c == nil || c.Ring == nil {
		return -1
	}
	return c.Ring.Walk(ring.HashString(key), func(m int) bool { return down == nil || !down(m) })
}

// HopMark says what a request carrying the hop mark value tok from client
// address a is: true only for a member with the right token; anything
// else is an ordinary client request.
func (c *Cluster) HopMark(a netip.Addr, tok string) bool {
	return c != nil && c.IsMemberAddr(a) && hmac.Equal([]byte(tok), []byte(c.Token))
}

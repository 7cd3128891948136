package main

// Clustering (docs/operations.md "Clustering"): who the members are (a
// static list, and/or a DNS name re-resolved periodically, e.g. a
// Kubernetes headless Service), and making each change of members a new
// generation, so that the shim follows it without a VCL reload. The rules
// (ring, owner, hop mark) are route.Cluster's.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/varnish/ghost/route"
)

// clusterFlags is the clustering part of the command line.
type clusterFlags struct {
	self       string
	members    string
	dns        string
	port       int
	resolver   string
	refresh    time.Duration
	secretFile string
	sttl       time.Duration
	down       time.Duration
	connect    time.Duration
	probeIv    time.Duration
	probeTmo   time.Duration
	probeWin   int
	probeTh    int
}

// secretEnv names the environment variable that may hold the hop secret
// (a Kubernetes Secret as an env var); -cluster-secret-file wins.
const secretEnv = "GHOST_CLUSTER_SECRET"

// on says whether clustering was asked for.
func (f *clusterFlags) on() bool { return f.members != "" || f.dns != "" }

// config validates the flags into the fixed part of a cluster (members
// come from the source); it reads the secret.
func (f *clusterFlags) config() (route.ClusterConfig, error) {
	var c route.ClusterConfig
	if !f.on() {
		if f.self != "" {
			return c, errors.New("-cluster-self needs -cluster-members or -cluster-dns")
		}
		return c, nil
	}
	if f.self == "" {
		return c, errors.New("clustering needs -cluster-self (this node's ip:port as the others reach its Varnish; on Kubernetes the pod IP from the downward API)")
	}
	self, err := route.ParseEndpoint(f.self, 0)
	if err != nil {
		return c, fmt.Errorf("-cluster-self: %w", err)
	}
	if f.dns != "" && (f.port < 1 || f.port > 65535) {
		return c, fmt.Errorf("-cluster-port %d out of range 1-65535 (the port of the members -cluster-dns resolves)", f.port)
	}
	if f.refresh < 100*time.Millisecond {
		return c, fmt.Errorf("-cluster-refresh %s is below 100ms", f.refresh)
	}
	secret := os.Getenv(secretEnv)
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return c, fmt.Errorf("-cluster-secret-file: %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	if secret == "" {
		return c, fmt.Errorf("clustering needs the hop secret: -cluster-secret-file or $%s", secretEnv)
	}
	if f.sttl < 0 || f.sttl%time.Second != 0 || f.down < time.Second || f.down%time.Second != 0 {
		return c, errors.New("-cluster-secondary-ttl (>= 0) and -cluster-down (>= 1s) must be whole seconds")
	}
	probe, err := route.ClusterProbe(f.probeIv, f.probeTmo, f.probeWin, f.probeTh)
	if err != nil {
		return c, fmt.Errorf("-cluster-probe-*: %w", err)
	}
	c = route.ClusterConfig{Self: self, Secret: secret, SecondaryTTL: int64(f.sttl / time.Second),
		DownSeconds: int64(f.down / time.Second), HopConnectMs: f.connect.Milliseconds(), Probe: probe}
	// validate what does not depend on the members now, not at the first
	// change of members
	if _, err := route.NewCluster(c); err != nil {
		return c, err
	}
	return c, nil
}

// addClusterFlags declares the clustering flags into f.
func addClusterFlags(fs interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
	DurationVar(*time.Duration, string, time.Duration, string)
}, f *clusterFlags) {
	fs.StringVar(&f.self, "cluster-self", "", "this node as a cluster member: ip:port of its Varnish as the other members reach it (Kubernetes: $(POD_IP):port)")
	fs.StringVar(&f.members, "cluster-members", "", "static cluster members, ip:port separated by commas (with -cluster-dns: added to what it resolves)")
	fs.StringVar(&f.dns, "cluster-dns", "", "DNS name whose A/AAAA records are the cluster members (Kubernetes: the headless Service), re-resolved every -cluster-refresh")
	fs.IntVar(&f.port, "cluster-port", 80, "Varnish port of the members -cluster-dns resolves")
	fs.StringVar(&f.resolver, "cluster-resolver", "", "DNS server (ip:port) to resolve -cluster-dns with (\"\": the system's resolver)")
	fs.DurationVar(&f.refresh, "cluster-refresh", 5*time.Second, "how often -cluster-dns is resolved again")
	fs.StringVar(&f.secretFile, "cluster-secret-file", "", "file holding the shared secret of the hop mark (default: $"+secretEnv+")")
	fs.DurationVar(&f.sttl, "cluster-secondary-ttl", route.DefaultSecondaryTTL*time.Second, "longest TTL of this node's copy of an object another member owns (0: keep none, forwarded requests are passed)")
	fs.DurationVar(&f.down, "cluster-down", route.DefaultDownSeconds*time.Second, "how long a member whose forwarded fetch failed is skipped (whole seconds)")
	fs.DurationVar(&f.connect, "cluster-connect-timeout", route.DefaultHopConnectMs*time.Millisecond, "connect timeout of a fetch forwarded to the owner")
	fs.DurationVar(&f.probeIv, "cluster-probe-interval", time.Second, "interval of the Varnish probe of each member's backend (GET "+route.ClusterProbePath+"; 0: none, a member is skipped only after a forwarded fetch failed)")
	fs.DurationVar(&f.probeTmo, "cluster-probe-timeout", 500*time.Millisecond, "timeout of the members' probe (at most the interval)")
	fs.IntVar(&f.probeWin, "cluster-probe-window", 3, "how many recent results of the members' probe count")
	fs.IntVar(&f.probeTh, "cluster-probe-threshold", 2, "how many of the window must succeed for a member to be healthy (a dead member is skipped within interval × threshold)")
}

// memberSource says who the members are now.
type memberSource struct {
	static   []route.Endpoint
	dns      string
	port     int
	resolver *net.Resolver
	timeout  time.Duration
}

func newMemberSource(f *clusterFlags) (*memberSource, error) {
	st, err := route.ParseMembers(f.members, 0)
	if err != nil {
		return nil, fmt.Errorf("-cluster-members: %w", err)
	}
	src := &memberSource{static: st, dns: f.dns, port: f.port, resolver: net.DefaultResolver, timeout: 2 * time.Second}
	if f.resolver != "" {
		if _, err := route.ParseEndpoint(f.resolver, 53); err != nil {
			return nil, fmt.Errorf("-cluster-resolver: %w", err)
		}
		src.resolver = dnsResolver(f.resolver)
	}
	return src, nil
}

// dnsResolver resolves with the DNS server at addr (ip or ip:port).
func dnsResolver(addr string) *net.Resolver {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "53")
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// members resolves the members now: the static ones plus the DNS name's
// addresses. A name that does not exist or has no addresses is no
// members (a headless Service without ready pods); any other DNS failure
// is an error (the caller keeps the members it had).
func (s *memberSource) members(ctx context.Context) ([]route.Endpoint, error) {
	out := slices.Clone(s.static)
	if s.dns == "" {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ips, err := s.resolver.LookupNetIP(ctx, "ip", s.dns)
	var dnsErr *net.DNSError
	if err != nil && !(errors.As(err, &dnsErr) && dnsErr.IsNotFound) {
		return nil, fmt.Errorf("resolving %s: %w", s.dns, err)
	}
	for _, ip := range ips {
		out = append(out, route.Endpoint{Address: ip.Unmap().String(), Port: uint16(s.port)})
	}
	return out, nil
}

// clusterIdent mixes the cluster into a table's identity, so that a
// restarted ghostd keeps its generation only when the members are the
// same too.
func clusterIdent(ident uint64, cl *route.Cluster) uint64 {
	if cl == nil || ident == 0 {
		return ident
	}
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], ident^cl.Version*0x9e3779b97f4a7c15)
	return max(binary.LittleEndian.Uint64(b[:])|1, 1)
}

// setCluster makes cl the cluster: a new generation with the same table,
// so the shim drops what it memoised under the old members and fetches
// the new ring. start: before serving (no new generation).
func (l *loader) setCluster(cl *route.Cluster, start bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.cur.Load()
	if old.cluster != nil && cl != nil && old.cluster.Version == cl.Version {
		return
	}
	s := *old
	s.cluster = cl
	s.ident = old.ident
	if s.hash != ([32]byte{}) {
		var secret []byte
		if s.table.HasSessions() {
			secret = l.sessionSecret
		}
		s.ident = clusterIdent(tableIdent(s.hash, l.cachePass, secret), cl)
	}
	if !start {
		s.gen = old.gen + 1
	}
	l.cur.Store(&s)
	if l.state != nil && !start {
		s.publish(l.state)
	}
	l.metrics.setTable(&s)
	l.metrics.setCluster(cl)
	members := make([]string, 0, len(cl.Members))
	for _, m := range cl.Members {
		members = append(members, m.String())
	}
	self := "not a member (owns nothing, forwards every cacheable request)"
	if cl.Self >= 0 {
		self = cl.Members[cl.Self].String()
	}
	l.log.Info("cluster members", "gen", s.gen, "members", strings.Join(members, ","), "self", self,
		"version", cl.Version)
}

// buildCluster is route.NewCluster with the members of now.
func buildCluster(base route.ClusterConfig, ms []route.Endpoint) (*route.Cluster, error) {
	base.Members = ms
	return route.NewCluster(base)
}

// runMembership keeps the loader's cluster up to date with the source,
// every refresh, until ctx ends. A failed resolution keeps the members of
// the last one that worked.
func runMembership(ctx context.Context, src *memberSource, base route.ClusterConfig, l *loader, m *metrics, log *slog.Logger, refresh time.Duration) {
	t := time.NewTicker(refresh)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ms, err := src.members(ctx)
		if err != nil {
			m.clusterResolveErrors.Inc()
			if !failing {
				log.Warn("cluster members unchanged: resolution failed", "err", err)
			}
			failing = true
			continue
		}
		if failing {
			log.Info("cluster resolution works again")
			failing = false
		}
		cl, err := buildCluster(base, ms)
		if err != nil {
			log.Error("cluster members unchanged", "err", err)
			continue
		}
		l.setCluster(cl, false)
	}
}

// startCluster resolves the first members (a failure leaves a cluster of
// the static members only: readiness never waits for peers) and starts
// runMembership. Before serving.
func startCluster(ctx context.Context, f *clusterFlags, base route.ClusterConfig, l *loader, m *metrics, log *slog.Logger) error {
	src, err := newMemberSource(f)
	if err != nil {
		return err
	}
	ms, err := src.members(ctx)
	if err != nil {
		m.clusterResolveErrors.Inc()
		log.Warn("cluster: first resolution failed; starting with the static members", "err", err)
		ms = slices.Clone(src.static)
	}
	cl, err := buildCluster(base, ms)
	if err != nil {
		return err
	}
	l.setCluster(cl, true)
	if src.dns != "" {
		go runMembership(ctx, src, base, l, m, log, f.refresh)
	}
	return nil
}

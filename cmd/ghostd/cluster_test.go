package main

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varnish/ghost/protocol"
	"github.com/varnish/ghost/route"
)

// dnsServer is a tiny authoritative DNS responder on loopback UDP: A
// records for one name, NXDOMAIN for others, SERVFAIL on demand. Enough
// for Go's resolver (-cluster-resolver), with no /etc/hosts or real DNS
// involved.
type dnsServer struct {
	pc       net.PacketConn
	name     string // lower case, with the final dot
	mu       sync.Mutex
	addrs    []netip.Addr
	servfail bool
	nx       bool
}

func startDNS(t *testing.T, name string) *dnsServer {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc, name: name}
	t.Cleanup(func() { pc.Close() })
	go s.serve()
	return s
}

func (s *dnsServer) set(servfail, nx bool, addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servfail, s.nx, s.addrs = servfail, nx, nil
	for _, a := range addrs {
		s.addrs = append(s.addrs, netip.MustParseAddr(a))
	}
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		if out := s.answer(buf[:n]); out != nil {
			_, _ = s.pc.WriteTo(out, from)
		}
	}
}

// answer builds the response to one query (nil: ignore it).
func (s *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	// the question: labels, type, class
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	question := q[12 : i+5]
	s.mu.Lock()
	defer s.mu.Unlock()
	rcode := uint16(0)
	var ans []netip.Addr
	switch {
	case s.servfail:
		rcode = 2
	case strings.ToLower(strings.Join(labels, ".")+".") != s.name || s.nx:
		rcode = 3
	case qtype == 1:
		ans = s.addrs
	}
	out := make([]byte, 12, 512)
	binary.BigEndian.PutUint16(out[0:], binary.BigEndian.Uint16(q[0:])) // id
	binary.BigEndian.PutUint16(out[2:], 0x8400|rcode)                   // response, authoritative
	binary.BigEndian.PutUint16(out[4:], 1)
	binary.BigEndian.PutUint16(out[6:], uint16(len(ans)))
	out = append(out, question...)
	for _, a := range ans {
		out = append(out, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4) // name ptr, A, IN, TTL 5, len 4
		b := a.As4()
		out = append(out, b[:]...)
	}
	return out
}

func clusterOf(t *testing.T, c *protocol.Client) *protocol.ClusterAnswer {
	t.Helper()
	a, err := c.Cluster()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func members(a *protocol.ClusterAnswer) string {
	var s []string
	for _, m := range a.Members {
		s = append(s, m.String())
	}
	return strings.Join(s, ",")
}

// TestClusterDNS: members from a DNS name, re-resolved; a change is a
// new generation with the new members and ring; NXDOMAIN is no members,
// a DNS failure keeps the last ones; every answer carries the cluster's
// version; members stay live for the shim's backends.
func TestClusterDNS(t *testing.T) {
	dns := startDNS(t, "peers.test.")
	dns.set(false, false, "10.1.0.1", "10.1.0.2")
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, configA, "-cluster-self", "10.1.0.2:6081", "-cluster-dns", "peers.test.",
		"-cluster-port", "6081", "-cluster-resolver", dns.pc.LocalAddr().String(), "-cluster-refresh", "100ms",
		"-cluster-secret-file", secret, "-cluster-secondary-ttl", "3s")
	c := d.dial()
	a := clusterOf(t, c)
	if got := members(a); got != "10.1.0.1:6081,10.1.0.2:6081" || a.Self != 1 || a.SecondaryTTL != 3 ||
		a.DownSeconds != route.DefaultDownSeconds || a.HopConnectMs != route.DefaultHopConnectMs ||
		a.Token != route.HopToken("0123456789abcdef0123") || len(a.Ring) == 0 || a.Version == 0 {
		t.Fatalf("cluster %+v", a)
	}
	r := routeA(t, c)
	if r.Decision.Shard != a.Version {
		t.Fatalf("route answer sh %d, cluster version %d", r.Decision.Shard, a.Version)
	}
	l, err := c.Live([]route.Endpoint{{Address: "10.1.0.1", Port: 6081}, {Address: "10.9.9.9", Port: 6081}})
	if err != nil || len(l.Dead) != 1 || l.Dead[0] != 1 {
		t.Fatalf("live: %+v %v", l, err)
	}

	// a third member: a new generation, a new version
	dns.set(false, false, "10.1.0.3", "10.1.0.1", "10.1.0.2")
	d.waitGen(a.Gen + 1)
	b := clusterOf(t, c)
	if members(b) != "10.1.0.1:6081,10.1.0.2:6081,10.1.0.3:6081" || b.Version == a.Version || b.Self != 1 {
		t.Fatalf("after the change: %+v", b)
	}
	// the same members in another order: nothing changes
	dns.set(false, false, "10.1.0.2", "10.1.0.3", "10.1.0.1")
	time.Sleep(400 * time.Millisecond)
	if s := d.status(); s.Gen != b.Gen {
		t.Fatalf("generation moved to %d on the same members", s.Gen)
	}
	// DNS failing: the members stay
	dns.set(true, false)
	time.Sleep(400 * time.Millisecond)
	if got := clusterOf(t, c); got.Version != b.Version {
		t.Fatalf("SERVFAIL changed the cluster: %+v", got)
	}
	// the name gone: no members, this node owns nothing
	dns.set(false, true)
	d.waitGen(b.Gen + 1)
	e := clusterOf(t, c)
	if len(e.Members) != 0 || e.Self != -1 || len(e.Ring) != 0 || e.Version == 0 {
		t.Fatalf("NXDOMAIN: %+v", e)
	}
	if !strings.Contains(d.stderr.String(), "cluster members unchanged: resolution failed") {
		t.Errorf("no log line for the failed resolution:\n%s", d.stderr.String())
	}
}

// TestClusterFlags: clustering's flags are checked at start, with the
// flag named.
func TestClusterFlags(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("tiny\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(secretEnv, "")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-cluster-members", "10.0.0.1:80"}, "clustering needs -cluster-self"},
		{[]string{"-cluster-self", "10.0.0.1:80"}, "-cluster-self needs -cluster-members or -cluster-dns"},
		{[]string{"-cluster-self", "10.0.0.1", "-cluster-members", "10.0.0.1:80"}, `-cluster-self: member "10.0.0.1" is not ip:port`},
		{[]string{"-cluster-self", "10.0.0.1:80", "-cluster-members", "10.0.0.1:80"}, "clustering needs the hop secret: -cluster-secret-file or $GHOST_CLUSTER_SECRET"},
		{[]string{"-cluster-self", "10.0.0.1:80", "-cluster-members", "10.0.0.1:80", "-cluster-secret-file", short}, "cluster: the hop secret must be at least 16 bytes (it has 4)"},
		{[]string{"-cluster-self", "10.0.0.1:80", "-cluster-dns", "x.test", "-cluster-port", "0", "-cluster-secret-file", short}, "-cluster-port 0 out of range 1-65535"},
	} {
		_, code, ok := parseDaemonFlags(c.args)
		if ok || code != 2 {
			t.Errorf("%v: ok %v code %d", c.args, ok, code)
		}
		cf := &daemonConfig{}
		fs := daemonFlags(cf)
		fs.SetOutput(new(strings.Builder))
		if err := fs.Parse(c.args); err != nil {
			t.Fatal(err)
		}
		if _, err := cf.cluster.config(); err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.args, err, c.want)
		}
	}
}

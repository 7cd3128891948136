package route

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func testCluster(t *testing.T, self string, members ...string) *Cluster {
	t.Helper()
	ms, err := ParseMembers(strings.Join(members, ","), 0)
	if err != nil {
		t.Fatal(err)
	}
	var se Endpoint
	if self != "" {
		if se, err = ParseEndpoint(self, 0); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := NewCluster(ClusterConfig{Self: se, Members: ms, Secret: "0123456789abcdef-secret",
		SecondaryTTL: DefaultSecondaryTTL, DownSeconds: DefaultDownSeconds, HopConnectMs: DefaultHopConnectMs})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestClusterMembersNormalised(t *testing.T) {
	cl := testCluster(t, "10.0.0.2:80", "10.0.0.3:80", "10.0.0.2:80", "[::ffff:10.0.0.1]:80", "10.0.0.2:80")
	got := fmt.Sprint(cl.Members)
	if got != "[10.0.0.1:80 10.0.0.2:80 10.0.0.3:80]" || cl.Self != 1 {
		t.Fatalf("members %s self %d", got, cl.Self)
	}
	if !cl.Has(Endpoint{"10.0.0.3", 80}) || cl.Has(Endpoint{"10.0.0.3", 81}) {
		t.Error("Has")
	}
	if other := testCluster(t, "10.0.0.2:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"); other.Version != cl.Version {
		t.Error("the same members in another order are another version")
	}
	if other := testCluster(t, "10.0.0.9:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"); other.Version == cl.Version || other.Self != -1 {
		t.Errorf("another self: version %d self %d", other.Version, other.Self)
	}
}

func TestClusterConfigErrors(t *testing.T) {
	ok := ClusterConfig{Secret: "0123456789abcdef", DownSeconds: 5, HopConnectMs: 500}
	for _, c := range []struct {
		edit func(*ClusterConfig)
		want string
	}{
		{func(c *ClusterConfig) { c.Secret = "short" }, "cluster: the hop secret must be at least 16 bytes (it has 5)"},
		{func(c *ClusterConfig) { c.SecondaryTTL = -1 }, "cluster: secondary TTL -1 s out of range"},
		{func(c *ClusterConfig) { c.DownSeconds = 0 }, "cluster: down time 0 s out of range 1-3600"},
		{func(c *ClusterConfig) { c.HopConnectMs = 0 }, "cluster: hop connect timeout 0 ms out of range 1-60000"},
		{func(c *ClusterConfig) { c.Members = []Endpoint{{"10.0.0.1", 0}} }, `cluster: member "10.0.0.1:0" is not ip:port`},
	} {
		cfg := ok
		c.edit(&cfg)
		_, err := NewCluster(cfg)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("got %v, want %q", err, c.want)
		}
	}
	if _, err := ParseMembers("10.0.0.1:80, host.example:80", 0); err == nil || err.Error() != `member "host.example:80" is not ip:port (an IP literal and a port 1-65535)` {
		t.Errorf("ParseMembers: %v", err)
	}
}

// owners maps n keys to their owners.
func owners(cl *Cluster, n int, down func(int) bool) []Endpoint {
	out := make([]Endpoint, n)
	for i := range out {
		o := cl.Owner(ShardKey("shop.example", fmt.Sprintf("/item/%d", i)), down)
		if o >= 0 {
			out[i] = cl.Members[o]
		}
	}
	return out
}

// TestClusterRemap: the ring's promise. Keys spread about evenly; a
// member leaving moves only its own keys (about 1/3 of 3) and a member
// joining takes about 1/4 from the others, moving nothing else; a member
// down is the same as a member gone.
func TestClusterRemap(t *testing.T) {
	const n = 20000
	three := testCluster(t, "", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	before := owners(three, n, nil)
	share := map[Endpoint]int{}
	for _, o := range before {
		share[o]++
	}
	for m, c := range share {
		if f := float64(c) / n; f < 0.25 || f > 0.42 {
			t.Errorf("%v owns %.3f of the keys", m, f)
		}
	}
	two := testCluster(t, "", "10.0.0.1:80", "10.0.0.3:80")
	downIdx := 1 // 10.0.0.2 in three
	for name, after := range map[string][]Endpoint{
		"gone": owners(two, n, nil),
		"down": owners(three, n, func(i int) bool { return i == downIdx }),
	} {
		moved := 0
		for i := range before {
			if before[i] != after[i] {
				moved++
				if before[i] != three.Members[downIdx] {
					t.Fatalf("%s: key %d moved from %v, which stayed", name, i, before[i])
				}
			}
		}
		if f := float64(moved) / n; f < 0.25 || f > 0.42 {
			t.Errorf("%s: %.3f of the keys moved", name, f)
		}
	}
	four := testCluster(t, "", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80")
	after := owners(four, n, nil)
	moved := 0
	for i := range before {
		if before[i] != after[i] {
			moved++
			if after[i] != (Endpoint{"10.0.0.4", 80}) {
				t.Fatalf("key %d moved to %v, not to the new member", i, after[i])
			}
		}
	}
	if f := float64(moved) / n; f < 0.18 || f > 0.32 {
		t.Errorf("join: %.3f of the keys moved", f)
	}
	if o := three.Owner("k", func(int) bool { return true }); o != -1 {
		t.Errorf("every member down: owner %d", o)
	}
	if o := testCluster(t, "").Owner("k", nil); o != -1 {
		t.Errorf("no members: owner %d", o)
	}
}

func TestClusterHopMark(t *testing.T) {
	cl := testCluster(t, "10.0.0.1:80", "10.0.0.1:80", "10.0.0.2:80")
	if len(cl.Token) != 32 || strings.Contains(cl.Token, "secret") || cl.Token != HopToken("0123456789abcdef-secret") {
		t.Fatalf("token %q", cl.Token)
	}
	for _, c := range []struct {
		ip, tok string
		want    bool
	}{
		{"10.0.0.2", cl.Token, true},
		{"::ffff:10.0.0.2", cl.Token, true},
		{"10.0.0.9", cl.Token, false},           // not a member
		{"10.0.0.2", "0123456789abcdef", false}, // wrong token
		{"10.0.0.2", "", false},
	} {
		if got := cl.HopMark(netip.MustParseAddr(c.ip), c.tok); got != c.want {
			t.Errorf("%s %q: %v", c.ip, c.tok, got)
		}
	}
}

// TestClusterProbe: the members' probe flags, their bounds with exact
// errors, and the probe in the cluster's version and backends' key.
func TestClusterProbe(t *testing.T) {
	for _, c := range []struct {
		iv, to time.Duration
		w, th  int
		err    string
	}{
		{100 * time.Millisecond, 50 * time.Millisecond, 3, 2, "cluster probe interval 100ms out of range 500ms-1h (0: no probe)"},
		{time.Second, 2 * time.Second, 3, 2, "cluster probe timeout 2s out of range 10ms-1s (the interval)"},
		{time.Second, 5 * time.Millisecond, 3, 2, "cluster probe timeout 5ms out of range 10ms-1s (the interval)"},
		{time.Second, 500 * time.Millisecond, 2, 3, "cluster probe window 2 / threshold 3: need 1 <= threshold <= window <= 64"},
		{time.Second, 500 * time.Millisecond, 65, 2, "cluster probe window 65 / threshold 2: need 1 <= threshold <= window <= 64"},
		{time.Second, 500 * time.Millisecond, 3, 0, "cluster probe window 3 / threshold 0: need 1 <= threshold <= window <= 64"},
	} {
		if _, err := ClusterProbe(c.iv, c.to, c.w, c.th); err == nil || err.Error() != c.err {
			t.Errorf("ClusterProbe(%s, %s, %d, %d): %v, want %q", c.iv, c.to, c.w, c.th, err, c.err)
		}
	}
	if h, err := ClusterProbe(0, time.Second, 3, 2); h != nil || err != nil {
		t.Fatalf("interval 0: %v %v", h, err)
	}
	h, err := ClusterProbe(time.Second, 500*time.Millisecond, 3, 2)
	if err != nil || h.Path != ClusterProbePath || h.Initial != 2 || h.ExpectedStatus != 200 || h.ID == 0 {
		t.Fatalf("probe %+v %v", h, err)
	}
	base := ClusterConfig{Secret: "0123456789abcdef", SecondaryTTL: 10, DownSeconds: 5, HopConnectMs: 500,
		Members: []Endpoint{{Address: "10.0.0.1", Port: 80}}}
	off, _ := NewCluster(base)
	base.Probe = h
	on, err := NewCluster(base)
	if err != nil || on.ProbeID() != h.ID || off.ProbeID() != 0 || on.Version == off.Version {
		t.Fatalf("probe id %d/%d, versions %d/%d, %v", on.ProbeID(), off.ProbeID(), on.Version, off.Version, err)
	}
}

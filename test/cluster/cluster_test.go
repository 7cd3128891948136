// Package cluster is the end-to-end suite of self-sharding: three (then
// four) real varnishd + ghostd nodes on loopback (127.0.0.1, a port each,
// members from a static -cluster-members list), one origin that counts
// its fetches, and the owner of every key computed by route.Cluster (the
// reference the shim's ring lookup must agree with).
//
// Run it with `go test -count=1 -v ./test/cluster/` after `make build`
// (make test does).
package cluster

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varnish/ghost/route"
	"github.com/varnish/ghost/test/stack"
)

const host = "shard.test"

// origin counts its fetches per path and fails the test when a request
// carries anything of ghost's (X-Ghost-*: the hop mark must never leave
// the cluster).
type origin struct {
	t     *testing.T
	srv   *http.Server
	port  int
	mu    sync.Mutex
	count map[string]int
	total atomic.Int64
	leak  atomic.Value
}

func startOrigin(t *testing.T) *origin {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{t: t, port: ln.Addr().(*net.TCPAddr).Port, count: map[string]int{}}
	o.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-ghost-") {
				o.leak.Store(k + ": " + r.Header.Get(k))
			}
		}
		o.mu.Lock()
		o.count[r.URL.Path]++
		o.mu.Unlock()
		o.total.Add(1)
		w.Header().Set("Cache-Control", "max-age=300")
		fmt.Fprintf(w, "body of %s\n", r.URL.Path)
	})}
	go o.srv.Serve(ln)
	t.Cleanup(func() {
		o.srv.Close()
		if l := o.leak.Load(); l != nil {
			t.Errorf("the origin got %v", l)
		}
	})
	return o
}

func (o *origin) fetches(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.count[path]
}

// config is one vhost whose every path is cached (a cache_policy) from
// the origin.
func config(o *origin) []byte {
	return []byte(fmt.Sprintf(`{"version": 2, "vhosts": {%q: {"routes": [
		{"path_match": {"type": "PathPrefix", "value": "/"},
		 "backends": [{"address": "127.0.0.1", "port": %d}],
		 "cache_policy": {"default_ttl_seconds": 300}}]}}}`, host, o.port))
}

type cluster struct {
	t     *testing.T
	dir   string
	opts  stack.ClusterOpts
	ports []int // one more than nodes: for a node to join
	nodes []*stack.ClusterNode
	ref   *route.Cluster // the owner oracle
}

// start starts n nodes (members: all of them) with more ghostd flags.
func start(t *testing.T, o *origin, n int, ghostd ...string) *cluster {
	return startVCL(t, o, n, "", ghostd...)
}

// startVCL is start with another ghost.vcl ("" = vcl/ghost.vcl).
func startVCL(t *testing.T, o *origin, n int, ghostVCL string, ghostd ...string) *cluster {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if err := stack.NeedBuild(root, "build/ghostd", "build/libvmod_ghost.so"); err != nil {
		t.Skip(err)
	}
	dir, err := stack.StageDir("ghost-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	ports, err := stack.ClusterPorts(n + 1)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, dir: dir, ports: ports, opts: stack.ClusterOpts{Root: root, Dir: dir, N: n, Config: config(o),
		Ghostd: ghostd, Params: []string{"thread_pool_min=20"}, GhostVCL: ghostVCL}}
	c.nodes, err = stack.StartCluster(c.opts, ports)
	t.Cleanup(func() {
		stack.StopCluster(c.nodes)
		// no kept-alive connection to this cluster's ports outlives it
		client.CloseIdleConnections()
		if t.Failed() || os.Getenv("GHOST_E2E_KEEP") != "" {
			t.Logf("staging directory kept: %s", dir)
			for _, nd := range c.nodes {
				t.Logf("----- %s ghostd\n%s", nd.Name, stack.Tail(filepath.Join(nd.Dir, "ghostd.log"), 15))
				if nd.Varnishd != nil {
					t.Logf("----- %s varnishd\n%s", nd.Name, nd.Varnishd.LogTail(15))
				}
			}
			return
		}
		os.RemoveAll(dir)
	})
	if err != nil {
		t.Fatal(err)
	}
	c.setRef(c.nodes)
	return c
}

// setRef makes the oracle's members those nodes.
func (c *cluster) setRef(nodes []*stack.ClusterNode) {
	var ms []route.Endpoint
	for _, n := range nodes {
		e, err := route.ParseEndpoint(n.Addr, 0)
		if err != nil {
			c.t.Fatal(err)
		}
		ms = append(ms, e)
	}
	ref, err := route.NewCluster(route.ClusterConfig{Members: ms, Secret: stack.TestSecret,
		SecondaryTTL: 1, DownSeconds: 1, HopConnectMs: 1})
	if err != nil {
		c.t.Fatal(err)
	}
	c.ref = ref
}

// owner is the address of the node that owns path.
func (c *cluster) owner(path string) string {
	return c.ref.Members[c.ref.Owner(route.ShardKey(host, path), nil)].String()
}

func (c *cluster) node(addr string) *stack.ClusterNode {
	for _, n := range c.nodes {
		if n.Addr == addr {
			return n
		}
	}
	c.t.Fatalf("no node %s", addr)
	return nil
}

// clientFrom is an HTTP client whose connections come from ip (a
// loopback address that is not a member's).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

// get asks node for path with the extra header lines; status and body.
func get(addr, path string, hdr ...string) (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (c *cluster) mustGet(addr, path string, hdr ...string) {
	c.t.Helper()
	st, body, err := get(addr, path, hdr...)
	if err != nil || st != 200 || body != "body of "+path+"\n" {
		c.t.Fatalf("GET %s via %s: %d %q %v", path, addr, st, body, err)
	}
}

// settled is a MAIN.* counter once it reached want (workers add theirs to
// MAIN.* when they go idle), or what it is after 10 s.
func settled(n *stack.ClusterNode, name string, want int64) int64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := stat(n, name)
		if v == want || time.Now().After(deadline) {
			return v
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stat is a GHOST.* or MAIN.* counter of the node.
func stat(n *stack.ClusterNode, name string) int64 {
	return n.Varnishd.Stats(name)[name]
}

// TestSameURLOneFetch: one URL asked through every node is fetched from
// the origin once (by its owner); the others forward (and keep a copy).
func TestSameURLOneFetch(t *testing.T) {
	o := startOrigin(t)
	c := start(t, o, 3)
	for round := 0; round < 3; round++ {
		for _, n := range c.nodes {
			c.mustGet(n.Addr, "/same")
		}
	}
	if f := o.fetches("/same"); f != 1 {
		t.Fatalf("origin fetched /same %d times, want 1", f)
	}
	own := c.node(c.owner("/same"))
	defer func() {
		// a pass (Authorization) never takes the extra hop: straight to
		// the origin from whichever node has it
		for _, n := range c.nodes {
			if n == own {
				continue
			}
			fwd := stat(n, "GHOST.shard_fwd")
			c.mustGet(n.Addr, "/same", "Authorization", "Basic eDp5")
			if stat(n, "GHOST.shard_fwd") != fwd {
				t.Errorf("%s forwarded a pass", n.Name)
			}
		}
		if f := o.fetches("/same"); f != 3 {
			t.Errorf("origin fetched /same %d times, want 3 (1 + 2 passes)", f)
		}
	}()
	for _, n := range c.nodes {
		fwd, sec := stat(n, "GHOST.shard_fwd"), stat(n, "GHOST.shard_sec_hit")
		if n == own {
			if fwd != 0 || stat(n, "GHOST.shard_owner") != 2 {
				t.Errorf("owner %s: forwarded %d, served as owner %d (want 0, 2)", n.Name, fwd, stat(n, "GHOST.shard_owner"))
			}
			continue
		}
		// one forward, then the secondary copy (TTL 10 s) serves
		if fwd != 1 || sec != 2 {
			t.Errorf("%s: forwarded %d, secondary hits %d (want 1, 2)", n.Name, fwd, sec)
		}
		if m := stat(n, "GHOST.shard_members"); m != 3 {
			t.Errorf("%s: %d members", n.Name, m)
		}
	}
}

// TestSpreadKillJoin: 1,000 URLs spread over the nodes leave about a
// third of the objects on each (no secondary copies here, so a node holds
// exactly what it owns); killing one node under load costs no client
// error and moves its third to the others; a fourth node joining takes
// about a quarter.
func TestSpreadKillJoin(t *testing.T) {
	const n = 1000
	o := startOrigin(t)
	// no active probe: this test is about the passive skip (a forwarded
	// fetch fails); TestProbeSkipsDeadPeer covers the probe
	c := start(t, o, 3, "-cluster-secondary-ttl", "0", "-cluster-down", "2s", "-cluster-probe-interval", "0")
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("/obj/%d", i)
	}
	for i, p := range paths {
		c.mustGet(c.nodes[i%3].Addr, p)
	}
	if f := o.total.Load(); f != n {
		t.Fatalf("origin fetches %d, want %d", f, n)
	}
	owned := map[string]int{}
	for _, p := range paths {
		owned[c.owner(p)]++
	}
	for _, nd := range c.nodes {
		objs := settled(nd, "MAIN.n_object", int64(owned[nd.Addr]))
		t.Logf("%s holds %d objects, owns %d of %d keys", nd.Name, objs, owned[nd.Addr], n)
		if objs != int64(owned[nd.Addr]) || objs < n/5 || objs > n/2 {
			t.Errorf("%s holds %d objects, owns %d", nd.Name, objs, owned[nd.Addr])
		}
	}

	// Kill node 3 while two clients keep asking nodes 1 and 2 for every
	// URL: no client error, and the keys node 3 owned are fetched again
	// by their new owners, nothing else.
	dead := c.nodes[2]
	var errs, reqs atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := paths[(i*7+w*500)%n]
				st, body, err := get(c.nodes[w].Addr, p)
				reqs.Add(1)
				if err != nil || st != 200 || body != "body of "+p+"\n" {
					errs.Add(1)
					lastErr.Store(fmt.Sprintf("GET %s via %s: %d %v", p, c.nodes[w].Name, st, err))
				}
			}
		}(w)
	}
	time.Sleep(300 * time.Millisecond)
	before := o.total.Load()
	_ = dead.Varnishd.Stop(0)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if e := errs.Load(); e != 0 {
		t.Fatalf("%d client errors of %d requests after killing %s: %v", e, reqs.Load(), dead.Name, lastErr.Load())
	}
	t.Logf("%d requests under the kill, no error", reqs.Load())
	c.nodes = c.nodes[:2]
	_ = dead.Ghostd.Stop(5 * time.Second)
	// every key once more through the survivors
	for i, p := range paths {
		c.mustGet(c.nodes[i%2].Addr, p)
	}
	moved := o.total.Load() - n
	t.Logf("origin fetches after the kill: %d (node 3 owned %d); during the load %d", moved, owned[dead.Addr], o.total.Load()-before)
	// a request in flight at the kill may be fetched by the dying owner
	// and by the retry: a few more than the keys that moved
	if moved < int64(owned[dead.Addr]) || moved > int64(owned[dead.Addr])+10 {
		t.Errorf("remap after the kill: %d fetches, want %d (the dead node's keys)", moved, owned[dead.Addr])
	}
	if fails := stat(c.nodes[0], "GHOST.shard_owner_fail") + stat(c.nodes[1], "GHOST.shard_owner_fail"); fails == 0 {
		t.Error("no owner failure counted")
	}
}

// TestProbeSkipsDeadPeer: members' backends carry a Varnish probe of
// /.varnish-ghost/healthz; a killed member turns sick without any
// traffic, and the first request for a key it owned goes to the next
// member on the ring (or the origin) without a failed forward.
func TestProbeSkipsDeadPeer(t *testing.T) {
	o := startOrigin(t)
	c := start(t, o, 3, "-cluster-probe-interval", "500ms", "-cluster-probe-timeout", "200ms",
		"-cluster-probe-window", "2", "-cluster-probe-threshold", "2")
	st, _, err := get(c.nodes[0].Addr, "/.varnish-ghost/healthz")
	if err != nil || st != 200 || o.total.Load() != 0 {
		t.Fatalf("healthz: %d %v, origin fetches %d", st, err, o.total.Load())
	}
	front, dead := c.nodes[0], c.nodes[2]
	// keys owned by node 3, one forwarded now (node 1 creates its backend
	// for node 3, with the probe), one asked only after the kill
	var owned []string
	for i := 0; len(owned) < 2; i++ {
		if p := fmt.Sprintf("/probe/%d", i); c.owner(p) == dead.Addr {
			owned = append(owned, p)
		}
	}
	c.mustGet(front.Addr, owned[0])
	if f := stat(front, "GHOST.shard_fwd"); f != 1 {
		t.Fatalf("shard_fwd %d, want 1", f)
	}
	bl, _ := front.Varnishd.Adm("backend.list")
	if !strings.Contains(bl, dead.Addr+"~") || !strings.Contains(bl, "healthy") {
		t.Fatalf("backend.list of %s shows no probed backend of %s:\n%s", front.Name, dead.Addr, bl)
	}

	_ = dead.Varnishd.Stop(0)
	deadline := time.Now().Add(15 * time.Second)
	for stat(front, "GHOST.probe_sick") == 0 {
		if time.Now().After(deadline) {
			bl, _ = front.Varnishd.Adm("backend.list")
			t.Fatalf("%s's probe of %s never went sick:\n%s", front.Name, dead.Addr, bl)
		}
		time.Sleep(100 * time.Millisecond)
	}
	bl, _ = front.Varnishd.Adm("backend.list")
	t.Logf("%s after the kill:\n%s", front.Name, bl)
	if !strings.Contains(bl, "sick") {
		t.Errorf("backend.list shows no sick member:\n%s", bl)
	}
	before := o.total.Load()
	c.mustGet(front.Addr, owned[1])
	if f := stat(front, "GHOST.shard_owner_fail"); f != 0 {
		t.Errorf("shard_owner_fail %d: the forward went to the dead member", f)
	}
	if o.total.Load() != before+1 {
		t.Errorf("origin fetches %d, want %d", o.total.Load(), before+1)
	}
	// the ring's next member (the oracle skipping node 3) served it
	di := slices.IndexFunc(c.ref.Members, func(e route.Endpoint) bool { return e.String() == dead.Addr })
	next := c.ref.Members[c.ref.Owner(route.ShardKey(host, owned[1]), func(m int) bool { return m == di })].String()
	if next != front.Addr && stat(c.node(next), "GHOST.shard_owner") == 0 {
		t.Errorf("%s (next on the ring) served no hop", next)
	}
	c.nodes = c.nodes[:2]
	_ = dead.Ghostd.Stop(5 * time.Second)
}

// TestSpoofedHopMark: a client's hop mark (wrong token, or the right
// token from an address that is not a member's) is an ordinary request:
// the node forwards it to the owner as any other, and the mark never
// reaches the origin.
func TestSpoofedHopMark(t *testing.T) {
	o := startOrigin(t)
	c := start(t, o, 3)
	// a path node 1 does not own
	var p string
	for i := 0; ; i++ {
		p = fmt.Sprintf("/spoof/%d", i)
		if c.owner(p) != c.nodes[0].Addr {
			break
		}
	}
	n1 := c.nodes[0]
	c.mustGet(n1.Addr, "/warm") // node 1 fetches the cluster
	f0 := stat(n1, "GHOST.shard_fwd")
	c.mustGet(n1.Addr, p, "X-Ghost-Hop", "0123456789abcdef0123456789abcdef")
	if r, f := stat(n1, "GHOST.shard_hop_refused"), stat(n1, "GHOST.shard_fwd")-f0; r != 1 || f != 1 {
		t.Fatalf("wrong token: refused %d, forwarded %d (want 1, 1)", r, f)
	}
	// the right token from 127.0.0.5, not a member
	cl := clientFrom("127.0.0.5")
	p2 := p + "x"
	for c.owner(p2) == n1.Addr {
		p2 += "x"
	}
	req, _ := http.NewRequest("GET", "http://"+n1.Addr+p2, nil)
	req.Host = host
	req.Header.Set("X-Ghost-Hop", route.HopToken(stack.TestSecret))
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if r, f := stat(n1, "GHOST.shard_hop_refused"), stat(n1, "GHOST.shard_fwd")-f0; resp.StatusCode != 200 || r != 2 || f != 2 {
		t.Fatalf("right token, not a member: status %d, refused %d, forwarded %d (want 200, 2, 2)", resp.StatusCode, r, f)
	}
	if o.fetches(p) != 1 || o.fetches(p2) != 1 {
		t.Fatalf("origin fetches %d %d", o.fetches(p), o.fetches(p2))
	}
}

// TestJoin: a fourth node joins (the members' lists name it, their
// ghostds restarted, as an operator changes a static list): about a
// quarter of the keys move to it, exactly those the ring gives it, and
// each is fetched once.
func TestJoin(t *testing.T) {
	const n = 1000
	o := startOrigin(t)
	c := start(t, o, 3, "-cluster-secondary-ttl", "0")
	paths := make([]string, n)
	for i := range paths {
		paths[i] = fmt.Sprintf("/join/%d", i)
		c.mustGet(c.nodes[i%3].Addr, paths[i])
	}
	var addrs []string
	for _, p := range c.ports {
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", p))
	}
	members := strings.Join(addrs, ",")
	n4, err := stack.AddClusterNode(c.opts, 3, c.ports[3], members)
	if n4 != nil {
		c.nodes = append(c.nodes, n4)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.nodes[:3] {
		_ = nd.Ghostd.Stop(5 * time.Second)
		nd.SetGhostdArgs("-cluster-members", members)
		if err := nd.StartGhostd(); err != nil {
			t.Fatal(err)
		}
	}
	c.setRef(c.nodes)
	toNew := 0
	for _, p := range paths {
		if c.owner(p) == n4.Addr {
			toNew++
		}
	}
	before := o.total.Load()
	for i, p := range paths {
		c.mustGet(c.nodes[i%3].Addr, p)
	}
	moved := o.total.Load() - before
	t.Logf("join: %d of %d keys fetched again, the ring gives the new node %d", moved, n, toNew)
	if moved != int64(toNew) || toNew < n/6 || toNew > n/3 {
		t.Errorf("join: %d fetches, the new node owns %d", moved, toNew)
	}
	for _, nd := range c.nodes {
		if m := stat(nd, "GHOST.shard_members"); m != 4 {
			t.Errorf("%s: %d members", nd.Name, m)
		}
	}
}

// TestHopHTTPS: a request a trusted front marked https keeps that on the
// hop: the owner caches it as the https object its own https clients
// find, so the origin sees one fetch. The trusted front is 127.0.0.5
// here (a ghost.vcl with that acl), so that the members (127.0.0.1) are
// not trusted fronts and only the hop mark can say https.
func TestHopHTTPS(t *testing.T) {
	root, _ := filepath.Abs("../..")
	b, err := os.ReadFile(filepath.Join(root, "vcl/ghost.vcl"))
	if err != nil {
		t.Fatal(err)
	}
	const acl = "acl ghost_trusted_front {\n\t\"127.0.0.1\";\n\t\"::1\";\n}"
	if !strings.Contains(string(b), acl) {
		t.Fatalf("vcl/ghost.vcl has no %q", acl)
	}
	vcl := filepath.Join(t.TempDir(), "ghost.vcl")
	if err := os.WriteFile(vcl, []byte(strings.Replace(string(b), acl, "acl ghost_trusted_front {\n\t\"127.0.0.5\";\n}", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	o := startOrigin(t)
	c := startVCL(t, o, 3, vcl, "-cluster-secondary-ttl", "0")
	n1 := c.nodes[0]
	c.mustGet(n1.Addr, "/warm")
	p := "/tls/0"
	for i := 1; c.owner(p) == n1.Addr; i++ {
		p = fmt.Sprintf("/tls/%d", i)
	}
	own := c.node(c.owner(p))
	front := clientFrom("127.0.0.5")
	for _, addr := range []string{n1.Addr, own.Addr} {
		req, _ := http.NewRequest("GET", "http://"+addr+p, nil)
		req.Host = host
		req.Header.Set("X-Forwarded-Proto", "https")
		resp, err := front.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s via %s: %d", p, addr, resp.StatusCode)
		}
	}
	if f := o.fetches(p); f != 1 {
		t.Fatalf("origin fetched %s %d times over https through a non-owner and the owner, want 1", p, f)
	}
	// plain http is another object (routing may depend on https)
	c.mustGet(n1.Addr, p)
	if f := o.fetches(p); f != 2 {
		t.Fatalf("origin fetched %s %d times, want 2 (https and http objects)", p, f)
	}
}

// Command cluster is make bench's clustering row: three Varnish nodes
// sharded (ghostd -cluster-*) against three independent ones, on
// loopback, fed the same request stream; and the cost of the extra hop
// on a hit a non-owner forwards. Prints a markdown report.
//
//	go run ./test/bench/cluster -requests 30000 -objects 3000
//
// The stream: -requests requests for -objects URLs (Zipf-distributed,
// s=1.1, the same seed for both layouts), each sent to a node chosen at
// random, -conns at a time. Reported per layout: origin fetches, fetches
// per object requested, and the cluster hit ratio (requests not fetched
// from the origin). The hop: -hop sequential requests for one cached key
// through its owner (a local hit) and through a non-owner (with no
// secondary copy, so every request hops to the owner and hits there):
// median and p99 latency, and CPU of every varnishd and ghostd per
// request (user+system of the processes, /proc), ratios against the local
// hit in the same run.
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varnish/ghost/route"
	"github.com/varnish/ghost/test/stack"
	"github.com/varnish/ghost/test/stack/procfs"
)

const host = "bench.cluster"

func main() {
	requests := flag.Int("requests", 30000, "requests in the stream")
	objects := flag.Int("objects", 3000, "distinct URLs")
	conns := flag.Int("conns", 8, "concurrent clients")
	hop := flag.Int("hop", 3000, "sequential requests per hop measurement")
	keep := flag.Bool("keep", false, "keep the staging directory")
	flag.Parse()
	if err := run(*requests, *objects, *conns, *hop, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "cluster bench:", err)
		os.Exit(1)
	}
}

type origin struct {
	port    int
	fetches atomic.Int64
}

func startOrigin() (*origin, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	o := &origin{port: ln.Addr().(*net.TCPAddr).Port}
	body := strings.Repeat("x", 2048)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.fetches.Add(1)
		w.Header().Set("Cache-Control", "max-age=600")
		io.WriteString(w, body)
	}))
	return o, nil
}

func config(o *origin) []byte {
	return []byte(fmt.Sprintf(`{"version": 2, "vhosts": {%q: {"routes": [
		{"path_match": {"type": "PathPrefix", "value": "/"},
		 "backends": [{"address": "127.0.0.1", "port": %d}],
		 "cache_policy": {"default_ttl_seconds": 600}}]}}}`, host, o.port))
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}

func get(addr, path string) error {
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("GET %s via %s: %d", path, addr, resp.StatusCode)
	}
	return err
}

// stream sends the request stream to the nodes; it returns the number of
// distinct URLs it asked for.
func stream(nodes []*stack.ClusterNode, requests, objects, conns int) (int, error) {
	rng := rand.New(rand.NewPCG(17, 17))
	z := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 1, uint64(objects-1))
	type rq struct {
		node int
		path string
	}
	work := make([]rq, requests)
	seen := map[string]bool{}
	for i := range work {
		work[i] = rq{rng.IntN(len(nodes)), fmt.Sprintf("/o/%d", z.Uint64())}
		seen[work[i].path] = true
	}
	var next atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(work) {
					return
				}
				if err := get(nodes[work[i].node].Addr, work[i].path); err != nil {
					first.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := first.Load().(error); err != nil {
		return 0, err
	}
	return len(seen), nil
}

// cpu is the CPU time of every varnishd (manager and child) and ghostd.
func cpu(nodes []*stack.ClusterNode) time.Duration {
	var t time.Duration
	for _, n := range nodes {
		for _, pid := range []int{n.Varnishd.Pid(), n.Varnishd.ChildPID(), n.Ghostd.Pid()} {
			if d, err := procfs.CPU(pid); err == nil && pid > 0 {
				t += d
			}
		}
	}
	return t
}

type hopResult struct {
	p50, p99 time.Duration
	cpu      time.Duration // per request
}

func measure(nodes []*stack.ClusterNode, addr, path string, n int) (hopResult, error) {
	lat := make([]time.Duration, n)
	c0 := cpu(nodes)
	for i := range lat {
		t0 := time.Now()
		if err := get(addr, path); err != nil {
			return hopResult{}, err
		}
		lat[i] = time.Since(t0)
	}
	c1 := cpu(nodes)
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	return hopResult{lat[n/2], lat[n*99/100], (c1 - c0) / time.Duration(n)}, nil
}

func run(requests, objects, conns, hops int, keep bool) error {
	root, err := stack.Root()
	if err != nil {
		return err
	}
	if err := stack.NeedBuild(root, "build/ghostd", "build/libvmod_ghost.so"); err != nil {
		return err
	}
	dir, err := stack.StageDir("ghost-bench-cluster-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "staging directory:", dir)
	}
	type layout struct {
		name            string
		members         string
		ghostd          []string
		fetches, asked  int
		reqs            int
		secHits, owners int64
	}
	layouts := []*layout{
		{name: "3 independent", members: "-"},
		{name: "3 sharded (secondary TTL 10 s)"},
		{name: "3 sharded (no secondary copy)", ghostd: []string{"-cluster-secondary-ttl", "0"}},
	}
	var hopLocal, hopFwd hopResult
	for i, l := range layouts {
		o, err := startOrigin()
		if err != nil {
			return err
		}
		ports, err := stack.ClusterPorts(3)
		if err != nil {
			return err
		}
		opts := stack.ClusterOpts{Root: root, Dir: filepath.Join(dir, fmt.Sprintf("l%d", i)), N: 3, Config: config(o),
			Members: l.members, Ghostd: l.ghostd, Params: []string{"thread_pool_min=50"}, Storage: "malloc,256m"}
		if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
			return err
		}
		nodes, err := stack.StartCluster(opts, ports)
		if err != nil {
			return err
		}
		asked, err := stream(nodes, requests, objects, conns)
		if err != nil {
			stack.StopCluster(nodes)
			return err
		}
		l.fetches, l.asked, l.reqs = int(o.fetches.Load()), asked, requests
		for _, n := range nodes {
			st := n.Varnishd.Stats("GHOST.shard_sec_hit", "GHOST.shard_owner")
			l.secHits += st["GHOST.shard_sec_hit"]
			l.owners += st["GHOST.shard_owner"]
		}
		if i == 2 {
			// the hop: a key of node 2's, through node 2 and node 1
			var ms []route.Endpoint
			for _, n := range nodes {
				e, _ := route.ParseEndpoint(n.Addr, 0)
				ms = append(ms, e)
			}
			ref, err := route.NewCluster(route.ClusterConfig{Members: ms, Secret: stack.TestSecret,
				SecondaryTTL: 1, DownSeconds: 1, HopConnectMs: 1})
			if err != nil {
				stack.StopCluster(nodes)
				return err
			}
			path := ""
			for k := 0; path == ""; k++ {
				p := fmt.Sprintf("/hop/%d", k)
				if ref.Members[ref.Owner(route.ShardKey(host, p), nil)].String() == nodes[1].Addr {
					path = p
				}
			}
			_ = get(nodes[1].Addr, path) // cached on its owner
			for w := 0; w < 200; w++ {   // warm both paths
				_ = get(nodes[1].Addr, path)
				_ = get(nodes[0].Addr, path)
			}
			if hopLocal, err = measure(nodes, nodes[1].Addr, path, hops); err == nil {
				hopFwd, err = measure(nodes, nodes[0].Addr, path, hops)
			}
			if err != nil {
				stack.StopCluster(nodes)
				return err
			}
		}
		stack.StopCluster(nodes)
	}
	fmt.Printf("### Clustering: 3 nodes sharded vs 3 independent\n\n")
	fmt.Printf("Same stream for each layout: %d requests, %d URLs (Zipf s=1.1; %d distinct asked), a random node per request, %d clients; origin: max-age 600.\n\n",
		requests, objects, layouts[0].asked, conns)
	fmt.Printf("| layout | origin fetches | fetches per object | cluster hit ratio | secondary hits | served as owner |\n|---|---|---|---|---|---|\n")
	for _, l := range layouts {
		fmt.Printf("| %s | %d | %.2f | %.1f %% | %d | %d |\n", l.name, l.fetches, float64(l.fetches)/float64(l.asked),
			100*(1-float64(l.fetches)/float64(l.reqs)), l.secHits, l.owners)
	}
	fmt.Printf("\nThe extra hop (no secondary copy: every request through a non-owner is forwarded and hits on the owner), %d sequential requests each:\n\n", hops)
	fmt.Printf("| hit | p50 | p99 | CPU per request (varnishd + ghostd, all nodes) |\n|---|---|---|---|\n")
	fmt.Printf("| on the owner | %v | %v | %v |\n", hopLocal.p50.Round(time.Microsecond), hopLocal.p99.Round(time.Microsecond), hopLocal.cpu.Round(time.Microsecond))
	fmt.Printf("| through a non-owner | %v | %v | %v |\n", hopFwd.p50.Round(time.Microsecond), hopFwd.p99.Round(time.Microsecond), hopFwd.cpu.Round(time.Microsecond))
	if hopLocal.p50 > 0 && hopLocal.cpu > 0 {
		fmt.Printf("| ratio | %.2f | %.2f | %.2f |\n", float64(hopFwd.p50)/float64(hopLocal.p50),
			float64(hopFwd.p99)/float64(hopLocal.p99), float64(hopFwd.cpu)/float64(hopLocal.cpu))
	}
	return nil
}

// Command sockload measures ghostd's decision throughput over its Unix
// socket: N connections, one request outstanding each (as the shim's pool
// does), cycling through the benchmark's 5,000 requests (100 vhosts x 10
// routes x 5 URLs, the same 6 headers as the Varnish runs). It prints one
// markdown table row per connection count: calls/s, latency p50/p99 and
// ghostd's CPU per call (utime+stime of -pid over the run).
//
//	sockload -socket /tmp/x/g.sock -pid 1234 -conns 1,4 -duration 5s
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/varnish/ghost/protocol"
	"github.com/varnish/ghost/route"
	"github.com/varnish/ghost/test/stack/procfs"
)

func requests() []route.Request {
	var out []route.Request
	for i := range 100 {
		host := fmt.Sprintf("vh%d.bench.test", i)
		for k := range 10 {
			for j := range 5 {
				out = append(out, route.Request{
					Host:   host,
					Method: "GET",
					URL:    fmt.Sprintf("/r%d/item-%d", k, j),
					Headers: []route.Header{
						{Name: "Host", Value: host},
						{Name: "User-Agent", Value: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"},
						{Name: "Accept", Value: "text/html,application/xhtml+xml,*/*;q=0.8"},
						{Name: "Accept-Language", Value: "en-US,en;q=0.5"},
						{Name: "Accept-Encoding", Value: "gzip, deflate"},
						{Name: "Referer", Value: "http://" + host + "/"},
					},
					Socket: "a0",
				})
			}
		}
	}
	return out
}

type result struct {
	calls int
	lat   []time.Duration
	err   error
}

func run(socket string, conns int, d time.Duration, reqs []route.Request) ([]result, time.Duration) {
	clients := make([]*protocol.Client, conns)
	for i := range clients {
		c, err := protocol.Dial(socket, 2*time.Second)
		if err != nil {
			return []result{{err: err}}, 0
		}
		defer c.Close()
		clients[i] = c
	}
	res := make([]result, conns)
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &res[i]
			r.lat = make([]time.Duration, 0, 1<<16)
			n := i * len(reqs) / conns
			for {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				a, err := c.Route(&reqs[n%len(reqs)])
				if err == nil && a.Decision.Status != 200 {
					err = fmt.Errorf("%s%s: status %d", reqs[n%len(reqs)].Host, reqs[n%len(reqs)].URL, a.Decision.Status)
				}
				if err != nil {
					r.err = err
					return
				}
				r.lat = append(r.lat, time.Since(t0))
				r.calls++
				n++
			}
		}()
	}
	wg.Wait()
	return res, time.Since(start)
}

func main() {
	socket := flag.String("socket", "", "ghostd socket")
	pid := flag.Int("pid", 0, "ghostd pid (for its CPU time)")
	connList := flag.String("conns", "1,4", "connection counts, comma-separated")
	d := flag.Duration("duration", 5*time.Second, "duration per connection count")
	flag.Parse()
	if *socket == "" || *pid == 0 {
		fmt.Fprintln(os.Stderr, "usage: sockload -socket PATH -pid PID [-conns 1,4] [-duration 5s]")
		os.Exit(2)
	}
	reqs := requests()
	fmt.Println("| connections | calls/s | p50 | p99 | ghostd CPU/call |")
	fmt.Println("|---:|---:|---:|---:|---:|")
	failed := false
	for _, cs := range strings.Split(*connList, ",") {
		conns, err := strconv.Atoi(strings.TrimSpace(cs))
		if err != nil || conns < 1 {
			fmt.Fprintf(os.Stderr, "sockload: bad connection count %q\n", cs)
			os.Exit(2)
		}
		c0, err := procfs.CPU(*pid)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sockload:", err)
			os.Exit(1)
		}
		res, took := run(*socket, conns, *d, reqs)
		c1, _ := procfs.CPU(*pid)
		var lat []time.Duration
		calls := 0
		for _, r := range res {
			if r.err != nil {
				fmt.Fprintf(os.Stderr, "sockload: %d connections: %v\n", conns, r.err)
				failed = true
			}
			calls += r.calls
			lat = append(lat, r.lat...)
		}
		if calls == 0 {
			fmt.Printf("| %d | failed | – | – | – |\n", conns)
			continue
		}
		slices.Sort(lat)
		pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
		cpu := float64((c1 - c0).Microseconds()) / float64(calls)
		fmt.Printf("| %d | %.0f | %.0f µs | %.0f µs | %.1f µs |\n", conns, float64(calls)/took.Seconds(),
			float64(pct(0.50).Microseconds()), float64(pct(0.99).Microseconds()), cpu)
	}
	if failed {
		os.Exit(1)
	}
}

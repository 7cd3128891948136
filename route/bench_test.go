package route

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// genFile writes a ghost.json with nv vhosts of nr routes each, a mix of
// Exact, PathPrefix, header and method routes (no regex, no rewrite), the
// shape of a typical Gateway API deployment.
func genFile(nv, nr int) []byte {
	var b strings.Builder
	b.Grow(nv * nr * 140)
	b.WriteString(`{"version":2,"vhosts":{`)
	for i := 0; i < nv; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"vh%d.example.com":{"routes":[`, i)
		for j := 0; j < nr; j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			addr := fmt.Sprintf(`"backends":[{"address":"10.%d.%d.%d","port":8080,"weight":90},{"address":"10.%d.%d.%d","port":8080,"weight":10}]`,
				i>>8&255, i&255, j, i>>8&255, i&255, j+100)
			switch j % 4 {
			case 0:
				fmt.Fprintf(&b, `{"path_match":{"type":"Exact","value":"/svc%d/item"},%s}`, j, addr)
			case 1:
				fmt.Fprintf(&b, `{"path_match":{"type":"PathPrefix","value":"/svc%d"},%s}`, j, addr)
			case 2:
				fmt.Fprintf(&b, `{"path_match":{"type":"PathPrefix","value":"/svc%d/v2"},"headers":[{"name":"x-env","value":"canary"}],%s}`, j, addr)
			case 3:
				fmt.Fprintf(&b, `{"path_match":{"type":"PathPrefix","value":"/api/svc%d"},"method":"GET",%s}`, j, addr)
			}
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`}}`)
	return []byte(b.String())
}

// genRequests makes n requests for genFile(nv, nr), spread over hot
// vhosts picked at random among the nv (all of them when hot >= nv).
func genRequests(n, nv, nr, hot int) []Request {
	rng := rand.New(rand.NewPCG(1, uint64(nv)))
	vh := rng.Perm(nv)[:min(hot, nv)]
	out := make([]Request, n)
	for k := range out {
		i, j := vh[rng.IntN(len(vh))], rng.IntN(nr)
		r := Request{Host: fmt.Sprintf("vh%d.example.com", i), Method: "GET",
			Headers: []Header{{"User-Agent", "bench"}, {"Accept", "*/*"}, {"X-Env", "canary"}}}
		switch k % 4 {
		case 0:
			r.URL = fmt.Sprintf("/svc%d/item", j)
		case 1:
			r.URL = fmt.Sprintf("/svc%d/v2/items/123?x=1", j)
		case 2:
			r.URL = fmt.Sprintf("/api/svc%d/users/42", j)
		case 3:
			r.URL = "/nothing/here"
		}
		out[k] = r
	}
	return out
}

var (
	benchMu     sync.Mutex
	benchTables = map[[2]int]*Table{}
)

func benchTable(b *testing.B, nv, nr int) *Table {
	benchMu.Lock()
	defer benchMu.Unlock()
	if tb, ok := benchTables[[2]int{nv, nr}]; ok {
		return tb
	}
	tb, err := Parse("ghost.json", genFile(nv, nr))
	if err != nil {
		b.Fatal(err)
	}
	benchTables[[2]int{nv, nr}] = tb
	return tb
}

func runDecide(b *testing.B, tb *Table, reqs []Request) {
	b.ReportAllocs()
	var d Decision
	runtime.GC() // do not time the collection of the table's garbage
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tb.Decide(&reqs[i&(len(reqs)-1)], &d)
	}
}

func BenchmarkDecide(b *testing.B) {
	// Traffic over 1,000 hot vhosts: the table grows, the working set
	// does not (flatness of the algorithm).
	for _, nv := range []int{1000, 100000} {
		b.Run(fmt.Sprintf("vhosts=%d/routes=20", nv), func(b *testing.B) {
			runDecide(b, benchTable(b, nv, 20), genRequests(4096, nv, 20, 1000))
		})
	}
	// Traffic spread uniformly over every vhost: the working set grows
	// with the table (memory-bound, cache misses).
	b.Run("vhosts=100000/routes=20/uniform", func(b *testing.B) {
		runDecide(b, benchTable(b, 100000, 20), genRequests(4096, 100000, 20, 100000))
	})
	b.Run("regex-vhost", func(b *testing.B) {
		var routes []string
		for j := 0; j < 20; j++ {
			routes = append(routes, fmt.Sprintf(`{"path_match":{"type":"RegularExpression","value":"^/svc%d/[a-z]+/[0-9]+$"},%s}`, j, be(j)))
		}
		tb := mustParse(b, file(map[string][]string{"re.example.com": routes}))
		reqs := make([]Request, 64)
		for k := range reqs {
			reqs[k] = Request{Host: "re.example.com", Method: "GET", URL: fmt.Sprintf("/svc%d/items/%d", k%20, k)}
		}
		runDecide(b, tb, reqs)
	})
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("prefix-routes=%d", n), func(b *testing.B) {
			tb, reqs := prefixBenchTable(b, n)
			runDecide(b, tb, reqs)
		})
	}
	b.Run("rewrite-prefix", func(b *testing.B) {
		tb := mustParse(b, file(map[string][]string{"w.example.com": {
			`{"path_match":{"type":"PathPrefix","value":"/old"},"filters":{"url_rewrite":{"path_type":"ReplacePrefixMatch","replace_prefix_match":"/new"}},` + be(1) + `}`}}))
		runDecide(b, tb, []Request{{Host: "w.example.com", Method: "GET", URL: "/old/x/y?z"}})
	})
	b.Run("redirect", func(b *testing.B) {
		tb := mustParse(b, file(map[string][]string{"r.example.com": {`{"filters":{"request_redirect":{"scheme":"https"}}}`}}))
		runDecide(b, tb, []Request{{Host: "r.example.com", Method: "GET", URL: "/x/y?z"}})
	})
}

// BenchmarkCompile parses, validates and compiles a 10,000-vhost file with
// 2 routes per vhost (20,000 routes) and with 20 (200,000 routes, 400,000
// endpoints), shaped as in genFile. MB-table is the live heap the compiled
// table holds; the input bytes are not counted.
func BenchmarkCompile(b *testing.B) {
	benchMu.Lock()
	benchTables = map[[2]int]*Table{} // free the Decide tables first
	benchMu.Unlock()
	for _, nr := range []int{2, 20} {
		b.Run(fmt.Sprintf("vhosts=10000/routes=%d", nr), func(b *testing.B) {
			data := genFile(10000, nr)
			b.SetBytes(int64(len(data)))
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			var tb *Table
			for i := 0; i < b.N; i++ {
				tb = nil
				var err error
				tb, err = Parse("ghost.json", data)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "MB-table")
			runtime.KeepAlive(tb)
			runtime.KeepAlive(data)
		})
	}
}

// TestDecideAllocs pins the 0-allocation promise for non-regex,
// non-rewrite decisions (docs/benchmarks.md), including upper-case hosts,
// ports and repeated headers compared Exact.
func TestDecideAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	tb, err := Parse("ghost.json", genFile(50, 20))
	if err != nil {
		t.Fatal(err)
	}
	reqs := genRequests(256, 50, 20, 50)
	reqs = append(reqs,
		Request{Host: "VH3.Example.COM:8080", Method: "GET", URL: "/svc2/v2/x", Headers: []Header{{"x-env", "can"}, {"X-ENV", "ary"}}},
		Request{Host: "[::1]:80", Method: "GET", URL: "/"},
		Request{Host: strings.Repeat("X", 300), Method: "GET", URL: "/"},
	)
	var d Decision
	for _, r := range reqs[:len(reqs)-1] {
		r := r
		if n := testing.AllocsPerRun(20, func() { tb.Decide(&r, &d) }); n != 0 {
			t.Errorf("%+v: %v allocs", r, n)
		}
	}
}

// minNsPerOp decides every request of reqs rounds times over and returns
// the fastest round's time per decision. The minimum is robust against
// other load on the machine.
func minNsPerOp(tb *Table, reqs []Request, rounds, per int) float64 {
	var d Decision
	best := math.MaxFloat64
	for r := 0; r < rounds; r++ {
		start := time.Now()
		for i := 0; i < per; i++ {
			tb.Decide(&reqs[i&(len(reqs)-1)], &d)
		}
		if ns := float64(time.Since(start).Nanoseconds()) / float64(per); ns < best {
			best = ns
		}
	}
	return best
}

// prefixBenchTable is one vhost with n PathPrefix routes (/teamJ/svc) and "/",
// and 64 requests: three of four under a route, one falling through to "/".
func prefixBenchTable(b *testing.B, n int) (*Table, []Request) {
	var routes []string
	for j := 0; j < n; j++ {
		routes = append(routes, fmt.Sprintf(`{"path_match":{"type":"PathPrefix","value":"/team%d/svc"},%s}`, j, be(j%250)))
	}
	routes = append(routes, `{"path_match":{"type":"PathPrefix","value":"/"},`+be(1)+`}`)
	tb := mustParse(b, file(map[string][]string{"p.example.com": routes}))
	reqs := make([]Request, 64)
	for k := range reqs {
		u := fmt.Sprintf("/team%d/svc/x/%d", k*7919%n, k)
		if k%4 == 3 {
			u = "/other/path/deep/below"
		}
		reqs[k] = Request{Host: "p.example.com", Method: "GET", URL: u}
	}
	return tb, reqs
}

// BenchmarkDecideRatio measures two tables in alternating rounds in the
// same process and reports each one's best ns per decision and their
// ratio: 100,000 vs 1,000 vhosts (20 routes each, traffic over 1,000 or
// 100 hot vhosts), and one vhost with 1,000 vs 10 PathPrefix routes. b.N scales
// the number of rounds; the reported figures are the metrics, not ns/op.
func BenchmarkDecideRatio(b *testing.B) {
	type side struct {
		tb   *Table
		reqs []Request
	}
	pairs := []struct {
		name      string
		base, big func() side
	}{
		{"vhosts=100000/1000", func() side { return side{benchTable(b, 1000, 20), genRequests(4096, 1000, 20, 1000)} },
			func() side { return side{benchTable(b, 100000, 20), genRequests(4096, 100000, 20, 1000)} }},
		{"vhosts=100000/1000/hot=100", func() side { return side{benchTable(b, 1000, 20), genRequests(4096, 1000, 20, 100)} },
			func() side { return side{benchTable(b, 100000, 20), genRequests(4096, 100000, 20, 100)} }},
		{"prefix-routes=1000/10", func() side { t, r := prefixBenchTable(b, 10); return side{t, r} },
			func() side { t, r := prefixBenchTable(b, 1000); return side{t, r} }},
	}
	for _, p := range pairs {
		b.Run(p.name, func(b *testing.B) {
			base, big := p.base(), p.big()
			runtime.GC()
			b.ResetTimer()
			bestBase, bestBig := math.MaxFloat64, math.MaxFloat64
			for r := 0; r < 10*b.N; r++ {
				bestBase = min(bestBase, minNsPerOp(base.tb, base.reqs, 1, 200000))
				bestBig = min(bestBig, minNsPerOp(big.tb, big.reqs, 1, 200000))
			}
			b.ReportMetric(bestBase, "ns-base")
			b.ReportMetric(bestBig, "ns-big")
			b.ReportMetric(bestBig/bestBase, "ratio")
		})
	}
}

// BenchmarkUnknownKeys is the walk ghostd does on every load to report
// unknown keys, on the 10,000-vhost file of BenchmarkCompile (20 routes
// per vhost): compare its ns/op with BenchmarkCompile/vhosts=10000/routes=20.
func BenchmarkUnknownKeys(b *testing.B) {
	data := genFile(10000, 20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if k := UnknownKeyPositions(data); len(k) != 0 {
			b.Fatalf("unknown keys in the benchmark file: %v", k[0])
		}
	}
}

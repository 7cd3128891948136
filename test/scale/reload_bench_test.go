package scale

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/varnish/ghost/protocol"
	"github.com/varnish/ghost/route"
	"github.com/varnish/ghost/test/stack"
	"github.com/varnish/ghost/test/stack/procfs"
)

// BenchmarkGhostdReload100kx10 reloads the real ghostd (build/ghostd)
// between two 100k × 10 files whose every backend port differs (as make
// bench does), while two connections send route requests back to back,
// and reports the reload's wall time, ghostd's peak RSS against its
// settled RSS, and the route round trips during the reloads against
// those before (p50, p99, max, and how many took over 100 ms, the shim's
// route timeout).
func BenchmarkGhostdReload100kx10(b *testing.B) { benchGhostdReload(b, 100) }

// BenchmarkGhostdReload100kx10Pct1 is that with 1 % of the vhosts changed.
//
// GHOST_BENCH_GHOSTD names another ghostd binary to run (an older build,
// for a comparison in the same conditions).
func BenchmarkGhostdReload100kx10Pct1(b *testing.B) { benchGhostdReload(b, 1) }

func benchGhostdReload(b *testing.B, pct int) {
	const n = 100000
	root, err := stack.Root()
	if err != nil {
		b.Fatal(err)
	}
	argv := stack.GhostdArgs(root, "", "", "", "warn", "-watch=false")
	if bin := os.Getenv("GHOST_BENCH_GHOSTD"); bin != "" {
		argv[0] = bin
	} else if err := stack.NeedBuild(root, "build/ghostd"); err != nil {
		b.Skip(err)
	}
	dir := b.TempDir()
	sock, conf := filepath.Join(dir, "g.sock"), filepath.Join(dir, "ghost.json")
	a := Config(n, 10, 8080, "a", nil)
	files := [][]byte{changed(a, n, pct), a}
	if err := os.WriteFile(conf, a, 0o644); err != nil {
		b.Fatal(err)
	}
	argv[2], argv[4] = conf, sock // -config, -socket
	g, err := stack.Start("ghostd", filepath.Join(dir, "ghostd.log"), stack.Opts{}, argv...)
	if err != nil {
		b.Fatal(err)
	}
	defer g.Stop(5 * time.Second)
	if err := stack.WaitGhostd(sock, g, 5*time.Minute); err != nil {
		b.Fatal(err)
	}
	req := &route.Request{Host: Host(7), Method: "GET", URL: "/svc0/item"}
	// route sends requests on conns connections until stop is closed, and
	// returns their round trips.
	route := func(stop <-chan struct{}) []time.Duration {
		var mu sync.Mutex
		var all []time.Duration
		var wg sync.WaitGroup
		for range 2 {
			c, err := protocol.Dial(sock, 5*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				var rtt []time.Duration
				for {
					select {
					case <-stop:
						mu.Lock()
						all = append(all, rtt...)
						mu.Unlock()
						return
					default:
					}
					t0 := time.Now()
					if _, err := c.Route(req); err != nil {
						b.Error(err)
						return
					}
					rtt = append(rtt, time.Since(t0))
					time.Sleep(time.Millisecond) // a steady stream, not a saturating one
				}
			}()
		}
		<-stop
		wg.Wait()
		return all
	}
	stop := make(chan struct{})
	time.AfterFunc(2*time.Second, func() { close(stop) })
	idle := route(stop)
	var during []time.Duration
	var wall time.Duration
	hwm0 := procfs.RSSKB(g.Pid(), "VmHWM")
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		if err := stack.ReplaceFile(conf, files[i%2]); err != nil {
			b.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // as make bench does
		b.StartTimer()
		stop := make(chan struct{})
		done := make(chan []time.Duration)
		go func() { done <- route(stop) }()
		t0 := time.Now()
		r, err := stack.GhostdReload(sock, time.Minute)
		wall += time.Since(t0)
		close(stop)
		during = append(during, <-done...)
		if err != nil || !r.OK || r.Pending {
			b.Fatalf("reload: %+v %v", r, err)
		}
	}
	b.StopTimer()
	time.Sleep(5 * time.Second) // settled, as make bench reads it
	rss, hwm := procfs.RSSKB(g.Pid(), "VmRSS"), procfs.RSSKB(g.Pid(), "VmHWM")
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/reload")
	b.ReportMetric(float64(hwm)/1024, "peak-RSS-MiB")
	b.ReportMetric(float64(rss)/1024, "settled-RSS-MiB")
	b.ReportMetric(float64(hwm)/float64(rss), "peak/settled")
	if hwm0 > hwm {
		b.Logf("the start's peak RSS (%d kB) is above the reloads'", hwm0)
	}
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"idle", idle}, {"reload", during}} {
		slices.Sort(s.d)
		if len(s.d) == 0 {
			continue
		}
		q := func(f float64) float64 { return float64(s.d[int(f*float64(len(s.d)-1))].Microseconds()) / 1000 }
		over := len(s.d) - slices.IndexFunc(s.d, func(d time.Duration) bool { return d > 100*time.Millisecond })
		if over > len(s.d) {
			over = 0
		}
		b.ReportMetric(q(0.5), "route-p50-ms-"+s.name)
		b.ReportMetric(q(0.99), "route-p99-ms-"+s.name)
		b.ReportMetric(q(1), "route-max-ms-"+s.name)
		b.ReportMetric(float64(over), "route-over-100ms-"+s.name)
		b.ReportMetric(float64(len(s.d)), "route-calls-"+s.name)
	}
	b.Logf("load average %s", procfs.LoadAvg())
}

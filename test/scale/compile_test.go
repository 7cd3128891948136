package scale

import (
	"bytes"
	"runtime"
	"runtime/metrics"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/varnish/ghost/route"
)

// BenchmarkCompile100kx10 compiles the suite's reload table (100,000
// vhosts × 10 routes) in-process: the route/ share of a ghostd reload.
func BenchmarkCompile100kx10(b *testing.B) { benchCompile(b, 100000) }

// BenchmarkCompile10kx10 is a tenth of it, for profiling on a loaded
// machine.
func BenchmarkCompile10kx10(b *testing.B) { benchCompile(b, 10000) }

// BenchmarkReload100kx10 is a ghostd reload of the 100k × 10 table to a
// file whose every backend port differs (the reload make bench times):
// the previous table is live while the new one compiles, and is passed
// as route.Options.Prev (nothing can be reused).
func BenchmarkReload100kx10(b *testing.B) { benchReload(b, 100000, 100) }

// BenchmarkReload100kx10Pct1 is that reload to a file where 1 % of the
// vhosts changed (a port), as a controller rewriting the file writes: the
// other vhosts are the previous table's.
func BenchmarkReload100kx10Pct1(b *testing.B) { benchReload(b, 100000, 1) }

// benchCompile compiles the n × 10 table; the previous table is garbage.
func benchCompile(b *testing.B, n int) {
	data := Config(n, 10, 8080, "a", nil)
	runCompile(b, [][]byte{data}, false)
}

// benchReload reloads the n × 10 table from one file to another that
// differs in pct % of the vhosts, and back, with the previous table live
// and as Prev.
func benchReload(b *testing.B, n, pct int) {
	data := Config(n, 10, 8080, "a", nil)
	runCompile(b, [][]byte{data, changed(data, n, pct)}, true)
}

// changed returns data (a Config of n vhosts on port 8080) with the port
// of pct % of the vhosts, spread over the file, changed.
func changed(data []byte, n, pct int) []byte {
	out := bytes.Clone(data)
	step := 100 / pct
	from := 0 // the vhosts are in order
	for i := 0; i < n; i += step {
		lo := from + bytes.Index(out[from:], []byte(strconv.Quote(Host(i))+":"))
		hi := lo + bytes.Index(out[lo:], []byte("]}"))
		copy(out[lo:hi], bytes.ReplaceAll(out[lo:hi], []byte(`"port":8080`), []byte(`"port":8081`)))
		from = hi
	}
	return out
}

// runCompile parses the files in turn, b.N times, and reports, besides
// wall time, the CPU seconds of the process (user + system, every thread:
// the workers and the GC) per compile, which a loaded machine does not
// inflate as it does wall time, and the peak heap in use during a compile
// (HeapInuse sampled every 5 ms). With prev, the previous table is live
// during the compile and is route.Options.Prev, as in ghostd; the first
// file is compiled once before the timing.
func runCompile(b *testing.B, files [][]byte, prev bool) {
	b.SetBytes(int64(len(files[0])))
	var t *route.Table
	if prev {
		var err error
		if t, err = route.Parse("scale.json", files[0]); err != nil {
			b.Fatal(err)
		}
		files = append(files[1:], files[0])
	}
	b.ReportAllocs()
	var cpu, wall time.Duration
	var peak uint64
	i := 0
	for b.Loop() {
		data := files[i%len(files)]
		i++
		o := route.Options{}
		if prev {
			o.Prev = t
		}
		runtime.GC()
		stop := make(chan struct{})
		done := make(chan uint64)
		go func() {
			// runtime/metrics, not ReadMemStats, which stops the world
			// (every 5 ms it would preempt the compile)
			ms := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
			var top uint64
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				metrics.Read(ms)
				top = max(top, ms[0].Value.Uint64()+ms[1].Value.Uint64()) // HeapInuse
				select {
				case <-stop:
					done <- top
					return
				case <-t.C:
				}
			}
		}()
		c0, t0 := cpuTime(), time.Now()
		nt, err := route.ParseOptions("scale.json", data, o)
		if err != nil {
			b.Fatal(err)
		}
		wall += time.Since(t0)
		cpu += cpuTime() - c0
		close(stop)
		peak = max(peak, <-done)
		if prev {
			t = nt
		}
	}
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/compile")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/compile")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	runtime.KeepAlive(t)
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

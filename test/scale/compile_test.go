package scale

import (
	"runtime"
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

// benchCompile reports, besides wall time, the CPU seconds of the process
// (user + system, every thread: the compile, the decoder goroutine and the
// GC) per compile, which a loaded machine does not inflate as it does wall
// time, and the peak heap in use during a compile (HeapInuse sampled every 5
// ms; the previous table is garbage, as in ghostd).
func benchCompile(b *testing.B, n int) {
	data := Config(n, 10, 8080, "a", nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var cpu, wall time.Duration
	var peak uint64
	for b.Loop() {
		stop := make(chan struct{})
		done := make(chan uint64)
		go func() {
			var ms runtime.MemStats
			var top uint64
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for {
				runtime.ReadMemStats(&ms)
				top = max(top, ms.HeapInuse)
				select {
				case <-stop:
					done <- top
					return
				case <-t.C:
				}
			}
		}()
		c0, t0 := cpuTime(), time.Now()
		if _, err := route.Parse("scale.json", data); err != nil {
			b.Fatal(err)
		}
		wall += time.Since(t0)
		cpu += cpuTime() - c0
		close(stop)
		peak = max(peak, <-done)
	}
	b.ReportMetric(wall.Seconds()/float64(b.N), "s/compile")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/compile")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	runtime.KeepAlive(data)
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package protocoltest

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varnish/ghost/test/stack/procfs"
)

// RunCalls is the body of the socket benchmarks of protocol and ghostd:
// b.N calls spread over one goroutine per entry of calls (each a round
// trip on a connection of its own, one request outstanding, as the shim's
// pool does). It reports calls/s and the CPU per call of the server
// process (metric "<server>-µs/call") and of this process
// ("client-µs/call").
func RunCalls(b *testing.B, calls []func() error, serverPID int, server string) {
	var (
		next    atomic.Int64
		mu      sync.Mutex
		failure error
		wg      sync.WaitGroup
	)
	srv0, _ := procfs.CPU(serverPID)
	cli0, t0 := procfs.SelfCPU(), time.Now()
	b.ResetTimer()
	for _, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := call(); err != nil {
					mu.Lock()
					failure = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if failure != nil {
		b.Fatal(failure)
	}
	el, n := time.Since(t0), float64(b.N)
	srv1, _ := procfs.CPU(serverPID)
	b.ReportMetric(n/el.Seconds(), "calls/s")
	b.ReportMetric(float64((srv1-srv0).Microseconds())/n, server+"-µs/call")
	b.ReportMetric(float64((procfs.SelfCPU()-cli0).Microseconds())/n, "client-µs/call")
}

package scale

import (
	"runtime"
	"testing"
	"time"

	"github.com/varnish/ghost/route"
)

// BenchmarkCompile100kx10 compiles the suite's reload table (100,000
// vhosts × 10 routes) in-process: the route/ share of a ghostd reload.
func BenchmarkCompile100kx10(b *testing.B) {
	data := Config(100000, 10, 8080, "a", nil)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if _, err := route.Parse("scale.json", data); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(t0).Seconds(), "s/compile")
	}
	runtime.KeepAlive(data)
}

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/varnish/ghost/protocol"
	"github.com/varnish/ghost/protocol/protocoltest"
	"github.com/varnish/ghost/route"
)

func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ = 100
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDaemonRoute: route round trips to the real ghostd binary (with
// metrics enabled, as in production) over its Unix socket, with 1 and 4
// connections. Reports calls/s and CPU per call of ghostd and the client.
func BenchmarkDaemonRoute(b *testing.B) {
	d := startDaemon(b, string(protocoltest.Config()), "-metrics", "127.0.0.1:0", "-log-level", "warn")
	pid := d.cmd.Process.Pid
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			clients := make([]*protocol.Client, conns)
			for i := range clients {
				clients[i] = d.dial()
			}
			req := protocoltest.Request()
			var next atomic.Int64
			var failed atomic.Value
			srv0, cli0, t0 := procCPU(pid), selfCPU(), time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, c := range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						a, err := c.Route(req)
						if err == nil && a.Decision.Outcome != route.OutcomeBackend {
							err = fmt.Errorf("not routed: %+v", a.Decision)
						}
						if err != nil {
							failed.Store(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatal(err)
			}
			el, n := time.Since(t0), float64(b.N)
			b.ReportMetric(n/el.Seconds(), "calls/s")
			b.ReportMetric(float64((procCPU(pid)-srv0).Microseconds())/n, "ghostd-µs/call")
			b.ReportMetric(float64((selfCPU()-cli0).Microseconds())/n, "client-µs/call")
		})
	}
}

// BenchmarkReload10kVhosts: a reload of a 10,000-vhost file through the
// protocol (parse, compile, swap), alternating two files so that every
// reload installs a new table. Reports ghostd's RSS afterwards.
func BenchmarkReload10kVhosts(b *testing.B) {
	gen := func(port int) string {
		var sb strings.Builder
		sb.WriteString(`{"version":2,"vhosts":{`)
		for v := 0; v < 10000; v++ {
			if v > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `"h%d.example.com":{"routes":[{"path_match":{"type":"PathPrefix","value":"/a"},"backends":[{"address":"10.%d.%d.1","port":%d}]},`+
				`{"path_match":{"type":"Exact","value":"/b"},"method":"POST","backends":[{"address":"10.%d.%d.2","port":%d}]}]}`,
				v, v/256%256, v%256, port, v/256%256, v%256, port)
		}
		sb.WriteString(`}}`)
		return sb.String()
	}
	files := []string{gen(8080), gen(8081)}
	d := startDaemon(b, files[0], "-watch=false", "-log-level", "warn")
	c := d.dial()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		writeFile(b, d.config, files[(i+1)%2])
		b.StartTimer()
		r, err := c.Reload()
		if err != nil || !r.OK {
			b.Fatalf("reload: %+v %v", r, err)
		}
	}
	b.StopTimer()
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	for _, line := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			b.ReportMetric(float64(kb)/1024, "ghostd-RSS-MB")
		}
	}
}

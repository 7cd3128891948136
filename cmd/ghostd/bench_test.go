package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/varnish/ghost/protocol/protocoltest"
	"github.com/varnish/ghost/route"
)

// BenchmarkDaemonRoute: route round trips to the real ghostd binary (with
// metrics enabled, as in production) over its Unix socket, with 1 and 4
// connections. Reports calls/s and CPU per call of ghostd and the client.
func BenchmarkDaemonRoute(b *testing.B) {
	d := startDaemon(b, string(protocoltest.Config()), "-metrics", "127.0.0.1:0", "-log-level", "warn")
	pid := d.cmd.Process.Pid
	for _, conns := range []int{1, 4} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			req := protocoltest.Request()
			calls := make([]func() error, conns)
			for i := range calls {
				c := d.dial()
				calls[i] = func() error {
					a, err := c.Route(req)
					if err == nil && a.Decision.Outcome != route.OutcomeBackend {
						err = fmt.Errorf("not routed: %+v", a.Decision)
					}
					return err
				}
			}
			protocoltest.RunCalls(b, calls, pid, "ghostd")
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

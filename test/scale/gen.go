// Package scale is ghost's scale suite (make scale, docs/benchmarks.md
// "Scale"): 100k endpoints through a real varnishd, the shim and ghostd,
// with and without upstream keep-alive, retirement at 100k → 50k, and
// reloads of 100k vhosts × 10 routes under load. It is not part of make
// test (it takes minutes and needs the machine to itself); its tests skip
// unless GHOST_SCALE is set. The helpers here are also run at small sizes
// by the unit tests beside them.
package scale

import (
	"fmt"
	"net/netip"
	"strings"
)

// Endpoint is endpoint i's address: 127.1.0.1 onwards on loopback, one
// address per endpoint (all of 127.0.0.0/8 is the loopback interface on
// Linux), skipping .0 and .255 in the last byte so that no address looks
// like a network or broadcast address.
func Endpoint(i int) netip.Addr {
	n := i/254*256 + i%254 + 1 // last byte 1..254
	return netip.AddrFrom4([4]byte{127, byte(1 + n>>16), byte(n >> 8), byte(n)})
}

// Half maps vhost i to an even endpoint: the reload "to half" keeps every
// vhost and drops the odd endpoints.
func Half(i int) int { return i &^ 1 }

// OldHalf maps vhost i of n to an endpoint of the newer half: the reload
// "to half" keeps every vhost and drops endpoints 0 .. n/2-1, the older
// ones (created first).
func OldHalf(n int) func(int) int {
	return func(i int) int {
		if i < n/2 {
			return i + n/2
		}
		return i
	}
}

// Host is vhost i's name.
func Host(i int) string { return fmt.Sprintf("v%d.scale.test", i) }

// routeShapes are the routes of a vhost in Config, the mix of
// route/bench_test.go's genFile: Exact, PathPrefix, a header match and a
// method match. The suite's requests ask for /svc0/item (route 0).
var routeShapes = []string{
	`{"path_match":{"type":"Exact","value":"/svc%d%s/item"},%s}`,
	`{"path_match":{"type":"PathPrefix","value":"/svc%d%s"},%s}`,
	`{"path_match":{"type":"PathPrefix","value":"/svc%d%s/v2"},"headers":[{"name":"x-env","value":"canary"}],%s}`,
	`{"path_match":{"type":"PathPrefix","value":"/api/svc%d%s"},"method":"GET",%s}`,
}

// Config is a ghost.json with vhosts 0..n-1, routes routes each (at least
// 1), every route of vhost i to Endpoint(ep(i)) on port (Endpoint(i) when
// ep is nil: n distinct endpoints), n*routes routes. tag is added to the paths of every route but
// the first, so that two configs of the same size differ (a reload
// installs a new table) and /svc0/item always routes.
func Config(n, routes, port int, tag string, ep func(int) int) []byte {
	var b strings.Builder
	b.Grow(n * routes * 130)
	b.WriteString(`{"version":2,"vhosts":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `%q:{"routes":[`, Host(i))
		e := i
		if ep != nil {
			e = ep(i)
		}
		be := fmt.Sprintf(`"backends":[{"address":%q,"port":%d}]`, Endpoint(e).String(), port)
		for j := 0; j < max(routes, 1); j++ {
			if j > 0 {
				b.WriteByte(',')
			}
			t := ""
			if j > 0 && tag != "" {
				t = "-" + tag
			}
			fmt.Fprintf(&b, routeShapes[j%len(routeShapes)], j, t, be)
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`}}`)
	return []byte(b.String())
}

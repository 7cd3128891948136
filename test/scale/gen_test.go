package scale

import (
	"testing"

	"github.com/varnish/ghost/route"
)

// TestConfig: the generated table has n vhosts, n*routes routes and n
// distinct endpoints, all in 127.0.0.0/8 and none ending in .0 or .255.
func TestConfig(t *testing.T) {
	for _, c := range []struct {
		n, routes, eps int
		ep             func(int) int
	}{{1, 1, 1, nil}, {600, 10, 600, nil}, {301, 3, 151, Half}, {300, 2, 150, OldHalf(300)}, {301, 2, 151, OldHalf(301)}} {
		tb, err := route.Parse("scale.json", Config(c.n, c.routes, 8080, "b", c.ep))
		if err != nil {
			t.Fatal(err)
		}
		st := tb.Stats()
		if st.Vhosts != c.n || st.Routes != c.n*c.routes || st.Endpoints != c.eps {
			t.Errorf("%+v: stats %+v", c, st)
		}
	}
	seen := map[string]bool{}
	for i := range 200000 {
		a := Endpoint(i).As4()
		if a[0] != 127 || a[3] == 0 || a[3] == 255 || seen[Endpoint(i).String()] {
			t.Fatalf("endpoint %d: %v", i, Endpoint(i))
		}
		seen[Endpoint(i).String()] = true
		if j, ok := EndpointIndex(Endpoint(i).String()); !ok || j != i {
			t.Fatalf("EndpointIndex(%v) = %d, %v", Endpoint(i), j, ok)
		}
	}
}

package route

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestPickEdges(t *testing.T) {
	var d Decision
	if _, _, ok := d.Pick(123); ok {
		t.Errorf("no groups: ok")
	}
	d.Groups = []Group{{Weight: 0, Endpoints: []Endpoint{{"a", 1}}}, {Weight: 5}}
	if _, _, ok := d.Pick(123); ok {
		t.Errorf("only weight-0 / empty groups: ok")
	}
	d.Groups = []Group{
		{Weight: 0, Endpoints: []Endpoint{{"zero", 1}}},
		{Weight: 1, Endpoints: []Endpoint{{"a", 1}, {"b", 1}, {"c", 1}}},
		{Weight: 7, Endpoints: nil},
	}
	for _, u := range []uint64{0, 1, math.MaxUint64, math.MaxUint64 / 2, 1 << 63} {
		g, e, ok := d.Pick(u)
		if !ok || g != 1 || e < 0 || e > 2 {
			t.Errorf("Pick(%d) = %d %d %v", u, g, e, ok)
		}
	}
	// Extremes of u map to the first and last endpoint of the last group.
	d.Groups = []Group{{Weight: 1, Endpoints: []Endpoint{{"a", 1}}}, {Weight: 1, Endpoints: []Endpoint{{"b", 1}, {"c", 1}}}}
	if g, e, _ := d.Pick(0); g != 0 || e != 0 {
		t.Errorf("Pick(0) = %d %d", g, e)
	}
	if g, e, _ := d.Pick(math.MaxUint64); g != 1 || e != 1 {
		t.Errorf("Pick(max) = %d %d", g, e)
	}
	// 64-bit sums: many maximal weights.
	d.Groups = make([]Group, 5000)
	for i := range d.Groups {
		d.Groups[i] = Group{Weight: MaxWeight, Endpoints: []Endpoint{{"x", uint16(i)}}}
	}
	if g, _, ok := d.Pick(math.MaxUint64); !ok || g != 4999 {
		t.Errorf("big sums: %d %v", g, ok)
	}
}

// docs/routing.md, "Outcomes": weighted random, weight 0 never chosen, uniform inside a
// group. The distribution stays within tight bounds of the weights.
func TestPickDistribution(t *testing.T) {
	tb := mustParse(t, `{"version":2,"vhosts":{"h":{"routes":[
		{"path_match":{"type":"Exact","value":"/e"},"backends":[
			{"address":"10.0.0.1","port":80,"weight":70},
			{"address":"10.0.0.2","port":80,"weight":0},
			{"address":"10.0.0.3","port":80,"weight":30}]},
		{"path_match":{"type":"Exact","value":"/g"},"backend_groups":[
			{"weight":90,"backends":[{"address":"10.0.1.1","port":80},{"address":"10.0.1.2","port":80},{"address":"10.0.1.3","port":80}]},
			{"weight":0,"backends":[{"address":"10.0.2.1","port":80}]},
			{"backends":[{"address":"10.0.3.1","port":80}]}]}]}}}`)
	const n = 200000
	rng := rand.New(rand.NewPCG(7, 8))
	count := func(url string) map[string]int {
		d := decide(tb, req("h", "GET", url))
		got := map[string]int{}
		for i := 0; i < n; i++ {
			g, e, ok := d.Pick(rng.Uint64())
			if !ok {
				t.Fatalf("%s: pick failed", url)
			}
			got[d.Groups[g].Endpoints[e].Address]++
		}
		return got
	}
	check := func(url string, got map[string]int, want map[string]float64) {
		for addr, c := range got {
			if _, ok := want[addr]; !ok {
				t.Errorf("%s: %s picked %d times, never expected", url, addr, c)
			}
		}
		for addr, p := range want {
			f := float64(got[addr]) / n
			// 5 standard deviations of a binomial proportion.
			tol := 5 * math.Sqrt(p*(1-p)/n)
			if math.Abs(f-p) > tol {
				t.Errorf("%s: %s share %.4f, want %.4f ± %.4f", url, addr, f, p, tol)
			}
		}
	}
	check("/e", count("/e"), map[string]float64{"10.0.0.1": 0.7, "10.0.0.3": 0.3})
	check("/g", count("/g"), map[string]float64{
		"10.0.1.1": 90.0 / 190 / 3, "10.0.1.2": 90.0 / 190 / 3, "10.0.1.3": 90.0 / 190 / 3,
		"10.0.3.1": 100.0 / 190,
	})
}

// PickAmong never picks an endpoint it leaves out, leaving nothing out is
// Pick, and leaving everything out picks nothing.
func TestPickAmong(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 80))
	for i := 0; i < 2000; i++ {
		var d Decision
		nflat := 0
		for g := rng.IntN(5); g >= 0; g-- {
			grp := Group{Weight: rng.Uint64N(4)}
			for e := rng.IntN(4); e > 0; e-- {
				grp.Endpoints = append(grp.Endpoints, Endpoint{"a", uint16(nflat)})
				nflat++
			}
			d.Groups = append(d.Groups, grp)
		}
		out := map[int]bool{}
		for f := 0; f < nflat; f++ {
			out[f] = rng.IntN(2) == 0
		}
		u := rng.Uint64()
		g, e, ok := d.PickAmong(u, func(f int) bool { return out[f] })
		if ok && out[int(d.Groups[g].Endpoints[e].Port)] {
			t.Fatalf("%+v skip %v: picked %d/%d, which is left out", d.Groups, out, g, e)
		}
		anyIn := false
		for gi := range d.Groups {
			for _, ep := range d.Groups[gi].Endpoints {
				if !out[int(ep.Port)] && d.Groups[gi].Weight > 0 {
					anyIn = true
				}
			}
		}
		if ok != anyIn {
			t.Fatalf("%+v skip %v: ok %v, want %v", d.Groups, out, ok, anyIn)
		}
		g1, e1, ok1 := d.PickAmong(u, func(int) bool { return false })
		g2, e2, ok2 := d.Pick(u)
		if g1 != g2 || e1 != e2 || ok1 != ok2 {
			t.Fatalf("nothing left out: %d %d %v, Pick: %d %d %v", g1, e1, ok1, g2, e2, ok2)
		}
		if _, _, ok := d.PickAmong(u, func(int) bool { return true }); ok {
			t.Fatalf("everything left out: picked")
		}
	}
}

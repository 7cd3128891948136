package route

import (
	"math/rand/v2"
	"testing"
)

// Select against its rule, on random groups, health and tried sets: a
// sick endpoint only in panic, panic exactly below the threshold, an
// untried endpoint whenever one is allowed, nothing only when nothing
// is allowed; and with health absent it is PickAmong.
func TestSelectRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for it := 0; it < 20000; it++ {
		var d Decision
		n := 0
		for g := 0; g < 1+rng.IntN(4); g++ {
			grp := Group{Weight: 1 + rng.Uint64N(100)}
			for e := 0; e < 1+rng.IntN(4); e++ {
				grp.Endpoints = append(grp.Endpoints, Endpoint{Address: "a", Port: uint16(n + 1)})
				n++
			}
			d.Groups = append(d.Groups, grp)
		}
		sick, tried := make([]bool, n), make([]bool, n)
		healthy, untriedAllowed := 0, 0
		for f := range sick {
			sick[f] = rng.IntN(2) == 0
			tried[f] = rng.IntN(3) == 0
			if !sick[f] {
				healthy++
			}
		}
		pn := rng.IntN(101)
		panic := healthy*100 < pn*n
		for f := range sick {
			if (panic || !sick[f]) && !tried[f] {
				untriedAllowed++
			}
		}
		u := rng.Uint64()
		g, e, p, ok := d.Select(u, func(f int) bool { return sick[f] }, func(f int) bool { return tried[f] }, pn)
		if p != panic {
			t.Fatalf("panic %v, want %v (healthy %d of %d, pn %d)", p, panic, healthy, n, pn)
		}
		if !ok {
			if panic || healthy > 0 {
				t.Fatalf("nothing picked with %d healthy, panic %v", healthy, panic)
			}
			continue
		}
		f := 0
		for i := 0; i < g; i++ {
			f += len(d.Groups[i].Endpoints)
		}
		f += e
		if sick[f] && !panic {
			t.Fatalf("picked sick %d outside panic", f)
		}
		if tried[f] && untriedAllowed > 0 {
			t.Fatalf("picked tried %d with %d untried allowed", f, untriedAllowed)
		}
		// no health, no tried: Pick
		g1, e1, _, _ := d.Select(u, nil, nil, pn)
		g2, e2, _ := d.Pick(u)
		if g1 != g2 || e1 != e2 {
			t.Fatalf("Select without health %d/%d, Pick %d/%d", g1, e1, g2, e2)
		}
	}
}

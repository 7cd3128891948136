package route

import "math/bits"

// Pick makes the weighted choice among d.Groups from u, a uniformly random
// 64-bit number: a group by weight (64-bit sums, weight 0 never chosen),
// then an endpoint uniformly inside it. ok is false when nothing can be
// picked.
//
// The group is chosen by the high word of u × total (a point uniform in
// [0, total)); the point's position inside the group's share, refined by
// the low word, chooses the endpoint, so one random number serves both.
//
// This is the one weighted-selection algorithm of ghost: vmod-shim/pick.c
// does the same per request (ghostd sends the groups, not a pick), and is
// tested against the vectors TestPickVectors keeps in
// testdata/pick_vectors.txt. Change both, and regenerate the vectors.
func (d *Decision) Pick(u uint64) (group, endpoint int, ok bool) {
	return d.PickAmong(u, nil)
}

// PickAmong is Pick among the endpoints skip does not leave out; skip is
// called with an endpoint's flat index (its position counting across the
// groups in order). A group's weight counts only while at least one of
// its endpoints is left in (weights renormalise over the rest), and inside
// the chosen group the endpoint is uniform among those left in. With skip
// nil, or leaving nothing out, it is exactly Pick.
//
// The shim uses it per fetch: a retry leaves out the endpoints the fetch
// already tried, and selection leaves out unhealthy ones
// (vmod-shim/pick.c ghost_pick_if, same vectors).
func (d *Decision) PickAmong(u uint64, skip func(flat int) bool) (group, endpoint int, ok bool) {
	var total uint64
	flat := 0
	for i := range d.Groups {
		g := &d.Groups[i]
		if kept(g, flat, skip) > 0 {
			total += g.Weight
		}
		flat += len(g.Endpoints)
	}
	if total == 0 {
		return 0, 0, false
	}
	point, frac := bits.Mul64(u, total)
	flat = 0
	for i := range d.Groups {
		g := &d.Groups[i]
		n := uint64(kept(g, flat, skip))
		if n == 0 || g.Weight == 0 {
			flat += len(g.Endpoints)
			continue
		}
		if point < g.Weight {
			// Endpoint = floor(n × (point + frac/2⁶⁴) / weight): the
			// position inside the group's share, scaled to the n
			// endpoints left in.
			fh, _ := bits.Mul64(frac, n)
			hi, lo := bits.Mul64(point, n)
			lo, carry := bits.Add64(lo, fh, 0)
			hi += carry
			e, _ := bits.Div64(hi, lo, g.Weight)
			return i, nthKept(g, flat, skip, int(e)), true
		}
		point -= g.Weight
		flat += len(g.Endpoints)
	}
	// Unreachable: point < total.
	return 0, 0, false
}

// kept counts the endpoints of g (whose first has flat index base) that
// skip leaves in.
func kept(g *Group, base int, skip func(int) bool) int {
	if skip == nil {
		return len(g.Endpoints)
	}
	n := 0
	for e := range g.Endpoints {
		if !skip(base + e) {
			n++
		}
	}
	return n
}

// nthKept is the index in g of the k-th (0-based) endpoint left in.
func nthKept(g *Group, base int, skip func(int) bool, k int) int {
	if skip == nil {
		return k
	}
	for e := range g.Endpoints {
		if !skip(base + e) {
			if k == 0 {
				return e
			}
			k--
		}
	}
	return len(g.Endpoints) - 1 // unreachable: k < kept
}

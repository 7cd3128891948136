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
	var total uint64
	for i := range d.Groups {
		if len(d.Groups[i].Endpoints) > 0 {
			total += d.Groups[i].Weight
		}
	}
	if total == 0 {
		return 0, 0, false
	}
	point, frac := bits.Mul64(u, total)
	for i := range d.Groups {
		g := &d.Groups[i]
		if len(g.Endpoints) == 0 || g.Weight == 0 {
			continue
		}
		if point < g.Weight {
			// Endpoint = floor(n × (point + frac/2⁶⁴) / weight): the
			// position inside the group's share, scaled to n endpoints.
			n := uint64(len(g.Endpoints))
			fh, _ := bits.Mul64(frac, n)
			hi, lo := bits.Mul64(point, n)
			lo, carry := bits.Add64(lo, fh, 0)
			hi += carry
			e, _ := bits.Div64(hi, lo, g.Weight)
			return i, int(e), true
		}
		point -= g.Weight
	}
	// Unreachable: point < total.
	return 0, 0, false
}

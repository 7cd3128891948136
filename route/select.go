package route

// Select is the pick the data plane makes per fetch when a route has
// endpoint health (Decision.Health or Decision.Outlier): PickAmong with
// the unhealthy endpoints left out, the panic rule, and a retry's
// preference for endpoints not tried yet. vmod-shim/pick.c
// (ghost_select) does the same; both are checked against
// testdata/select_vectors.txt (TestSelectVectors).
//
// sick says which endpoints (by flat index, as PickAmong) are unhealthy:
// their probe says sick or they are ejected; nil: none. tried says which
// this fetch already tried; nil: none. panicPct is the answer's Panic.
//
//  1. Panic: when fewer than panicPct percent of the endpoints are
//     healthy (healthy × 100 < panicPct × all), health is ignored: every
//     endpoint may be picked (Envoy's healthy_panic_threshold). Else only
//     the healthy ones may.
//  2. Among those, an endpoint not tried yet when there is one; else any
//     of them.
//
// ok is false when nothing may be picked: no endpoints, or every one
// unhealthy with panicPct 0.
func (d *Decision) Select(u uint64, sick, tried func(flat int) bool, panicPct int) (group, endpoint int, panicked, ok bool) {
	allowed := sick
	if sick != nil {
		all, healthy := 0, 0
		for i := range d.Groups {
			for range d.Groups[i].Endpoints {
				if !sick(all) {
					healthy++
				}
				all++
			}
		}
		if healthy*100 < panicPct*all {
			allowed, panicked = nil, true
		}
	}
	if tried != nil {
		skip := tried
		if allowed != nil {
			skip = func(f int) bool { return allowed(f) || tried(f) }
		}
		if g, e, ok := d.PickAmong(u, skip); ok {
			return g, e, panicked, true
		}
	}
	group, endpoint, ok = d.PickAmong(u, allowed)
	return group, endpoint, panicked, ok
}

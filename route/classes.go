package route

import "slices"

// Value classes: where every match of a vhost on a header (or a query
// parameter) is Exact, a decision depends on that header's value only
// through which of the matched values it equals, if any. The vhost declares
// those values (Deps.HeaderValues, Deps.QueryValues), so that a data plane
// can key reused decisions on "the i-th value, or none of them" instead of
// the raw value: a Cookie or User-Agent that differs per client then costs
// no new decision. A header with a RegularExpression match keeps its raw
// value as an input (nil in HeaderValues), and so does the whole query when
// any query match is a RegularExpression (QueryValues nil).

// ParamValues are the values of a query parameter the routes of a vhost
// compare with (Exact matches only).
type ParamValues struct {
	Name   string
	Values []string // sorted, distinct
}

// valueClasses fills d.HeaderValues (parallel to d.Headers) and
// d.QueryValues from the vhost's routes.
func valueClasses(routes []*croute, d *Deps) {
	if len(d.Headers) > 0 {
		vals := make([][]string, len(d.Headers))
		regex := make([]bool, len(d.Headers))
		for _, r := range routes {
			for _, h := range r.headers {
				i, _ := slices.BinarySearch(d.Headers, h.name)
				if h.re != nil {
					regex[i] = true
				} else {
					vals[i] = append(vals[i], h.value)
				}
			}
		}
		some := false
		for i := range vals {
			if regex[i] {
				vals[i] = nil
				continue
			}
			slices.Sort(vals[i])
			vals[i] = slices.Clip(slices.Compact(vals[i]))
			some = true
		}
		if some {
			d.HeaderValues = vals
		}
	}
	if !d.Query {
		return
	}
	var qv []ParamValues
	for _, r := range routes {
		for _, q := range r.query {
			if q.re != nil {
				return // the raw query stays an input
			}
			i := slices.IndexFunc(qv, func(p ParamValues) bool { return p.Name == q.name })
			if i < 0 {
				qv = append(qv, ParamValues{Name: q.name})
				i = len(qv) - 1
			}
			qv[i].Values = append(qv[i].Values, q.value)
		}
	}
	slices.SortFunc(qv, func(a, b ParamValues) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	for i := range qv {
		slices.Sort(qv[i].Values)
		qv[i].Values = slices.Clip(slices.Compact(qv[i].Values))
	}
	d.QueryValues = qv
}

package route

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The value-class oracle: two requests whose headers and query parameters
// fall in the same classes (the same declared value, or none of them)
// decide alike.

func classOf(vals []string, v string, ok bool) int {
	if !ok {
		return -1
	}
	return slices.Index(vals, v)
}

func joined(hs []Header, name string) (string, bool) {
	var parts []string
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			parts = append(parts, h.Value)
		}
	}
	return strings.Join(parts, ","), parts != nil
}

func TestValueClassOracle(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 4))
	vals := []string{"a", "b", "a,b", ""}
	pick := func() string { return vals[rng.IntN(len(vals))] }
	checked := 0
	for n := 0; n < 300; n++ {
		var routes []string
		regexH, regexQ := rng.IntN(4) == 0, rng.IntN(4) == 0
		for i := 0; i < 1+rng.IntN(6); i++ {
			var conds []string
			if rng.IntN(2) == 0 {
				conds = append(conds, fmt.Sprintf(`"headers":[{"name":"X-A","value":%q}]`, pick()))
			} else if regexH && rng.IntN(2) == 0 {
				conds = append(conds, `"headers":[{"name":"x-a","value":"^a","type":"RegularExpression"}]`)
			}
			if rng.IntN(2) == 0 {
				conds = append(conds, fmt.Sprintf(`"query_params":[{"name":"q","value":%q},{"name":"r","value":%q}]`, pick(), pick()))
			} else if regexQ && rng.IntN(2) == 0 {
				conds = append(conds, `"query_params":[{"name":"q","value":"b$","type":"RegularExpression"}]`)
			}
			routes = append(routes, "{"+strings.Join(append(conds, be(i)), ",")+"}")
		}
		tb := mustParse(t, file(map[string][]string{"h": routes}))
		for k := 0; k < 40; k++ {
			mk := func() *Request {
				r := req("h", "GET", fmt.Sprintf("/p?q=%s&r=%s&q=z", pick(), pick()))
				for j := rng.IntN(3); j > 0; j-- {
					r.Headers = append(r.Headers, Header{[]string{"x-a", "X-A"}[rng.IntN(2)], pick()})
				}
				return r
			}
			r1, r2 := mk(), mk()
			d1, d2 := decide(tb, r1), decide(tb, r2)
			dp := &d1.Deps
			same := true
			for i, h := range dp.Headers {
				v1, ok1 := joined(r1.Headers, h)
				v2, ok2 := joined(r2.Headers, h)
				if dp.HeaderValues == nil || dp.HeaderValues[i] == nil {
					same = same && v1 == v2 && ok1 == ok2
				} else {
					c1, c2 := classOf(dp.HeaderValues[i], v1, ok1), classOf(dp.HeaderValues[i], v2, ok2)
					same = same && c1 == c2
				}
			}
			if dp.Query {
				if dp.QueryValues == nil {
					same = same && r1.URL == r2.URL
				}
				_, q1, _ := splitURL(r1.URL)
				_, q2, _ := splitURL(r2.URL)
				for _, p := range dp.QueryValues {
					v1, ok1 := queryValue(q1, p.Name)
					v2, ok2 := queryValue(q2, p.Name)
					same = same && classOf(p.Values, v1, ok1) == classOf(p.Values, v2, ok2)
				}
			}
			if !same {
				continue
			}
			checked++
			if d1.RouteIndex != d2.RouteIndex {
				t.Fatalf("%v\n%+v and %+v are in the same classes (%v, %v) but route to %d and %d",
					routes, r1, r2, dp.HeaderValues, dp.QueryValues, d1.RouteIndex, d2.RouteIndex)
			}
		}
	}
	if checked < 2000 {
		t.Errorf("only %d request pairs in the same classes", checked)
	}
}

func TestValueClassesDeclared(t *testing.T) {
	tb := mustParse(t, file(map[string][]string{"h": {
		`{"headers":[{"name":"X-Env","value":"canary"}],` + be(1) + `}`,
		`{"headers":[{"name":"x-env","value":"beta"},{"name":"ua","value":"^curl","type":"RegularExpression"}],` + be(2) + `}`,
		`{"query_params":[{"name":"v","value":"2"}],` + be(3) + `}`,
	}}))
	d := decide(tb, req("h", "GET", "/"))
	if !slices.Equal(d.Deps.Headers, []string{"ua", "x-env"}) || len(d.Deps.HeaderValues) != 2 ||
		d.Deps.HeaderValues[0] != nil || !slices.Equal(d.Deps.HeaderValues[1], []string{"beta", "canary"}) {
		t.Errorf("headers %v values %q", d.Deps.Headers, d.Deps.HeaderValues)
	}
	if len(d.Deps.QueryValues) != 1 || d.Deps.QueryValues[0].Name != "v" || !slices.Equal(d.Deps.QueryValues[0].Values, []string{"2"}) {
		t.Errorf("query values %+v", d.Deps.QueryValues)
	}
}

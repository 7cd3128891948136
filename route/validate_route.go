package route

// Validation and compilation of one route's match conditions: path_match,
// method, headers, query_params and listeners (docs/routing.md).

import (
	"fmt"
	"slices"
	"strings"
)

// route validates and compiles route i of a vhost into *r.
func (b *builder) route(r *croute, c errCtx, vhostKey string, i int, rj *routeJSON) error {
	*r = croute{index: i, kind: pathAll}
	if len(rj.RouteName) > MaxNameLen {
		return c.errorf("route_name longer than %d bytes", MaxNameLen)
	}
	r.name, r.priority, r.ruleIndex = rj.RouteName, rj.Priority, rj.RuleIndex
	if pm := rj.PathMatch; pm != nil {
		typ := "PathPrefix"
		if pm.Type != nil {
			typ = *pm.Type
		}
		switch typ {
		case "Exact", "PathPrefix":
			v := "/"
			if pm.Value != nil {
				v = *pm.Value
			} else if typ == "Exact" {
				return c.errorf("path_match.value is required for Exact")
			}
			if err := checkPath("path", v, false); err != nil {
				return c.errorf("%s", err)
			}
			r.value = v
			if typ == "Exact" {
				r.kind = pathExact
			} else {
				r.prefix = strings.TrimSuffix(v, "/")
				if r.prefix != "" {
					r.kind = pathPrefix
				}
			}
		case "RegularExpression":
			if pm.Value == nil {
				return c.errorf("path_match.value is required for RegularExpression")
			}
			re, err := compileRegex(*pm.Value)
			if err != nil {
				return c.errorf("path_match regex %s", err)
			}
			r.kind, r.value, r.re = pathRegex, *pm.Value, re
		default:
			return c.errorf("path_match.type %q must be Exact, PathPrefix or RegularExpression", typ)
		}
	}
	if rj.Method != nil {
		if !validMethods[*rj.Method] {
			return c.errorf("method %q is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH", *rj.Method)
		}
		r.method = *rj.Method
	}
	if len(rj.Headers) > MaxMatchers {
		return c.errorf("more than %d header matchers", MaxMatchers)
	}
	for j, h := range rj.Headers {
		field := fieldIndex("headers", j)
		if h.Name == nil {
			return c.errorf("%s.name is required", field)
		}
		if err := checkHeaderName(field, *h.Name); err != nil {
			return c.errorf("%s", err)
		}
		v, re, err := matchValue(field, h.Value, h.Type)
		if err != nil {
			return c.errorf("%s", err)
		}
		n := strings.ToLower(*h.Name)
		if slices.ContainsFunc(r.headers, func(m headerMatch) bool { return m.name == n }) {
			continue // only the first matcher of a name counts
		}
		r.headers = append(r.headers, headerMatch{name: n, value: v, re: re})
	}
	if len(rj.QueryParams) > MaxMatchers {
		return c.errorf("more than %d query_params matchers", MaxMatchers)
	}
	for j, q := range rj.QueryParams {
		field := fieldIndex("query_params", j)
		if q.Name == nil || *q.Name == "" {
			return c.errorf("%s.name is required", field)
		}
		n := *q.Name
		if len(n) > MaxNameLen {
			return c.errorf("%s.name longer than %d bytes", field, MaxNameLen)
		}
		if strings.ContainsAny(n, "&=#") {
			return c.errorf("%s.name %q contains \"&\", \"=\" or \"#\"", field, n)
		}
		v, re, err := matchValue(field, q.Value, q.Type)
		if err != nil {
			return c.errorf("%s", err)
		}
		if slices.ContainsFunc(r.query, func(m queryMatch) bool { return m.name == n }) {
			continue
		}
		r.query = append(r.query, queryMatch{name: n, value: v, re: re})
	}
	for j, l := range rj.Listeners {
		if l == "" || len(l) > MaxNameLen {
			return c.errorf("listeners[%d]: name must be 1 to %d bytes", j, MaxNameLen)
		}
		if !slices.Contains(r.listeners, l) {
			r.listeners = append(r.listeners, l)
		}
	}
	if rj.Filters != nil {
		if err := r.filters(rj.Filters); err != nil {
			return c.errorf("%s", err)
		}
	}
	groups, err := b.routeBackends(rj)
	if err != nil {
		return c.errorf("%s", err)
	}
	r.groups = groups
	if rj.CachePolicy != nil {
		if r.cache, err = cachePolicy(rj.CachePolicy); err != nil {
			return c.errorf("%s", err)
		}
	}
	if err := r.resilience(rj); err != nil {
		return c.errorf("%s", err)
	}
	if r.health, err = compileHealth(rj.Health, rj.Outlier, rj.PanicThreshold); err != nil {
		return c.errorf("%s", err)
	}
	if err := b.affinity(r, vhostKey, rj); err != nil {
		return c.errorf("%s", err)
	}
	return nil
}

// matchValue validates a header or query matcher's value and type.
func matchValue(field string, value, typ *string) (string, *regex, error) {
	if value == nil {
		return "", nil, fmt.Errorf("%s.value is required", field)
	}
	t := "Exact"
	if typ != nil {
		t = *typ
	}
	switch t {
	case "Exact":
		if len(*value) > MaxValueLen {
			return "", nil, fmt.Errorf("%s.value longer than %d bytes", field, MaxValueLen)
		}
		return *value, nil, nil
	case "RegularExpression":
		re, err := compileRegex(*value)
		if err != nil {
			return "", nil, fmt.Errorf("%s regex %s", field, err)
		}
		return *value, re, nil
	default:
		return "", nil, fmt.Errorf("%s.type %q must be Exact or RegularExpression", field, t)
	}
}

package route

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Warnings lists what is valid in a table but most likely a mistake, for
// ghostd check: routes that can never be chosen because an identical
// route comes before them in precedence order, routes (or
// default_backends) with no usable backend, which answer 500 by design,
// and retry.attempts above varnishd's default max_retries.
// Vhosts are in key order, routes in file order.
func (t *Table) Warnings() []string {
	if t == nil {
		return nil
	}
	var out []string
	for _, vh := range t.vhosts {
		var shadowed []string
		first := map[string]*croute{}
		for _, rt := range vh.ordered {
			if rt.index == RouteDefault {
				continue
			}
			k := rt.matchKey()
			if w, dup := first[k]; dup {
				shadowed = append(shadowed, fmt.Sprintf("%d\x00vhost %q %s: never chosen: %s has the same matches and comes first in precedence order",
					rt.index, vh.key, rt.describe(), w.describe()))
				continue
			}
			first[k] = rt
		}
		var empty []string
		for i := range vh.routes {
			rt := &vh.routes[i]
			if rt.redirect == nil && len(rt.groups) == 0 {
				empty = append(empty, fmt.Sprintf("%d\x00vhost %q %s: no usable backends (none listed, or every weight 0): its requests get 500",
					rt.index, vh.key, rt.describe()))
			}
			if rt.retry != nil && rt.retry.Attempts > VarnishMaxRetries {
				empty = append(empty, fmt.Sprintf("%d\x00vhost %q %s: retry.attempts %d is more than varnishd's default max_retries (%d): raise that parameter (varnishd -p max_retries=%d) or the extra retries never happen",
					rt.index, vh.key, rt.describe(), rt.retry.Attempts, VarnishMaxRetries, rt.retry.Attempts))
			}
		}
		slices.SortFunc(shadowed, byIndex)
		slices.SortFunc(empty, byIndex)
		for _, w := range append(shadowed, empty...) {
			_, msg, _ := strings.Cut(w, "\x00")
			out = append(out, msg)
		}
		if vh.def != nil && len(vh.def.groups) == 0 {
			out = append(out, fmt.Sprintf("vhost %q default_backends: no usable backends (every weight 0): unmatched requests get 500", vh.key))
		}
	}
	return out
}

// byIndex orders "index\x00message" strings by index.
func byIndex(a, b string) int {
	ai, _, _ := strings.Cut(a, "\x00")
	bi, _, _ := strings.Cut(b, "\x00")
	x, _ := strconv.Atoi(ai)
	y, _ := strconv.Atoi(bi)
	return x - y
}

// describe names a route in a warning: "route 3" or `route 3 ("name")`.
func (rt *croute) describe() string {
	if rt.name != "" {
		return fmt.Sprintf("route %d (%q)", rt.index, rt.name)
	}
	return "route " + strconv.Itoa(rt.index)
}

// matchKey is a canonical form of every condition of the route: two routes
// of one vhost with the same key match exactly the same requests.
func (rt *croute) matchKey() string {
	var b strings.Builder
	path := rt.value
	switch rt.kind {
	case pathPrefix:
		path = rt.prefix // "/a" and "/a/" match the same paths
	case pathAll:
		path = ""
	}
	fmt.Fprintf(&b, "%d %q %q", rt.kind, path, rt.method)
	var hs, qs []string
	for _, h := range rt.headers {
		hs = append(hs, fmt.Sprintf("%q %t %q", h.name, h.re != nil, h.value))
	}
	for _, q := range rt.query {
		qs = append(qs, fmt.Sprintf("%q %t %q", q.name, q.re != nil, q.value))
	}
	ls := slices.Clone(rt.listeners)
	slices.Sort(hs)
	slices.Sort(qs)
	slices.Sort(ls)
	ls = slices.Compact(ls)
	fmt.Fprintf(&b, " h%q q%q l%q", hs, qs, ls)
	return b.String()
}

package route

import (
	"slices"
	"sort"
)

// computeDeps says which request inputs a decision in this vhost can depend
// on besides the Host header.
func computeDeps(routes []*croute) Deps {
	d := Deps{Path: true}
	var hs []string
	for _, r := range routes {
		// a cors route answers OPTIONS preflights itself
		if r.method != "" || r.cors != nil {
			d.Method = true
		}
		if len(r.query) > 0 {
			d.Query = true
		}
		if len(r.listeners) > 0 {
			d.Socket = true
		}
		if r.redirect != nil && r.redirect.scheme == "" {
			d.HTTPS = true
		}
		for _, h := range r.headers {
			hs = append(hs, h.name)
		}
	}
	if len(hs) > 0 {
		sort.Strings(hs)
		d.Headers = slices.Compact(hs)
	}
	cacheDeps(routes, &d)
	return d
}

package route

import (
	"slices"
	"sort"
	"strings"
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

// FetchPlain reports whether no decision of the table reads a request
// header varnishd rewrites or drops on a fetch (fetchRewritten, the
// recorded headers of ghost.prepare()): no route matches one, no cache_policy
// bypasses on one, no load_balancer hashes one and no
// session_persistence of type Header names one. Then the backend request
// of any fetch (pass, miss or background refresh) routes exactly like the
// client's request, as far as headers go, and the data plane records
// none (ghostd publishes the word fetch_gen in its state file; see
// docs/protocol.md). The method and the listener are not covered: the
// shim handles them itself.
func (t *Table) FetchPlain() bool {
	for _, vh := range t.vhosts {
		if !vhostFetchPlain(vh) {
			return false
		}
	}
	return true
}

func vhostFetchPlain(vh *vhost) bool {
	for _, l := range [][]string{vh.deps.Headers, vh.deps.CacheHeaders} {
		for _, h := range l {
			if fetchRewritten[h] {
				return false
			}
		}
	}
	for _, r := range vh.ordered {
		if r.balancer != nil {
			for _, k := range r.balancer.Keys {
				if k.Kind == KeyHeader && fetchRewritten[k.Name] {
					return false
				}
			}
		}
		if s := r.session; s != nil && s.Type == SessionHeader &&
			fetchRewritten[strings.ToLower(s.Name)] {
			return false
		}
	}
	return true
}

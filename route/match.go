package route

import (
	"strings"
)

// Decide computes the routing decision for r into d. d is overwritten; it
// may be reused between calls to avoid allocations.
func (t *Table) Decide(r *Request, d *Decision) {
	*d = Decision{Outcome: OutcomeNotFound, Status: 404, RouteIndex: RouteNone, Scope: ScopeExact,
		Reason: reasonNotFound, Body: bodyNotFound}
	if t == nil || r == nil {
		return
	}
	if t.passDefault {
		d.Cache = CachePass
	}
	host, port := splitHostPort(r.Host)
	vh := t.lookup(host)
	if vh == nil {
		return
	}
	d.Vhost = vh.key
	d.Deps = vh.deps

	path, query, rawQuery := splitURL(r.URL)
	d.Scope = vh.scope.of(path)
	m := matcher{r: r, path: path, query: query}
	rt := vh.match(&m)
	if rt == nil {
		return
	}
	d.RouteIndex = rt.index
	d.RouteName = rt.name
	d.Cache = t.cacheMode(rt, r)
	d.Policy = rt.cache
	if rt.session != nil {
		// a session's responses are its own: never from or into the
		// cache (docs/configuration.md, "session_persistence")
		d.Cache = CachePass
	}
	if rt.cors != nil {
		d.CORS = rt.cors.forMethod(r.Method)
	}
	if rt.redirect != nil {
		d.Outcome = OutcomeRedirect
		d.Status = rt.redirect.status
		d.Reason = redirectReason(d.Status)
		d.Body = ""
		d.RedirectBase = rt.redirect.base(r, host, port, path, rt)
		d.Query = rawQuery
		d.PathEdit = rt.redirect.edit
		return
	}
	if len(rt.groups) == 0 {
		d.Outcome = OutcomeNoBackends
		d.Status = 500
		d.Reason = reasonNoBackends
		d.Body = bodyNoBackends
		return
	}
	d.Outcome = OutcomeBackend
	d.Status = 200
	d.Reason = reasonOK
	d.Body = ""
	d.Uncacheable = rt.uncacheable
	d.Groups = rt.groups
	if h := &rt.health; h.health != nil || h.outlier != nil {
		d.Health, d.Outlier, d.Panic = h.health, h.outlier, DefaultPanicThreshold
		if h.hasPanic {
			d.Panic = h.panic
		}
	}
	d.Balancer = rt.balancer
	d.Session = rt.session
	d.RequestHeaders = rt.reqOps
	d.ResponseHeaders = rt.respOps
	d.Timeouts = rt.timeouts
	d.Retry = rt.retry
	if rw := rt.rewrite; rw != nil {
		d.NewHost = rw.hostname
		switch rw.mod {
		case modFull:
			d.NewPath = rw.value
		case modPrefix:
			d.NewPath = replacePrefix(path, rt.prefix, rw.value)
			d.PathEdit = rw.edit
		}
	}
}

// splitHostPort splits a Host header value into host and port text. An
// IPv6 literal keeps its brackets ("[::1]:80" → "[::1]", "80"); a value
// with several colons and no brackets is taken as a bare IPv6 address.
func splitHostPort(h string) (host, port string) {
	if strings.HasPrefix(h, "[") {
		i := strings.IndexByte(h, ']')
		if i < 0 {
			return h, ""
		}
		host, rest := h[:i+1], h[i+1:]
		if strings.HasPrefix(rest, ":") {
			return host, rest[1:]
		}
		return host, ""
	}
	i := strings.IndexByte(h, ':')
	if i < 0 {
		return h, ""
	}
	if strings.IndexByte(h[i+1:], ':') >= 0 {
		return h, "" // bare IPv6
	}
	return h[:i], h[i+1:]
}

// splitURL splits a request target into its path (empty → "/"), the query
// after "?" and the raw query including "?" ("" when there is no "?").
func splitURL(u string) (path, query, raw string) {
	path = u
	if i := strings.IndexByte(u, '?'); i >= 0 {
		path, query, raw = u[:i], u[i+1:], u[i:]
	}
	if path == "" {
		path = "/"
	}
	return path, query, raw
}

// lookup selects the one vhost for a host (port already stripped): exact,
// else the longest matching wildcard suffix, else "*". The host is
// lower-cased and one trailing dot dropped without allocating when it is
// short.
func (t *Table) lookup(host string) *vhost {
	host = strings.TrimSuffix(host, ".")
	var buf [256]byte
	var h []byte
	lower := true
	for i := 0; i < len(host); i++ {
		if c := host[i]; 'A' <= c && c <= 'Z' {
			lower = false
			break
		}
	}
	if lower {
		return selectVhost(t, host)
	}
	if len(host) <= len(buf) {
		h = buf[:len(host)]
	} else {
		h = make([]byte, len(host))
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h[i] = c
	}
	return selectVhost(t, h)
}

// selectVhost selects the vhost of a lower-case host: the exact key, else
// the wildcard with the longest suffix, else "*".
func selectVhost[K hostKey](t *Table, host K) *vhost {
	if vh := getHost(t.exact, host); vh != nil {
		return vh
	}
	if t.wild.size() > 0 {
		for i := 1; i < len(host); i++ {
			if host[i] == '.' {
				if vh := getHost(t.wild, host[i:]); vh != nil {
					return vh
				}
			}
		}
	}
	return t.catchAll
}

// matcher holds one request's parsed inputs while routes are tried.
type matcher struct {
	r     *Request
	path  string
	query string // after "?", without it
}

// match returns the winning route of the vhost, or nil. Buckets are
// visited in precedence order (precedence.go): the Exact bucket of the
// path; the PathPrefix buckets whose key is a segment prefix of the path,
// longest first; the regexes; the PathPrefix "/" and no-path routes; then
// default_backends.
// Inside a bucket the first route whose conditions hold wins.
func (vh *vhost) match(m *matcher) *croute {
	path := m.path
	if vh.exactM != nil {
		if i, ok := vh.exactM[path]; ok {
			_, lo, hi := vh.ent(i)
			if rt := vh.first(lo, hi, m); rt != nil {
				return rt
			}
		}
	} else {
		for i := int32(0); i < vh.nExact; i++ {
			if vh.entKeyLen(i) != len(path) {
				continue
			}
			if k, lo, hi := vh.ent(i); k == path {
				if rt := vh.first(lo, hi, m); rt != nil {
					return rt
				}
				break
			}
		}
	}
	if vh.prefM != nil {
		if len(path) <= vh.maxPrefix {
			if i, ok := vh.prefM[path]; ok {
				_, lo, hi := vh.ent(i)
				if rt := vh.first(lo, hi, m); rt != nil {
					return rt
				}
			}
		}
		// Segment prefixes: path[:i] where path[i] == '/', longest first.
		for i := min(len(path)-1, vh.maxPrefix); i > 0; i-- {
			if path[i] != '/' {
				continue
			}
			if j, ok := vh.prefM[path[:i]]; ok {
				_, lo, hi := vh.ent(j)
				if rt := vh.first(lo, hi, m); rt != nil {
					return rt
				}
			}
		}
	} else {
		// Keys are sorted longest first, so the first bucket that matches
		// and has a route whose conditions hold wins.
		for i := vh.nExact; i < vh.nExact+vh.nPrefix; i++ {
			n := vh.entKeyLen(i)
			if n > len(path) || (n < len(path) && path[n] != '/') {
				continue
			}
			if k, lo, hi := vh.ent(i); path[:n] == k {
				if rt := vh.first(lo, hi, m); rt != nil {
					return rt
				}
			}
		}
	}
	for i := vh.regex.lo; i < vh.regex.hi; i++ {
		rt := &vh.routes[i]
		if rt.preconds(m) && rt.re.MatchString(path) && rt.conds(m) {
			return rt
		}
	}
	if rt := vh.first(vh.rest.lo, vh.rest.hi, m); rt != nil {
		return rt
	}
	return vh.def
}

// first returns the first route of routes[lo:hi] whose conditions hold.
func (vh *vhost) first(lo, hi int32, m *matcher) *croute {
	for i := lo; i < hi; i++ {
		if rt := &vh.routes[i]; rt.conds(m) {
			return rt
		}
	}
	return nil
}

// pathMatches reports whether the route's path condition holds (used by
// the reference matcher in tests; match() encodes it in its index walk).
func (rt *croute) pathMatches(path string) bool {
	switch rt.kind {
	case pathExact:
		return path == rt.value
	case pathPrefix:
		return path == rt.prefix || (strings.HasPrefix(path, rt.prefix) && path[len(rt.prefix)] == '/')
	case pathRegex:
		return rt.re.MatchString(path)
	}
	return true
}

// preconds checks the cheap conditions (method) before a regex runs.
func (rt *croute) preconds(m *matcher) bool {
	return rt.method == "" || rt.method == m.r.Method
}

// conds checks every condition but the path.
func (rt *croute) conds(m *matcher) bool {
	if rt.method != "" && rt.method != m.r.Method {
		return false
	}
	if len(rt.listeners) > 0 {
		ok := false
		for _, l := range rt.listeners {
			if l == m.r.Socket {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range rt.headers {
		if !rt.headers[i].matches(m.r.Headers) {
			return false
		}
	}
	for i := range rt.query {
		if !rt.query[i].matches(m.query) {
			return false
		}
	}
	return true
}

// equalFoldASCII compares a header name with a lower-case name.
func equalFoldASCII(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// matches checks the header against the request's lines of that name,
// joined with "," in order. A missing header never matches.
func (hm *headerMatch) matches(hs []Header) bool {
	n, first := 0, -1
	for i := range hs {
		if equalFoldASCII(hs[i].Name, hm.name) {
			if n == 0 {
				first = i
			}
			n++
		}
	}
	if n == 0 {
		return false
	}
	if hm.re != nil {
		if n == 1 {
			return hm.re.MatchString(hs[first].Value)
		}
		var b strings.Builder
		k := 0
		for i := first; i < len(hs); i++ {
			if equalFoldASCII(hs[i].Name, hm.name) {
				if k > 0 {
					b.WriteByte(',')
				}
				b.WriteString(hs[i].Value)
				k++
			}
		}
		return hm.re.MatchString(b.String())
	}
	if n == 1 {
		return hs[first].Value == hm.value
	}
	// Compare the joined value piecewise, without building it.
	want := hm.value
	k := 0
	for i := first; i < len(hs); i++ {
		if !equalFoldASCII(hs[i].Name, hm.name) {
			continue
		}
		if k > 0 {
			if want == "" || want[0] != ',' {
				return false
			}
			want = want[1:]
		}
		v := hs[i].Value
		if !strings.HasPrefix(want, v) {
			return false
		}
		want = want[len(v):]
		k++
	}
	return want == ""
}

// queryValue returns the value of the first "name=value" pair of the query
// whose name is name. Pairs without "=" have no name and are skipped.
func queryValue(q, name string) (string, bool) {
	for q != "" {
		pair := q
		if i := strings.IndexByte(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			q = ""
		}
		eq := strings.IndexByte(pair, '=')
		if eq < 0 {
			continue
		}
		if pair[:eq] == name {
			return pair[eq+1:], true
		}
	}
	return "", false
}

func (qm *queryMatch) matches(q string) bool {
	v, ok := queryValue(q, qm.name)
	if !ok {
		return false
	}
	if qm.re != nil {
		return qm.re.MatchString(v)
	}
	return v == qm.value
}

package route

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// MaxCacheSeconds bounds every duration of a cache_policy (ten years).
const MaxCacheSeconds = 10 * 365 * 24 * 3600

// cachePolicy validates and compiles a route's "cache_policy".
func cachePolicy(cj *cachePolicyJSON) (*CachePolicy, error) {
	p := &CachePolicy{TTL: -1, Grace: -1, Keep: -1}
	secs := func(field string, v *int64) (int64, error) {
		if v == nil {
			return -1, nil
		}
		if *v < 0 {
			return 0, fmt.Errorf("cache_policy.%s: %d is negative", field, *v)
		}
		if *v > MaxCacheSeconds {
			return 0, fmt.Errorf("cache_policy.%s: %d is more than %d (ten years)", field, *v, MaxCacheSeconds)
		}
		return *v, nil
	}
	if cj.DefaultTTLSeconds != nil && cj.ForcedTTLSeconds != nil {
		return nil, fmt.Errorf("cache_policy: default_ttl_seconds and forced_ttl_seconds are mutually exclusive (set one)")
	}
	var err error
	if p.TTL, err = secs("default_ttl_seconds", cj.DefaultTTLSeconds); err != nil {
		return nil, err
	}
	if cj.ForcedTTLSeconds != nil {
		if p.TTL, err = secs("forced_ttl_seconds", cj.ForcedTTLSeconds); err != nil {
			return nil, err
		}
		p.Forced = true
	}
	if p.Grace, err = secs("grace_seconds", cj.GraceSeconds); err != nil {
		return nil, err
	}
	if p.Keep, err = secs("keep_seconds", cj.KeepSeconds); err != nil {
		return nil, err
	}
	if k := cj.CacheKey; k != nil {
		if len(k.QueryParamsInclude) > 0 && len(k.QueryParamsExclude) > 0 {
			return nil, fmt.Errorf("cache_policy.cache_key: query_params_include and query_params_exclude are mutually exclusive (set one)")
		}
		if len(k.Headers) > MaxMatchers {
			return nil, fmt.Errorf("cache_policy.cache_key.headers: more than %d names", MaxMatchers)
		}
		for j, n := range k.Headers {
			if err := checkHeaderName(fmt.Sprintf("cache_policy.cache_key.headers[%d]", j), n); err != nil {
				return nil, err
			}
			if l := strings.ToLower(n); !slices.Contains(p.KeyHeaders, l) {
				p.KeyHeaders = append(p.KeyHeaders, l)
			}
		}
		if p.QueryInclude, err = queryNames("query_params_include", k.QueryParamsInclude); err != nil {
			return nil, err
		}
		if p.QueryExclude, err = queryNames("query_params_exclude", k.QueryParamsExclude); err != nil {
			return nil, err
		}
	}
	if len(cj.BypassHeaders) > MaxMatchers {
		return nil, fmt.Errorf("cache_policy.bypass_headers: more than %d entries", MaxMatchers)
	}
	for j, b := range cj.BypassHeaders {
		field := fmt.Sprintf("cache_policy.bypass_headers[%d]", j)
		if b.Name == nil {
			return nil, fmt.Errorf("%s.name is required", field)
		}
		if err := checkHeaderName(field, *b.Name); err != nil {
			return nil, err
		}
		m := bypassMatch{name: strings.ToLower(*b.Name)}
		if b.ValueRegex != nil {
			if m.re, err = compileRegex(*b.ValueRegex); err != nil {
				return nil, fmt.Errorf("%s.value_regex %s", field, err)
			}
		}
		p.bypass = append(p.bypass, m)
	}
	return p, nil
}

// queryNames validates a cache_key list of query parameter names; the
// result is sorted and without repeats.
func queryNames(field string, names []string) ([]string, error) {
	if len(names) > MaxMatchers {
		return nil, fmt.Errorf("cache_policy.cache_key.%s: more than %d names", field, MaxMatchers)
	}
	var out []string
	for j, n := range names {
		if n == "" || len(n) > MaxNameLen {
			return nil, fmt.Errorf("cache_policy.cache_key.%s[%d]: name must be 1 to %d bytes", field, j, MaxNameLen)
		}
		if strings.ContainsAny(n, "&=#? \t\r\n") {
			return nil, fmt.Errorf("cache_policy.cache_key.%s[%d]: name %q contains \"&\", \"=\", \"#\", \"?\" or white space", field, j, n)
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// cacheDeps adds to d what the cache decision of a vhost's routes reads:
// the method and the bypass headers (plus Authorization) of every route
// with a cache_policy, those not routed on already (d.Headers) in
// d.CacheHeaders.
func cacheDeps(routes []*croute, d *Deps) {
	var hs []string
	for _, r := range routes {
		if r.cache == nil {
			continue
		}
		d.Method = true
		hs = append(hs, "authorization")
		for _, b := range r.cache.bypass {
			hs = append(hs, b.name)
		}
	}
	hs = slices.DeleteFunc(hs, func(h string) bool { return slices.Contains(d.Headers, h) })
	if len(hs) > 0 {
		sort.Strings(hs)
		d.CacheHeaders = slices.Compact(hs)
	}
}

// cacheMode is the decision before the cache lookup for a request that
// selected route rt (nil: no route).
func (t *Table) cacheMode(rt *croute, r *Request) CacheMode {
	if rt == nil || rt.cache == nil {
		if t.passDefault {
			return CachePass
		}
		return CacheOrigin
	}
	if r.Method != "GET" && r.Method != "HEAD" {
		return CachePass
	}
	if hasHeader(r.Headers, "authorization") {
		return CachePass // RFC 9111 §3.5: a shared cache does not answer these
	}
	for i := range rt.cache.bypass {
		b := &rt.cache.bypass[i]
		if b.re == nil {
			if hasHeader(r.Headers, b.name) {
				return CachePass
			}
			continue
		}
		hm := headerMatch{name: b.name, re: b.re}
		if hm.matches(r.Headers) {
			return CachePass
		}
	}
	return CacheLookup
}

func hasHeader(hs []Header, lower string) bool {
	for i := range hs {
		if equalFoldASCII(hs[i].Name, lower) {
			return true
		}
	}
	return false
}

// SetCacheDefault chooses what happens to requests whose route has no
// cache_policy (and to requests no route takes): pass=false leaves them to
// Varnish's own rules (CacheOrigin), pass=true passes them (CachePass),
// as varnish/gateway does. Call it before the table is shared.
func (t *Table) SetCacheDefault(pass bool) { t.passDefault = pass }

// CacheOriginOnly reports whether every decision of the table, for any
// request, has the cache mode CacheOrigin: no route has a cache_policy
// and the cache default is origin. ghostd publishes it per generation
// (docs/protocol.md, the state file's origin_gen), so that the data plane
// can skip the client-side cache decision of every request while it
// holds: there is nothing to decide.
func (t *Table) CacheOriginOnly() bool { return !t.passDefault && t.policies == 0 }

// CacheURL is the URL under which a request for u is cached with policy
// p: the path unchanged; the query's "&"-separated parameters filtered by
// QueryInclude or QueryExclude (a parameter's name is the text before its
// first "=", compared byte for byte, without percent-decoding), then
// sorted by name with a stable sort, so that repeats of one name keep
// their order; empty parameters are dropped and a query left empty loses
// its "?". Without include/exclude the URL is returned unchanged. The
// VMOD applies the same rule (ghost.hash()); this function is its
// reference.
func CacheURL(p *CachePolicy, u string) string {
	if p == nil || (len(p.QueryInclude) == 0 && len(p.QueryExclude) == 0) {
		return u
	}
	q := strings.IndexByte(u, '?')
	if q < 0 {
		return u
	}
	type param struct{ name, text string }
	var kept []param
	for _, s := range strings.Split(u[q+1:], "&") {
		if s == "" {
			continue
		}
		name := s
		if i := strings.IndexByte(s, '='); i >= 0 {
			name = s[:i]
		}
		in := slices.Contains(p.QueryInclude, name)
		if len(p.QueryInclude) > 0 && !in || slices.Contains(p.QueryExclude, name) {
			continue
		}
		kept = append(kept, param{name, s})
	}
	slices.SortStableFunc(kept, func(a, b param) int { return strings.Compare(a.name, b.name) })
	var b strings.Builder
	b.WriteString(u[:q])
	for i, k := range kept {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(k.text)
	}
	return b.String()
}

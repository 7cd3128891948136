package route

// MaxAnswer bounds, in bytes, what one decision of a route may carry to
// varnishd besides the request's own path: vhost key, route name, the
// vhost's deps (routed header names, the Exact values they are compared
// with, query values, scope lengths), the endpoints, the header filters
// and the rewrite/redirect values. The shim copies a decision into the task's
// workspace (workspace_backend, 96 KiB by default; workspace_client for
// a pipe, 64 KiB, which also holds the request) and applying the filters
// costs about as much again, so a route above this could load and then
// fail every request with a workspace overflow. 16 KiB is ~1000 IPv4 (or
// ~700 IPv6) endpoints, or 3 header filters at the 4096-byte value limit.
const MaxAnswer = 16 << 10

// mpStr is the msgpack size of a string of n bytes.
func mpStr(n int) int {
	switch {
	case n < 32:
		return 1 + n
	case n < 256:
		return 2 + n
	case n < 1<<16:
		return 3 + n
	}
	return 5 + n
}

// mpArr is the msgpack size of an array header of n elements.
func mpArr(n int) int {
	switch {
	case n < 16:
		return 1
	case n < 1<<16:
		return 3
	}
	return 5
}

// mpUint is the msgpack size of v.
func mpUint(v uint64) int {
	switch {
	case v < 128:
		return 1
	case v < 1<<8:
		return 2
	case v < 1<<16:
		return 3
	case v < 1<<32:
		return 5
	}
	return 9
}

// answerSize is an upper bound of the msgpack size of r's answer (as
// protocol encodes it), the request's path excluded. It counts the vhost-wide
// parts (deps: routed header names, value classes, scope lengths) too. Lists are counted
// with the largest array header (5 bytes).
func answerSize(vhostKey string, d *Deps, r *croute) int {
	const arr = 5
	n := 163 // keys, generation, outcome, status, route index, deps flags, cluster version (sh: 11)
	n += mpStr(len(vhostKey)) + mpStr(len(r.name)) + arr
	// reason phrase, synthetic body, why not cacheable (keys: 3 bytes)
	switch {
	case r.redirect != nil:
		n += 3 + mpStr(len(redirectReason(r.redirect.status)))
	case len(r.groups) == 0:
		n += 6 + mpStr(len(reasonNoBackends)) + mpStr(len(bodyNoBackends))
	default:
		n += 3 + mpStr(len(reasonOK))
		if r.uncacheable != "" {
			n += 3 + mpStr(len(r.uncacheable))
		}
	}
	for _, h := range d.Headers {
		n += mpStr(len(h))
	}
	// the vhost's value classes and scope lengths (decision reuse)
	n += 8 + arr
	for _, vs := range d.HeaderValues {
		n += arr
		for _, v := range vs {
			n += mpStr(len(v))
		}
	}
	n += 8 + arr
	for _, p := range d.QueryValues {
		n += 1 + mpStr(len(p.Name)) + arr
		for _, v := range p.Values {
			n += mpStr(len(v))
		}
	}
	n += 8 + arr + 9*len(d.ScopeLens)
	n += 16 + arr + 9 // scope, path edit's cut
	// the cache decision: cm, deps.c, and the route's cache_policy
	n += 4 // "cm": 0..2
	if len(d.CacheHeaders) > 0 {
		n += 2 + arr
		for _, h := range d.CacheHeaders {
			n += mpStr(len(h))
		}
	}
	if p := r.cache; p != nil {
		n += 48 + 3*arr // cp: ttl, f, gr, kp, list headers
		for _, l := range [][]string{p.KeyHeaders, p.QueryInclude, p.QueryExclude} {
			for _, s := range l {
				n += mpStr(len(s))
			}
		}
	}
	// endpoint health: hp (8 keys), ol (4 keys), pn
	if h := r.health.health; h != nil {
		n += 4 + 64 + mpStr(len(h.Path)) + 2 + mpStr(len(h.Host))
	}
	if r.health.outlier != nil {
		n += 4 + 32
	}
	if lb := r.balancer; lb != nil {
		n += 16 + arr // lb: r (ring ID), k
		for _, k := range lb.Keys {
			n += 2 + mpStr(len(k.Name))
		}
	}
	if s := r.session; s != nil {
		n += 40 + mpStr(len(s.Name)) + arr + len(s.eps)*mpStr(TokenLen) // sp: t, n, a, i, tk
	}
	if r.timeouts != nil {
		n += 32 // tm: {r: ms, b: ms}
	}
	if rt := r.retry; rt != nil {
		n += 32 + arr + 3*len(rt.Codes) // rt: {a, c: [codes], b: ms}
	}
	n += mpArr(len(r.groups))
	for _, g := range r.groups {
		n += 1 + mpUint(g.Weight) + mpArr(len(g.Endpoints)) // [weight, [endpoints]]
		for _, e := range g.Endpoints {
			n += 1 + mpStr(len(e.Address)) + 3 // [address, port]
		}
	}
	for _, ops := range []*HeaderOps{r.reqOps, r.respOps} {
		if ops == nil {
			continue
		}
		for _, list := range [][]Header{ops.Set, ops.Add} {
			n += 8 + arr
			for _, h := range list {
				n += 1 + mpStr(len(h.Name)) + mpStr(len(h.Value))
			}
		}
		n += 8 + arr
		for _, name := range ops.Remove {
			n += mpStr(len(name))
		}
	}
	if rw := r.rewrite; rw != nil {
		n += 16 + mpStr(len(rw.hostname)) + mpStr(len(rw.value))
		n += mpStr(len(rw.value)) // the path edit's replacement
	}
	if r.cors != nil {
		n += corsSize(r.cors.options)
	}
	if rd := r.redirect; rd != nil {
		// scheme://host:port + value (the request's host when unset)
		n += 8 + mpStr(len("https://")+max(len(rd.hostname), MaxHostnameLen)+6+len(rd.value))
		n += mpStr(len(rd.value)) // the path edit's replacement
	}
	return n
}

// corsSize bounds the msgpack size of "cr" (the larger, OPTIONS form).
func corsSize(c *CORS) int {
	const arr = 5
	n := 3 + 5 + 4*(3+arr) + 8 // key, map, oe ow h v, oa e
	for _, e := range c.Exact {
		n += mpStr(len(e))
	}
	for _, w := range c.Wild {
		n += 1 + mpStr(len(w.Prefix)) + mpStr(len(w.Suffix))
	}
	pairs := func(hs []Header) {
		for _, h := range hs {
			n += 1 + mpStr(len(h.Name)) + mpStr(len(h.Value))
		}
	}
	pairs(c.Headers)
	for _, v := range c.Vary {
		n += mpStr(len(v))
	}
	if p := c.Preflight; p != nil {
		n += 3 + 5 + 4 + 9 + 3 + mpStr(len(p.Reason)) + 2*(3+arr) + 8 // pf: st rs rq h em eh
		for _, r := range p.Require {
			n += mpStr(len(r))
		}
		pairs(p.Headers)
	}
	return n
}

// checkAnswers returns an error naming the first route of vh (in file
// order) whose answer could exceed MaxAnswer.
func checkAnswers(c errCtx, vh *vhost, crs []croute) error {
	for i := range crs {
		if n := answerSize(vh.key, &vh.deps, &crs[i]); n > MaxAnswer {
			rc := c
			rc.route = i
			return rc.errorf("a decision would be up to %d bytes (endpoints, filters, routed header names), more than %d", n, MaxAnswer)
		}
	}
	if vh.def != nil {
		if n := answerSize(vh.key, &vh.deps, vh.def); n > MaxAnswer {
			return c.errorf("default_backends: a decision would be up to %d bytes (endpoints, routed header names), more than %d", n, MaxAnswer)
		}
	}
	return nil
}

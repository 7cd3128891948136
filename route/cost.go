package route

// HeavyScan is the ScanCost above which a decision is expensive enough to
// be kept from starving others (ghostd runs such decisions in a lane of
// their own, see docs/reliability.md): 64 KiB of regex input is ~0.3-2 ms
// of CPU with Go's regexp, depending on the patterns.
const HeavyScan = 64 << 10

// ScanCost returns an upper bound of the bytes the regexes of r's decision
// would scan: the path once per RegularExpression path route whose method
// and required literals let it through, the values of a header once per
// RegularExpression matcher on it, the query once per RegularExpression
// query matcher. A decision's CPU time is linear in it (Go's regexp is
// linear in its input, times the pattern's size); everything else a
// decision does is bounded by the request's size alone. ScanCost itself
// costs a host lookup and one substring search per regex path route.
func (t *Table) ScanCost(r *Request) int {
	if t == nil || r == nil {
		return 0
	}
	host, _ := splitHostPort(r.Host)
	vh := t.lookup(host)
	if vh == nil {
		return 0
	}
	path, query, _ := splitURL(r.URL)
	n := 0
	for i := vh.regex.lo; i < vh.regex.hi; i++ {
		if rt := &vh.routes[i]; (rt.method == "" || rt.method == r.Method) && rt.re.mayMatch(path) {
			n += len(path)
		}
	}
	for _, name := range vh.rxHeaders {
		for j := range r.Headers {
			if equalFoldASCII(r.Headers[j].Name, name) {
				n += len(r.Headers[j].Value) + 1
			}
		}
	}
	return n + vh.rxQueries*len(query)
}

// scanInputs records what ScanCost needs besides the path routes.
func (vh *vhost) scanInputs() {
	for i := range vh.routes {
		for _, h := range vh.routes[i].headers {
			if h.re != nil {
				vh.rxHeaders = append(vh.rxHeaders, h.name)
			}
		}
		for _, q := range vh.routes[i].query {
			if q.re != nil {
				vh.rxQueries++
			}
		}
	}
}

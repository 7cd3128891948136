package route

import (
	"net"
	"strconv"
)

// This file describes a compiled table for operators: Dump lists every
// vhost and route in the order Decide tries them (ghostd dump), Explain
// says which routes a request matched and which precedence rule chose the
// winner (ghostd route). Both read the compiled table, so they show what is
// serving, not a re-reading of the file.

// VhostDump is one vhost of a table dump.
type VhostDump struct {
	Key    string      `json:"key"`  // as written in the file
	Kind   string      `json:"kind"` // "exact", "wildcard" or "catch-all"
	Deps   []string    `json:"depends_on"`
	Routes []RouteDump `json:"routes"` // precedence order; default_backends last
}

// RouteDump is one compiled route. Rank is its 1-based position in the
// vhost's precedence order: among the routes whose conditions hold, the one
// of lowest rank wins.
type RouteDump struct {
	Rank       int         `json:"rank"`
	Index      int         `json:"index"` // in the file's routes list; -1 = default_backends
	Name       string      `json:"route_name,omitempty"`
	PathType   string      `json:"path_type"` // Exact, PathPrefix, RegularExpression, or "" for default_backends
	PathValue  string      `json:"path_value,omitempty"`
	Method     string      `json:"method,omitempty"`
	Headers    []MatchDump `json:"headers,omitempty"`
	Query      []MatchDump `json:"query_params,omitempty"`
	Listeners  []string    `json:"listeners,omitempty"`
	Priority   int64       `json:"priority,omitempty"`
	RuleIndex  int64       `json:"rule_index,omitempty"`
	Groups     []GroupDump `json:"backend_groups,omitempty"`
	RequestOps *HeaderOps  `json:"request_header_modifier,omitempty"`
	RespOps    *HeaderOps  `json:"response_header_modifier,omitempty"`
	Rewrite    string      `json:"url_rewrite,omitempty"`      // "host H path P" summary
	Redirect   string      `json:"request_redirect,omitempty"` // "301 scheme://host:port/path" summary
	CORS       *CORS       `json:"cors,omitempty"`             // as decisions for OPTIONS carry it
	Outcome    string      `json:"outcome"`                    // backend, no_backends (500) or redirect
	// Endpoint health, the vhost's defaults filled in (summaries; see
	// HealthCheck.String, Outlier.String); PanicThreshold only with one
	// of them.
	Health         string `json:"health,omitempty"`
	Outlier        string `json:"outlier,omitempty"`
	PanicThreshold *int   `json:"panic_threshold,omitempty"`
	// Affinity (summaries; see Balancer.String, Session.String).
	LoadBalancer       string `json:"load_balancer,omitempty"`
	SessionPersistence string `json:"session_persistence,omitempty"`
	// timeouts and retry (summaries: Timeouts.String, Retry.String)
	Timeouts string `json:"timeouts,omitempty"`
	Retry    string `json:"retry,omitempty"`
}

// MatchDump is one header or query parameter condition.
type MatchDump struct {
	Name  string `json:"name"`
	Type  string `json:"type"` // Exact or RegularExpression
	Value string `json:"value"`
}

// GroupDump is one weighted group of endpoints ("address:port").
type GroupDump struct {
	Weight    uint64   `json:"weight"`
	Endpoints []string `json:"backends"`
}

// OutcomeName returns the short name of an outcome as metrics and dumps
// use it: backend, not_found, no_backends or redirect.
func OutcomeName(o Outcome) string {
	switch o {
	case OutcomeBackend:
		return "backend"
	case OutcomeNotFound:
		return "not_found"
	case OutcomeNoBackends:
		return "no_backends"
	case OutcomeRedirect:
		return "redirect"
	}
	return "unknown"
}

// Dump describes every vhost of the table, sorted by key, with its routes
// in precedence order.
func (t *Table) Dump() []VhostDump {
	if t == nil {
		return nil
	}
	out := make([]VhostDump, 0, len(t.vhosts))
	for _, vh := range t.vhosts {
		v := VhostDump{Key: vh.key, Kind: vhostKind(vh), Deps: vh.deps.Names(), Routes: make([]RouteDump, 0, len(vh.ordered))}
		for i, rt := range vh.ordered {
			v.Routes = append(v.Routes, rt.dump(i+1))
		}
		out = append(out, v)
	}
	return out
}

func vhostKind(vh *vhost) string {
	switch {
	case vh.norm == "*":
		return "catch-all"
	case len(vh.norm) > 0 && vh.norm[0] == '.':
		return "wildcard"
	}
	return "exact"
}

// Names lists the request inputs in d, the Host header first: "host",
// "path", "method", "query", "socket", "https", "header NAME".
func (d Deps) Names() []string {
	out := []string{"host"}
	for _, x := range []struct {
		on   bool
		name string
	}{{d.Path, "path"}, {d.Method, "method"}, {d.Query, "query"}, {d.Socket, "socket"}, {d.HTTPS, "https"}} {
		if x.on {
			out = append(out, x.name)
		}
	}
	for _, h := range d.Headers {
		out = append(out, "header "+h)
	}
	return out
}

var pathTypeNames = [...]string{pathExact: "Exact", pathPrefix: "PathPrefix", pathRegex: "RegularExpression", pathAll: "PathPrefix"}

func (rt *croute) dump(rank int) RouteDump {
	d := RouteDump{Rank: rank, Index: rt.index, Name: rt.name, Method: rt.method,
		Listeners: rt.listeners, Priority: rt.priority, RuleIndex: rt.ruleIndex,
		RequestOps: rt.reqOps, RespOps: rt.respOps}
	if rt.index != RouteDefault {
		d.PathType = pathTypeNames[rt.kind]
		d.PathValue = rt.value
		if rt.kind == pathAll {
			d.PathValue = "/"
		}
	}
	for _, h := range rt.headers {
		d.Headers = append(d.Headers, MatchDump{Name: h.name, Type: matchType(h.re != nil), Value: h.value})
	}
	for _, q := range rt.query {
		d.Query = append(d.Query, MatchDump{Name: q.name, Type: matchType(q.re != nil), Value: q.value})
	}
	for _, g := range rt.groups {
		gd := GroupDump{Weight: g.Weight, Endpoints: make([]string, len(g.Endpoints))}
		for i, e := range g.Endpoints {
			gd.Endpoints[i] = net.JoinHostPort(e.Address, strconv.Itoa(int(e.Port)))
		}
		d.Groups = append(d.Groups, gd)
	}
	if rt.cors != nil {
		d.CORS = rt.cors.options
	}
	if rw := rt.rewrite; rw != nil {
		d.Rewrite = summarizeMod("hostname", rw.hostname, rw.mod, rw.value)
	}
	if rt.timeouts != nil {
		d.Timeouts = rt.timeouts.String()
	}
	if rt.retry != nil {
		d.Retry = rt.retry.String()
	}
	if rt.balancer != nil {
		d.LoadBalancer = rt.balancer.String()
	}
	if rt.session != nil {
		d.SessionPersistence = rt.session.String()
	}
	if h := &rt.health; h.health != nil || h.outlier != nil {
		if h.health != nil {
			d.Health = h.health.String()
		}
		if h.outlier != nil {
			d.Outlier = h.outlier.String()
		}
		pn := DefaultPanicThreshold
		if h.hasPanic {
			pn = h.panic
		}
		d.PanicThreshold = &pn
	}
	switch {
	case rt.redirect != nil:
		x := rt.redirect
		d.Outcome = "redirect"
		d.Redirect = strconv.Itoa(x.status)
		if x.scheme != "" {
			d.Redirect += " scheme " + x.scheme
		}
		if x.port != 0 {
			d.Redirect += " port " + strconv.Itoa(x.port)
		}
		if s := summarizeMod("hostname", x.hostname, x.mod, x.value); s != "" {
			d.Redirect += " " + s
		}
	case len(rt.groups) == 0:
		d.Outcome = "no_backends"
	default:
		d.Outcome = "backend"
	}
	return d
}

func matchType(re bool) string {
	if re {
		return "RegularExpression"
	}
	return "Exact"
}

// summarizeMod describes a hostname and path modification in one line.
func summarizeMod(hostKey, host string, mod pathModKind, value string) string {
	s := ""
	if host != "" {
		s = hostKey + " " + host
	}
	add := func(x string) {
		if s != "" {
			s += " "
		}
		s += x
	}
	switch mod {
	case modFull:
		add("replace_full_path " + value)
	case modPrefix:
		add("replace_prefix_match " + value)
	}
	return s
}

// Explanation says how Decide reached its decision for one request.
type Explanation struct {
	Vhost     string `json:"vhost"`      // selected vhost key, "" when none
	VhostRule string `json:"vhost_rule"` // how the vhost was selected
	// Matched lists the routes whose conditions all hold, in precedence
	// order; the first one won.
	Matched []RouteRef `json:"matched"`
	// Rejected lists the other routes with the first condition that
	// failed, in precedence order.
	Rejected []RouteRef `json:"rejected,omitempty"`
	// DecidedBy names the precedence rule that put the winner before the
	// runner-up (the second matched route), or why there was no choice.
	DecidedBy string `json:"decided_by"`
}

// RouteRef names a route in an explanation.
type RouteRef struct {
	Rank   int    `json:"rank"`
	Index  int    `json:"index"`
	Name   string `json:"route_name,omitempty"`
	Failed string `json:"failed,omitempty"` // the first condition that did not hold
}

// Explain walks the vhost of r's Host through every route in precedence
// order (the reference order that Decide's indexed walk agrees with) and
// reports which matched and why the winner won.
func (t *Table) Explain(r *Request) Explanation {
	var x Explanation
	host, _ := splitHostPort(r.Host)
	vh := t.lookup(host)
	if vh == nil {
		x.VhostRule = "no vhost matches the Host header (exact, wildcard or \"*\"): 404"
		x.DecidedBy = "no vhost"
		return x
	}
	x.Vhost = vh.key
	switch vhostKind(vh) {
	case "exact":
		x.VhostRule = "exact hostname match"
	case "wildcard":
		x.VhostRule = "longest wildcard suffix (no exact vhost for the host)"
	default:
		x.VhostRule = "catch-all \"*\" (no exact or wildcard vhost for the host)"
	}
	path, query, _ := splitURL(r.URL)
	m := &matcher{r: r, path: path, query: query}
	var won []*croute
	for i, rt := range vh.ordered {
		ref := RouteRef{Rank: i + 1, Index: rt.index, Name: rt.name}
		if why := rt.failedCondition(m); why != "" {
			ref.Failed = why
			x.Rejected = append(x.Rejected, ref)
			continue
		}
		x.Matched = append(x.Matched, ref)
		won = append(won, rt)
	}
	switch {
	case len(won) == 0:
		x.DecidedBy = "no route matched and the vhost has no default_backends: 404"
	case won[0].index == RouteDefault:
		x.DecidedBy = "no route matched: default_backends"
	case len(won) == 1 || won[1].index == RouteDefault:
		x.DecidedBy = "the only matching route"
	default:
		_, rule := precedence(won[0], won[1])
		x.DecidedBy = rule
	}
	return x
}

// failedCondition returns the first condition of the route that does not
// hold for m, or "" when the route matches.
func (rt *croute) failedCondition(m *matcher) string {
	if rt.index == RouteDefault {
		return ""
	}
	if !rt.pathMatches(m.path) {
		return "path"
	}
	if rt.method != "" && rt.method != m.r.Method {
		return "method"
	}
	if len(rt.listeners) > 0 {
		ok := false
		for _, l := range rt.listeners {
			ok = ok || l == m.r.Socket
		}
		if !ok {
			return "listener"
		}
	}
	for i := range rt.headers {
		if !rt.headers[i].matches(m.r.Headers) {
			return "header " + rt.headers[i].name
		}
	}
	for i := range rt.query {
		if !rt.query[i].matches(m.query) {
			return "query " + rt.query[i].name
		}
	}
	return ""
}

package route

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// compile validates a decoded file and builds the table. Vhosts are visited
// in sorted key order and routes in file order, so a file with several
// errors always reports the same one. compile consumes f: each vhost is
// deleted from f.Vhosts once compiled, so that its decoded form is garbage
// while the rest compiles.
func compile(name string, f *fileJSON) (*Table, error) {
	keys := make([]string, 0, len(f.Vhosts))
	for k := range f.Vhosts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := newVhostSet(name, len(keys))
	for _, k := range keys {
		vj := f.Vhosts[k]
		delete(f.Vhosts, k)
		if err := s.add(k, &vj); err != nil {
			return nil, err
		}
	}
	return s.table(), nil
}

// vhostSet compiles vhosts one at a time, in key order, and then assembles
// them into a Table. The decoded form of a vhost is not needed once it is
// added, so that a caller can decode one vhost at a time.
type vhostSet struct {
	name   string
	b      builder
	seen   map[string]string // lookup form → key as written
	kinds  []hostKind
	store  []vhost // compiled here, then moved into the host tables
	routes int
}

// newVhostSet returns an empty set for n vhosts.
func newVhostSet(name string, n int) *vhostSet {
	return &vhostSet{
		name:  name,
		b:     builder{refs: map[netip.AddrPort][]Endpoint{}, groupCache: map[string][]Endpoint{}},
		seen:  make(map[string]string, n),
		kinds: make([]hostKind, 0, n),
		store: make([]vhost, 0, n),
	}
}

// add validates and compiles vhost k, whose key sorts after the keys added
// before. vj is not used after add returns.
func (s *vhostSet) add(k string, vj *vhostJSON) error {
	c := errCtx{file: s.name, inVhost: true, vhost: k, route: -1}
	norm, kind, why := normVhostKey(k)
	if why != "" {
		return c.errorf("invalid vhost key: %s", why)
	}
	if other, dup := s.seen[norm]; dup {
		return c.errorf("same host as vhost %q (keys are case-insensitive)", other)
	}
	s.seen[norm] = k
	s.kinds = append(s.kinds, kind)
	s.store = append(s.store, vhost{norm: norm}) // layout moves norm into the vhost's own string
	if err := s.b.vhost(&s.store[len(s.store)-1], c, k, vj); err != nil {
		return err
	}
	s.routes += len(vj.Routes)
	return nil
}

// table builds the Table of the vhosts added. The set must not be used
// afterwards.
func (s *vhostSet) table() *Table {
	n := len(s.store)
	nw := 0
	for _, k := range s.kinds {
		if k == hostWild {
			nw++
		}
	}
	t := &Table{vhosts: make([]*vhost, n), exact: newHostTable(n - nw), wild: newHostTable(nw)}
	// The vhosts move into the slots of the host tables.
	for i := range s.store {
		vh := &s.store[i]
		switch s.kinds[i] {
		case hostExact:
			t.vhosts[i] = t.exact.put(vh)
		case hostWild:
			t.vhosts[i] = t.wild.put(vh)
		case hostAll:
			t.catchAll = new(vhost)
			*t.catchAll = *vh
			t.vhosts[i] = t.catchAll
		}
	}
	t.refs = s.b.refs
	t.stats = Stats{Vhosts: n, Routes: s.routes, Endpoints: len(t.refs)}
	*s = vhostSet{} // the store is garbage now
	return t
}

// builder carries state shared across vhosts while compiling.
type builder struct {
	refs map[netip.AddrPort][]Endpoint // every endpoint → its shared one-element list
	// groupCache interns endpoint lists; many routes share their backends.
	groupCache map[string][]Endpoint
}

func (b *builder) vhost(vh *vhost, c errCtx, key string, vj *vhostJSON) error {
	vh.key = key
	// The routes are compiled into one array, which layout reorders in
	// place and keeps.
	crs := make([]croute, len(vj.Routes))
	routes := make([]*croute, len(vj.Routes))
	for i := range vj.Routes {
		rc := c
		rc.route = i
		if err := b.route(&crs[i], rc, i, &vj.Routes[i]); err != nil {
			return err
		}
		routes[i] = &crs[i]
	}
	if len(vj.DefaultBackends) > 0 {
		groups, err := b.defaultBackends(vj.DefaultBackends)
		if err != nil {
			return c.errorf("default_backends%s", err)
		}
		vh.def = &croute{index: RouteDefault, kind: pathAll, groups: groups}
	}
	slices.SortStableFunc(routes, comparePrecedence)
	vh.deps = computeDeps(routes)
	vh.layout(crs, routes)
	return nil
}

// layout stores the routes (sorted by precedence) by value, grouped into
// buckets, and builds the bucket indexes. crs is the array the routes were
// compiled into (route i at crs[i], sorted points into it): it is reordered
// in place and becomes vh.routes.
func (vh *vhost) layout(crs []croute, sorted []*croute) {
	// Bucket order: Exact by key; PathPrefix by key length (longest
	// first), then key; then regex; then the rest. A stable sort keeps
	// precedence order inside each bucket.
	idx := make([]int32, len(sorted)) // order[i] = sorted[idx[i]]
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(x, y int32) int {
		a, b := sorted[x], sorted[y]
		if a.kind != b.kind {
			return int(a.kind) - int(b.kind)
		}
		switch a.kind {
		case pathExact:
			return strings.Compare(a.value, b.value)
		case pathPrefix:
			if len(a.prefix) != len(b.prefix) {
				return len(b.prefix) - len(a.prefix)
			}
			return strings.Compare(a.prefix, b.prefix)
		}
		return 0
	})
	order := make([]*croute, len(sorted))
	where := make([]int32, len(sorted)) // sorted[j] is stored at routes[where[j]]
	for i, j := range idx {
		order[i] = sorted[j]
		where[j] = int32(i)
	}
	// Buckets: runs of routes sharing an Exact value or a PathPrefix key.
	// The order puts every Exact bucket before every PathPrefix bucket.
	type ent struct {
		key    string
		off    int // of the key in the arena
		lo, hi int32
	}
	ents := make([]ent, 0, len(order))
	nExact := 0
	for i, r := range order {
		n := int32(i)
		switch r.kind {
		case pathExact, pathPrefix:
			k := r.value
			if r.kind == pathPrefix {
				k = r.prefix
				vh.maxPrefix = max(vh.maxPrefix, len(k))
			}
			if l := len(ents); l > 0 && order[ents[l-1].lo].kind == r.kind && ents[l-1].key == k {
				ents[l-1].hi = n + 1
				continue
			}
			ents = append(ents, ent{key: k, lo: n, hi: n + 1})
			if r.kind == pathExact {
				nExact++
			}
		case pathRegex:
			if vh.regex.hi == 0 {
				vh.regex.lo = n
			}
			vh.regex.hi = n + 1
		default:
			if vh.rest.hi == 0 {
				vh.rest.lo = n
			}
			vh.rest.hi = n + 1
		}
	}
	nPrefix := len(ents) - nExact
	// One string holds the vhost's lookup key (compared by the host lookup
	// just before the buckets are read), every bucket key, the matcher
	// strings and the bucket records (16 bytes each: key offset, key
	// length, first and last+1 route), so that a decision reads one
	// allocation for all of them.
	nh, nq, size := 0, 0, len(vh.norm)+16*len(ents)
	for i := range ents {
		size += len(ents[i].key)
	}
	for _, r := range order {
		nh += len(r.headers)
		nq += len(r.query)
		for _, h := range r.headers {
			size += len(h.name) + len(h.value)
		}
		for _, q := range r.query {
			size += len(q.name) + len(q.value)
		}
	}
	var sb strings.Builder
	sb.Grow(size)
	sb.WriteString(vh.norm)
	for i := range ents {
		ents[i].off = sb.Len()
		sb.WriteString(ents[i].key)
	}
	matchers := sb.Len()
	for _, r := range order {
		for _, h := range r.headers {
			sb.WriteString(h.name)
			sb.WriteString(h.value)
		}
		for _, q := range r.query {
			sb.WriteString(q.name)
			sb.WriteString(q.value)
		}
	}
	vh.recBase = int32(sb.Len())
	var rec [16]byte
	for _, e := range ents {
		binary.LittleEndian.PutUint32(rec[0:], uint32(e.off))
		binary.LittleEndian.PutUint32(rec[4:], uint32(len(e.key)))
		binary.LittleEndian.PutUint32(rec[8:], uint32(e.lo))
		binary.LittleEndian.PutUint32(rec[12:], uint32(e.hi))
		sb.Write(rec[:])
	}
	vh.arena = sb.String()
	vh.nExact, vh.nPrefix = int32(nExact), int32(nPrefix)
	vh.norm = vh.arena[:len(vh.norm)]
	// Reorder crs in place into bucket order: routes[i] = *order[i], where
	// order[i] is crs[order[i].index]. perm[i] is the index to move to i;
	// it is set to i once i holds its route.
	perm := idx // idx is not needed any more
	for i, r := range order {
		perm[i] = int32(r.index)
	}
	for i := range perm {
		if int(perm[i]) == i {
			continue
		}
		tmp := crs[i]
		j := i
		for {
			k := int(perm[j])
			perm[j] = int32(j)
			if k == i {
				crs[j] = tmp
				break
			}
			crs[j] = crs[k]
			j = k
		}
	}
	vh.routes = crs // order is stale from here on
	off := matchers
	take := func(s string) string {
		out := vh.arena[off : off+len(s)]
		off += len(s)
		return out
	}
	hpool := make([]headerMatch, 0, nh)
	qpool := make([]queryMatch, 0, nq)
	for i := range vh.routes {
		rt := &vh.routes[i]
		if len(rt.headers) > 0 {
			lo := len(hpool)
			for _, h := range rt.headers {
				h.name, h.value = take(h.name), take(h.value)
				hpool = append(hpool, h)
			}
			rt.headers = hpool[lo:len(hpool):len(hpool)]
		}
		if len(rt.query) > 0 {
			lo := len(qpool)
			for _, q := range rt.query {
				q.name, q.value = take(q.name), take(q.value)
				qpool = append(qpool, q)
			}
			rt.query = qpool[lo:len(qpool):len(qpool)]
		}
	}
	if nExact > smallVhost {
		vh.exactM = make(map[string]int32, nExact)
		for i := range nExact {
			vh.exactM[vh.arena[ents[i].off:ents[i].off+len(ents[i].key)]] = int32(i)
		}
	}
	if nPrefix > smallVhost {
		vh.prefM = make(map[string]int32, nPrefix)
		for j := nExact; j < len(ents); j++ {
			vh.prefM[vh.arena[ents[j].off:ents[j].off+len(ents[j].key)]] = int32(j)
		}
	}
	vh.ordered = make([]*croute, 0, len(sorted)+1)
	for j := range sorted {
		vh.ordered = append(vh.ordered, &vh.routes[where[j]])
	}
	if vh.def != nil {
		vh.ordered = append(vh.ordered, vh.def)
	}
}

// comparePrecedence orders routes by SPEC §4.3: the route that wins comes
// first.
func comparePrecedence(a, b *croute) int {
	if a.kind != b.kind {
		return int(a.kind) - int(b.kind)
	}
	if a.kind == pathPrefix && len(a.value) != len(b.value) {
		return len(b.value) - len(a.value)
	}
	if (a.method != "") != (b.method != "") {
		if a.method != "" {
			return -1
		}
		return 1
	}
	if len(a.headers) != len(b.headers) {
		return len(b.headers) - len(a.headers)
	}
	if len(a.query) != len(b.query) {
		return len(b.query) - len(a.query)
	}
	if a.priority != b.priority {
		if a.priority > b.priority {
			return -1
		}
		return 1
	}
	if a.ruleIndex != b.ruleIndex {
		if a.ruleIndex < b.ruleIndex {
			return -1
		}
		return 1
	}
	return a.index - b.index
}

// computeDeps says which request inputs a decision in this vhost can depend
// on besides the Host header.
func computeDeps(routes []*croute) Deps {
	d := Deps{Path: true}
	var hs []string
	for _, r := range routes {
		if r.method != "" {
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
	return d
}

// route validates and compiles route i of a vhost into *r.
func (b *builder) route(r *croute, c errCtx, i int, rj *routeJSON) error {
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
	return nil
}

// matchValue validates a header or query matcher's value and type.
func matchValue(field string, value, typ *string) (string, *regexp.Regexp, error) {
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

// compileRegex compiles an RE2 pattern within the length limit.
func compileRegex(p string) (*regexp.Regexp, error) {
	if len(p) > MaxRegexLen {
		return nil, fmt.Errorf("is longer than %d bytes", MaxRegexLen)
	}
	re, err := regexp.Compile(p)
	if err != nil {
		return nil, fmt.Errorf("%q does not compile: %s", p, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

func (r *croute) filters(fj *filtersJSON) error {
	var err error
	if r.reqOps, err = headerOps("filters.request_header_modifier", fj.RequestHeaderModifier); err != nil {
		return err
	}
	if r.respOps, err = headerOps("filters.response_header_modifier", fj.ResponseHeaderModifier); err != nil {
		return err
	}
	if u := fj.URLRewrite; u != nil {
		const field = "filters.url_rewrite"
		rw := &urlRewrite{}
		if u.Hostname != nil {
			if why := checkHostname(*u.Hostname); why != "" {
				return fmt.Errorf("%s.hostname %q %s", field, *u.Hostname, why)
			}
			rw.hostname = *u.Hostname
		}
		if rw.mod, rw.value, err = r.pathMod(field, u.PathType, u.ReplaceFullPath, u.ReplacePrefixMatch); err != nil {
			return err
		}
		if rw.hostname != "" || rw.mod != modNone {
			r.rewrite = rw
		}
	}
	if rd := fj.RequestRedirect; rd != nil {
		const field = "filters.request_redirect"
		x := &redirect{status: DefaultRedirect}
		if rd.Scheme != nil {
			if *rd.Scheme != "http" && *rd.Scheme != "https" {
				return fmt.Errorf("%s.scheme %q must be http or https", field, *rd.Scheme)
			}
			x.scheme = *rd.Scheme
		}
		if rd.Hostname != nil {
			if why := checkHostname(*rd.Hostname); why != "" {
				return fmt.Errorf("%s.hostname %q %s", field, *rd.Hostname, why)
			}
			x.hostname = *rd.Hostname
		}
		if rd.Port != nil {
			if *rd.Port < 1 || *rd.Port > 65535 {
				return fmt.Errorf("%s.port %d out of range 1-65535", field, *rd.Port)
			}
			x.port = int(*rd.Port)
		}
		if rd.StatusCode != nil {
			switch *rd.StatusCode {
			case 301, 302, 303, 307, 308:
				x.status = int(*rd.StatusCode)
			default:
				return fmt.Errorf("%s.status_code %d must be 301, 302, 303, 307 or 308", field, *rd.StatusCode)
			}
		}
		if x.mod, x.value, err = r.pathMod(field, rd.PathType, rd.ReplaceFullPath, rd.ReplacePrefixMatch); err != nil {
			return err
		}
		r.redirect = x
	}
	return nil
}

// pathMod validates a URLRewrite/RequestRedirect path modifier. Without
// path_type, a single replace_* value says which modifier is meant.
func (r *croute) pathMod(field string, typ, full, prefix *string) (pathModKind, string, error) {
	t := ""
	if typ != nil {
		t = *typ
	} else {
		switch {
		case full != nil && prefix != nil:
			return 0, "", fmt.Errorf("%s.path_type is required when both replace_full_path and replace_prefix_match are set", field)
		case full != nil:
			t = "ReplaceFullPath"
		case prefix != nil:
			t = "ReplacePrefixMatch"
		default:
			return modNone, "", nil
		}
	}
	switch t {
	case "ReplaceFullPath":
		if full == nil {
			return 0, "", fmt.Errorf("%s.replace_full_path is required for ReplaceFullPath", field)
		}
		if err := checkPath(field+".replace_full_path", *full, false); err != nil {
			return 0, "", err
		}
		return modFull, *full, nil
	case "ReplacePrefixMatch":
		if prefix == nil {
			return 0, "", fmt.Errorf("%s.replace_prefix_match is required for ReplacePrefixMatch", field)
		}
		if err := checkPath(field+".replace_prefix_match", *prefix, true); err != nil {
			return 0, "", err
		}
		if r.kind != pathPrefix && r.kind != pathAll {
			return 0, "", fmt.Errorf("%s: ReplacePrefixMatch needs a PathPrefix path_match (or none)", field)
		}
		return modPrefix, *prefix, nil
	default:
		return 0, "", fmt.Errorf("%s.path_type %q must be ReplaceFullPath or ReplacePrefixMatch", field, t)
	}
}

// headerOps validates a header modifier; nil when it does nothing.
func headerOps(field string, m *headerModJSON) (*HeaderOps, error) {
	if m == nil {
		return nil, nil
	}
	ops := &HeaderOps{}
	kv := func(what string, list []headerKVJSON) ([]Header, error) {
		var out []Header
		for j, h := range list {
			f := fmt.Sprintf("%s.%s[%d]", field, what, j)
			if h.Name == nil {
				return nil, fmt.Errorf("%s.name is required", f)
			}
			if err := checkHeaderName(f, *h.Name); err != nil {
				return nil, err
			}
			if h.Value == nil {
				return nil, fmt.Errorf("%s.value is required", f)
			}
			if err := checkHeaderValue(f, *h.Value); err != nil {
				return nil, err
			}
			out = append(out, Header{Name: *h.Name, Value: *h.Value})
		}
		return out, nil
	}
	var err error
	if ops.Set, err = kv("set", m.Set); err != nil {
		return nil, err
	}
	if ops.Add, err = kv("add", m.Add); err != nil {
		return nil, err
	}
	for j, n := range m.Remove {
		if err := checkHeaderName(fmt.Sprintf("%s.remove[%d]", field, j), n); err != nil {
			return nil, err
		}
		ops.Remove = append(ops.Remove, n)
	}
	if len(ops.Set) == 0 && len(ops.Add) == 0 && len(ops.Remove) == 0 {
		return nil, nil
	}
	return ops, nil
}

// endpoint validates one backend entry's address and port. On error it
// returns the message to append to the entry's field name.
func (b *builder) endpoint(e *backendJSON) ([]Endpoint, string) {
	if e.Address == "" {
		return nil, ".address is required"
	}
	a, err := netip.ParseAddr(e.Address)
	if err != nil || a.Zone() != "" {
		return nil, fmt.Sprintf(": address %q is not an IP literal", e.Address)
	}
	if e.Port < 1 || e.Port > 65535 {
		return nil, fmt.Sprintf(": port %d out of range 1-65535", e.Port)
	}
	ap := netip.AddrPortFrom(a, uint16(e.Port))
	if s, ok := b.refs[ap]; ok {
		return s, ""
	}
	text := e.Address
	var buf [64]byte
	if t := a.AppendTo(buf[:0]); string(t) != text {
		text = string(t) // canonical form
	}
	s := []Endpoint{{Address: text, Port: uint16(e.Port)}}
	b.refs[ap] = s
	return s, ""
}

func weight(w *int64) (uint64, string) {
	if w == nil {
		return DefaultWeight, ""
	}
	if *w < 0 || *w > MaxWeight {
		return 0, fmt.Sprintf(": weight %d out of range 0-%d", *w, MaxWeight)
	}
	return uint64(*w), ""
}

func fieldIndex(field string, j int) string {
	return field + "[" + strconv.Itoa(j) + "]"
}

// endpointGroups compiles a per-endpoint list: one group per endpoint.
func (b *builder) endpointGroups(field string, list []backendJSON) ([]Group, error) {
	var out []Group
	for j := range list {
		if list[j].Backends != nil {
			return nil, fmt.Errorf("%s: a group entry in a list of endpoints", fieldIndex(field, j))
		}
		ep, bad := b.endpoint(&list[j])
		if bad != "" {
			return nil, errors.New(fieldIndex(field, j) + bad)
		}
		w, bad := weight(list[j].Weight)
		if bad != "" {
			return nil, errors.New(fieldIndex(field, j) + bad)
		}
		if w > 0 {
			if out == nil {
				out = make([]Group, 0, len(list))
			}
			out = append(out, Group{Weight: w, Endpoints: ep})
		}
	}
	return out, nil
}

// group compiles one weighted group; ok is false when it can never be
// picked (weight 0 or no endpoints) but is valid. field names the group.
func (b *builder) group(field string, w *int64, list []backendJSON) (Group, bool, error) {
	gw, bad := weight(w)
	if bad != "" {
		return Group{}, false, errors.New(field + bad)
	}
	eps := make([]Endpoint, 0, len(list))
	for j := range list {
		ep, bad := b.endpoint(&list[j])
		if bad == "" {
			_, bad = weight(list[j].Weight)
		}
		if bad != "" {
			return Group{}, false, errors.New(fieldIndex(field+".backends", j) + bad)
		}
		eps = append(eps, ep[0])
	}
	if gw == 0 || len(eps) == 0 {
		return Group{}, false, nil
	}
	return Group{Weight: gw, Endpoints: b.intern(eps)}, true, nil
}

func (b *builder) routeBackends(rj *routeJSON) ([]Group, error) {
	if len(rj.Backends) > 0 && len(rj.BackendGroups) > 0 {
		return nil, fmt.Errorf("backends and backend_groups are both set")
	}
	if len(rj.BackendGroups) == 0 {
		return b.endpointGroups("backends", rj.Backends)
	}
	var out []Group
	for j := range rj.BackendGroups {
		g, ok, err := b.group(fieldIndex("backend_groups", j), rj.BackendGroups[j].Weight, rj.BackendGroups[j].Backends)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, g)
		}
	}
	return out, nil
}

// defaultBackends accepts endpoint entries or group entries (not mixed).
// Errors start with the part of the field after "default_backends".
func (b *builder) defaultBackends(list []backendJSON) ([]Group, error) {
	isGroup := list[0].Address == "" && list[0].Backends != nil
	var out []Group
	for j := range list {
		g := list[j].Address == "" && list[j].Backends != nil
		if g != isGroup {
			return nil, fmt.Errorf("[%d]: mixes endpoint entries and group entries", j)
		}
		if !isGroup {
			continue
		}
		if list[j].Port != 0 {
			return nil, fmt.Errorf("[%d]: a group entry has no port", j)
		}
		grp, ok, err := b.group(fieldIndex("", j), list[j].Weight, list[j].Backends)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, grp)
		}
	}
	if isGroup {
		return out, nil
	}
	return b.endpointGroups("", list)
}

// intern returns a shared copy of an endpoint list.
func (b *builder) intern(eps []Endpoint) []Endpoint {
	if len(eps) == 1 {
		a, _ := netip.ParseAddr(eps[0].Address)
		return b.refs[netip.AddrPortFrom(a, eps[0].Port)]
	}
	k := make([]byte, 0, len(eps)*20)
	for _, e := range eps {
		k = append(k, e.Address...)
		k = append(k, '|')
		k = strconv.AppendUint(k, uint64(e.Port), 10)
		k = append(k, ';')
	}
	if s, ok := b.groupCache[string(k)]; ok {
		return s
	}
	s := slices.Clip(eps)
	b.groupCache[string(k)] = s
	return s
}

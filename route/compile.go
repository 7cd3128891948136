package route

// Building a Table: vhosts are validated and compiled one at a time, then
// moved into the host lookup tables. The rules themselves are in
// validate*.go (what a file may say), backends.go, precedence.go (which
// route wins), deps.go and layout.go.

import (
	"net/netip"
	"slices"
	"sort"

	"github.com/varnish/ghost/route/ring"
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
	// routes with a cache_policy (see Table.CacheOriginOnly)
	policies int
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
	for i := range s.store[len(s.store)-1].routes {
		if s.store[len(s.store)-1].routes[i].cache != nil {
			s.policies++
		}
	}
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
	t.probes = s.b.probes
	if len(s.b.rings) > 0 {
		t.rings = make(map[uint64]*ring.Ring, len(s.b.rings))
		for _, r := range s.b.rings {
			t.rings[r.ID()] = r
		}
	}
	t.stats = Stats{Vhosts: n, Routes: s.routes, Endpoints: len(t.refs)}
	t.policies = s.policies
	*s = vhostSet{} // the store is garbage now
	return t
}

// builder carries state shared across vhosts while compiling.
type builder struct {
	refs map[netip.AddrPort][]Endpoint // every endpoint → its shared one-element list
	// groupCache interns endpoint lists; many routes share their backends.
	groupCache map[string][]Endpoint
	// probes: every endpoint under every probe that applies to it.
	probes map[probeRef]struct{}
	// rings: the consistent-hash rings by content, shared by routes
	// with the same endpoints and weights
	rings map[string]*ring.Ring
}

// vhost validates and compiles the routes and default backends of vhost
// key into *vh, sorted by precedence and laid out for lookup.
func (b *builder) vhost(vh *vhost, c errCtx, key string, vj *vhostJSON) error {
	vh.key = key
	vdef, err := compileHealth(vj.Health, vj.Outlier, vj.PanicThreshold)
	if err != nil {
		return c.errorf("%s", err)
	}
	// The routes are compiled into one array, which layout reorders in
	// place and keeps.
	crs := make([]croute, len(vj.Routes))
	routes := make([]*croute, len(vj.Routes))
	for i := range vj.Routes {
		rc := c
		rc.route = i
		if err := b.route(&crs[i], rc, key, i, &vj.Routes[i]); err != nil {
			return err
		}
		crs[i].health.inherit(&vdef)
		b.noteProbes(crs[i].health.health, crs[i].groups)
		routes[i] = &crs[i]
	}
	if len(vj.DefaultBackends) > 0 {
		groups, err := b.defaultBackends(vj.DefaultBackends)
		if err != nil {
			return c.errorf("default_backends%s", err)
		}
		vh.def = &croute{index: RouteDefault, kind: pathAll, groups: groups, health: vdef}
		b.noteProbes(vdef.health, groups)
	}
	slices.SortStableFunc(routes, comparePrecedence)
	vh.deps = computeDeps(routes)
	if n := len(vh.deps.Headers); n > MaxVaryHeaders {
		// each one goes into Vary (and Varnish compares them on
		// every hit of the vhost's objects)
		return c.errorf("routes match on %d distinct header names, more than %d", n, MaxVaryHeaders)
	}
	vh.scope = newScopeIndex(routes)
	vh.deps.ScopeLens = vh.scope.lens
	valueClasses(routes, &vh.deps)
	setPathEdits(routes)
	for _, rt := range routes {
		rt.uncacheable = uncacheable(vh.deps.Headers, rt.reqOps)
	}
	if vh.def != nil {
		vh.def.uncacheable = uncacheable(vh.deps.Headers, nil)
	}
	if err := checkAnswers(c, vh, crs); err != nil {
		return err
	}
	vh.layout(crs, routes)
	vh.scanInputs()
	return nil
}

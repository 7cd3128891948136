package route

// Building a Table: vhosts are validated and compiled one at a time, then
// moved into the host lookup tables. The rules themselves are in
// validate*.go (what a file may say), backends.go, precedence.go (which
// route wins), deps.go and layout.go.

import (
	"maps"
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
func compile(name string, f *fileJSON, o *Options) (*Table, error) {
	keys := make([]string, 0, len(f.Vhosts))
	for k := range f.Vhosts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := newVhostSet(name, len(keys), o)
	for _, k := range keys {
		vj := f.Vhosts[k]
		delete(f.Vhosts, k)
		if err := s.add(k, &vj); err != nil {
			return nil, err
		}
	}
	return s.table(), nil
}

// vhostSet compiles vhosts in key order, and then assembles them into a
// Table. The decoded form of a vhost is not needed once it is compiled,
// so that a caller can decode one vhost at a time. The keys are checked
// one at a time (addKey), in key order; the vhosts of checked keys may
// then be compiled in any order, by several builders (compileParallel),
// since a vhost's compiled form depends on its key and value only.
type vhostSet struct {
	name  string
	opts  *Options
	b     builder           // the builder of add
	more  []*builder        // the builders of compileParallel, merged by table
	seen  map[string]string // lookup form → key as written
	kinds []hostKind
	store []vhost // compiled here, then moved into the host tables
}

// newVhostSet returns an empty set for n vhosts.
func newVhostSet(name string, n int, o *Options) *vhostSet {
	if o == nil {
		o = &Options{}
	}
	return &vhostSet{
		name:  name,
		opts:  o,
		b:     newBuilder(o),
		seen:  make(map[string]string, n),
		kinds: make([]hostKind, 0, n),
		store: make([]vhost, 0, n), // never grown: compileParallel's builders hold pointers into it
	}
}

// add validates and compiles vhost k, whose key sorts after the keys added
// before. vj is not used after add returns.
func (s *vhostSet) add(k string, vj *vhostJSON) error {
	if err := s.addKey(k); err != nil {
		return err
	}
	return s.b.compileVhost(s.name, &s.store[len(s.store)-1], vj)
}

// addKey validates vhost key k, which sorts after the keys added before,
// and makes room for its vhost, the next of s.store.
func (s *vhostSet) addKey(k string) error {
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
	s.store = append(s.store, vhost{norm: norm, key: k}) // layout moves norm into the vhost's own string
	return nil
}

// compileVhost compiles vj into *vh, whose key addKey set.
func (b *builder) compileVhost(file string, vh *vhost, vj *vhostJSON) error {
	c := errCtx{file: file, inVhost: true, vhost: vh.key, route: -1}
	if err := b.vhost(vh, c, vh.key, vj); err != nil {
		return err
	}
	b.count(vh)
	return nil
}

// count adds the routes of vh to the builder's counts.
func (b *builder) count(vh *vhost) {
	b.routes += len(vh.routes)
	for i := range vh.routes {
		if vh.routes[i].cache != nil {
			b.policies++
		}
	}
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
	// The largest builder takes the others' finds.
	b := &s.b
	for _, w := range s.more {
		if len(w.refs) > len(b.refs) {
			b = w
		}
	}
	for _, w := range append(s.more, &s.b) {
		if w != b {
			b.merge(w)
		}
	}
	t.refs = b.refs
	t.probes = b.probes
	if len(b.rings)+len(b.ringIDs) > 0 {
		t.rings = make(map[uint64]*ring.Ring, len(b.rings)+len(b.ringIDs))
		for _, r := range b.rings {
			t.rings[r.ID()] = r
		}
		maps.Copy(t.rings, b.ringIDs)
	}
	t.stats = Stats{Vhosts: n, Routes: b.routes, Endpoints: len(t.refs)}
	t.policies = b.policies
	t.passDefault = s.opts.CachePass
	t.secret = s.opts.SessionSecret
	t.shared = b.adopted > 0
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
	// ringIDs: the rings of the vhosts adopted from the previous table
	ringIDs map[uint64]*ring.Ring
	// unpicked: the endpoints of the vhost being compiled that no group
	// holds (see notePicked)
	unpicked []Endpoint
	// secret keys the session tokens (Options.SessionSecret)
	secret []byte

	routes   int // routes compiled or adopted
	policies int // of which with a cache_policy (see Table.CacheOriginOnly)
	adopted  int // vhosts adopted from the previous table
}

// newBuilder returns a builder for a table compiled under o.
func newBuilder(o *Options) builder {
	return builder{refs: map[netip.AddrPort][]Endpoint{}, groupCache: map[string][]Endpoint{}, secret: o.SessionSecret}
}

// merge adds what w found to b: the endpoints (b's interned list of an
// endpoint both found stays the table's), probes, rings and counts.
func (b *builder) merge(w *builder) {
	for ap, s := range w.refs {
		if _, ok := b.refs[ap]; !ok {
			b.refs[ap] = s
		}
	}
	if len(w.probes) > 0 && b.probes == nil {
		b.probes = make(map[probeRef]struct{}, len(w.probes))
	}
	maps.Copy(b.probes, w.probes)
	for k, r := range w.rings {
		if _, ok := b.rings[k]; !ok {
			if b.rings == nil {
				b.rings = map[string]*ring.Ring{}
			}
			b.rings[k] = r
		}
	}
	if len(w.ringIDs) > 0 && b.ringIDs == nil {
		b.ringIDs = make(map[uint64]*ring.Ring, len(w.ringIDs))
	}
	maps.Copy(b.ringIDs, w.ringIDs)
	b.routes += w.routes
	b.policies += w.policies
	b.adopted += w.adopted
}

// vhost validates and compiles the routes and default backends of vhost
// key into *vh, sorted by precedence and laid out for lookup.
func (b *builder) vhost(vh *vhost, c errCtx, key string, vj *vhostJSON) error {
	vh.key = key
	b.unpicked = nil
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
	vh.unpicked = slices.Clip(b.unpicked)
	return nil
}

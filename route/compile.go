package route

// Building a Table: the vhost keys are checked and given their slots in
// the host lookup tables, then the vhosts are validated and compiled into
// them. The rules themselves are in
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
	s, keyErr := newVhostSet(name, keys, o)
	for i, vh := range s.vhosts {
		vj := f.Vhosts[keys[i]]
		delete(f.Vhosts, keys[i])
		if err := s.b.compileVhost(name, vh, &vj); err != nil {
			return nil, err
		}
	}
	if keyErr != nil {
		return nil, keyErr
	}
	return s.table(), nil
}

// vhostSet holds the vhosts of a table while they compile, each in its
// slot of the host tables already. The keys are checked first, in key
// order (newVhostSet); the vhosts may then be compiled in any order, by
// several builders (compileMembers), since a vhost's compiled form
// depends on its key and value only.
type vhostSet struct {
	name        string
	opts        *Options
	b           builder    // the builder of compile
	more        []*builder // the builders of compileMembers, merged by table
	vhosts      []*vhost   // in key order, in their slots
	exact, wild *hostTable
	catchAll    *vhost
}

// newVhostSet checks keys (sorted) in order, and places the vhost of each
// valid one in its slot: s.vhosts[i] is keys[i]'s vhost, with its key and
// lookup form set. When a key is invalid or names the host of an earlier
// one, s.vhosts stops before it and the error is returned with s.
func newVhostSet(name string, keys []string, o *Options) (*vhostSet, error) {
	if o == nil {
		o = &Options{}
	}
	s := &vhostSet{name: name, opts: o, b: newBuilder(o)}
	norms := make([]string, 0, len(keys))
	kinds := make([]hostKind, 0, len(keys))
	var keyErr error
	nw := 0
	for _, k := range keys {
		norm, kind, why := normVhostKey(k)
		if why != "" {
			keyErr = errCtx{file: name, inVhost: true, vhost: k, route: -1}.errorf("invalid vhost key: %s", why)
			break
		}
		norms = append(norms, norm)
		kinds = append(kinds, kind)
		if kind == hostWild {
			nw++
		}
	}
	s.exact, s.wild = newHostTable(len(norms)-nw), newHostTable(nw)
	s.vhosts = make([]*vhost, 0, len(norms))
	for i, norm := range norms {
		h := s.exact
		switch kinds[i] {
		case hostAll: // one key only
			s.catchAll = &vhost{norm: norm, key: keys[i]}
			s.vhosts = append(s.vhosts, s.catchAll)
			continue
		case hostWild:
			h = s.wild
		}
		// layout moves norm into the vhost's own string
		vh, other := h.reserve(norm, keys[i])
		if other != nil {
			c := errCtx{file: name, inVhost: true, vhost: keys[i], route: -1}
			return s, c.errorf("same host as vhost %q (keys are case-insensitive)", other.key)
		}
		s.vhosts = append(s.vhosts, vh)
	}
	return s, keyErr
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

// table builds the Table of the vhosts, all compiled. The set must not be
// used afterwards.
func (s *vhostSet) table() *Table {
	t := &Table{vhosts: s.vhosts, exact: s.exact, wild: s.wild, catchAll: s.catchAll}
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
	t.stats = Stats{Vhosts: len(t.vhosts), Routes: b.routes, Endpoints: len(t.refs)}
	t.policies = b.policies
	t.passDefault = s.opts.CachePass
	t.secret = s.opts.SessionSecret
	t.shared = b.adopted > 0
	*s = vhostSet{}
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
	scr      scratch // reused from vhost to vhost
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
	routes := slices.Grow(b.scr.sorted[:0], len(vj.Routes))[:len(vj.Routes)]
	defer func() { clear(routes); b.scr.sorted = routes[:0] }()
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
	vh.scope = newScopeIndex(routes, &b.scr)
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
	vh.layout(crs, routes, &b.scr)
	vh.scanInputs()
	vh.unpicked = slices.Clip(b.unpicked)
	return nil
}

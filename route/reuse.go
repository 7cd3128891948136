package route

// Reuse of compiled vhosts across generations (Options.Prev). A file
// rewritten with a few changed routes (what a Kubernetes controller
// writes) compiles only the vhosts that changed: the others are the
// previous table's, shared, so a reload of a large table costs little
// time and little memory.
//
// It is exact. A vhost's compiled form depends on its key, its value and
// the session secret (its session tokens), nothing else: the other
// settings (Options.CachePass) are the table's, endpoint lists are interned
// by content (Endpoint values and probe IDs are what the shim sees, not
// list identity), rings are found by content and named by a hash of it.
// So a vhost is adopted when its key is the same, the SHA-256 of its value
// is that of the value the previous vhost was compiled from (vhost.src,
// set only by the streamed compile, after it succeeded), and the secret
// is the same. A value that decoded and compiled without an error then
// does so again, so an adopted vhost is neither decoded nor compiled.
// TestReuse holds it to a fresh compile.

import (
	"bytes"
	"net/netip"

	"github.com/varnish/ghost/route/ring"
)

// adoptable returns, for each of keys (sorted), o.Prev's vhost of the
// same key, or nil when there is none; nil when no vhost may be adopted
// (no Prev, or another session secret).
func adoptable(o *Options, keys []string) []*vhost {
	p := o.Prev
	if p == nil || len(p.vhosts) == 0 || !bytes.Equal(p.secret, o.SessionSecret) {
		return nil
	}
	out := make([]*vhost, len(keys))
	j := 0
	for i, key := range keys { // both sorted
		for j < len(p.vhosts) && p.vhosts[j].key < key {
			j++
		}
		if j < len(p.vhosts) && p.vhosts[j].key == key {
			out[i] = p.vhosts[j]
		}
	}
	return out
}

// adopt makes *dst (a slot) prev's vhost pv (one of prev.vhosts), sharing
// everything it holds, and records its endpoints, probes and rings as its
// compile would have.
func (b *builder) adopt(dst, pv *vhost, prev *Table) {
	hash := dst.hash // of dst's slot
	*dst = *pv
	dst.hash = hash
	for i := range dst.routes {
		b.adoptRoute(&dst.routes[i], prev)
	}
	for _, e := range dst.unpicked {
		b.adoptEndpoint(e, prev)
	}
	if dst.def != nil {
		b.adoptRoute(dst.def, prev)
	}
	b.count(dst)
	b.adopted++
}

// adoptEndpoint records an endpoint of an adopted vhost, under prev's
// interned list.
func (b *builder) adoptEndpoint(e Endpoint, prev *Table) {
	a, _ := netip.ParseAddr(e.Address)
	ap := netip.AddrPortFrom(a, e.Port)
	if _, ok := b.refs[ap]; ok {
		return
	}
	s, ok := prev.refs[ap]
	if !ok {
		s = []Endpoint{e}
	}
	b.refs[ap] = s
}

// adoptRoute records the endpoints, probes and ring of an adopted route.
// The endpoint lists are prev's, so that the tables share them.
func (b *builder) adoptRoute(r *croute, prev *Table) {
	for _, g := range r.groups {
		for _, e := range g.Endpoints {
			b.adoptEndpoint(e, prev)
		}
	}
	b.noteProbes(r.health.health, r.groups)
	if r.balancer != nil && r.balancer.Ring != nil {
		if b.ringIDs == nil {
			b.ringIDs = map[uint64]*ring.Ring{}
		}
		b.ringIDs[r.balancer.RingID] = r.balancer.Ring
	}
}

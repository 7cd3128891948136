package route

// The byte layout of a compiled vhost: routes grouped into buckets by path
// key, and one string arena holding the lookup key, the bucket keys, the
// matcher strings and the bucket records, so that a decision touches few
// allocations.

import (
	"encoding/binary"
	"slices"
	"strings"
)

// layout stores the routes (sorted by precedence) by value, grouped into
// buckets, and builds the bucket indexes. crs is the array the routes were
// compiled into (route i at crs[i], sorted points into it): it is reordered
// in place and becomes vh.routes.
//
// scr holds the builder's scratch arrays, reused from vhost to vhost (they
// would be a large part of a large reload's garbage).
func (vh *vhost) layout(crs []croute, sorted []*croute, scr *scratch) {
	// Bucket order: Exact by key; PathPrefix by key length (longest
	// first), then key; then regex; then the rest. A stable sort keeps
	// precedence order inside each bucket.
	idx := scr.idx[:0] // order[i] = sorted[idx[i]]
	for i := range sorted {
		idx = append(idx, int32(i))
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
	order := slices.Grow(scr.order[:0], len(sorted))[:len(sorted)]
	where := slices.Grow(scr.where[:0], len(sorted))[:len(sorted)] // sorted[j] is stored at routes[where[j]]
	defer func() { clear(order); scr.idx, scr.order, scr.where = idx[:0], order[:0], where[:0] }()
	for i, j := range idx {
		order[i] = sorted[j]
		where[j] = int32(i)
	}
	// Buckets: runs of routes sharing an Exact value or a PathPrefix key.
	// The order puts every Exact bucket before every PathPrefix bucket.
	ents := scr.ents[:0]
	defer func() { clear(ents); scr.ents = ents[:0] }()
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
			ents = append(ents, bucketEnt{key: k, lo: n, hi: n + 1})
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
		hpool, rt.headers = moveMatchers(hpool, rt.headers, func(h *headerMatch) {
			h.name, h.value = take(h.name), take(h.value)
		})
		qpool, rt.query = moveMatchers(qpool, rt.query, func(q *queryMatch) {
			q.name, q.value = take(q.name), take(q.value)
		})
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

// bucketEnt is a bucket while layout builds the arena.
type bucketEnt struct {
	key    string
	off    int // of the key in the arena
	lo, hi int32
}

// scratch holds a builder's arrays that compiling a vhost needs only
// while it runs (layout, scopeLens), reused by the next vhost.
type scratch struct {
	sorted        []*croute
	order         []*croute
	idx, where    []int32
	ents          []bucketEnt
	first, second []int
}

// moveMatchers appends a route's matchers ms to the vhost's pool, each with
// its strings moved into the arena by move, and returns the pool and the
// matchers' place in it (ms itself when it is empty).
func moveMatchers[M any](pool, ms []M, move func(*M)) ([]M, []M) {
	if len(ms) == 0 {
		return pool, ms
	}
	lo := len(pool)
	for _, m := range ms {
		move(&m)
		pool = append(pool, m)
	}
	return pool, pool[lo:len(pool):len(pool)]
}

package route

// The consistent ring of a cluster: every member has shardReplicas points
// on a 32-bit circle, a key belongs to the first point clockwise from its
// hash (the shard director's construction), so a member joining or
// leaving moves only the keys next to its own points: about 1/n of them.

import (
	"encoding/binary"
	"slices"
	"strconv"
)

// shardReplicas is the number of points per member.
const shardReplicas = 160

type shardRing struct {
	points []uint32 // ascending
	owners []int    // parallel: member index
	n      int      // members
}

// buildShardRing places each member's points (shardKeyHash of
// "<member>#<i>"); ties are broken by member index.
func buildShardRing(ms []Endpoint) shardRing {
	type pt struct {
		p uint32
		m int
	}
	pts := make([]pt, 0, len(ms)*shardReplicas)
	for i, m := range ms {
		base := m.String() + "#"
		for j := 0; j < shardReplicas; j++ {
			pts = append(pts, pt{shardKeyHash(base + strconv.Itoa(j)), i})
		}
	}
	slices.SortFunc(pts, func(a, b pt) int {
		if a.p != b.p {
			if a.p < b.p {
				return -1
			}
			return 1
		}
		return a.m - b.m
	})
	r := shardRing{points: make([]uint32, len(pts)), owners: make([]int, len(pts)), n: len(ms)}
	for i, p := range pts {
		r.points[i], r.owners[i] = p.p, p.m
	}
	return r
}

// owner is the first member clockwise from h that down does not report
// (down may be nil); -1 when there is none.
func (r *shardRing) owner(h uint32, down func(int) bool) int {
	if len(r.points) == 0 {
		return -1
	}
	i, _ := slices.BinarySearch(r.points, h)
	for k := 0; k < len(r.points); k++ {
		m := r.owners[(i+k)%len(r.points)]
		if down == nil || !down(m) {
			return m
		}
	}
	return -1
}

// RingPoints returns the ring as the data plane receives it: ascending
// points and, parallel, the index of their member.
func (c *Cluster) RingPoints() ([]uint32, []int) { return c.ring.points, c.ring.owners }

// shardKeyHash is the high 32 bits of ghostHash(s, 0): the shim's
// ghost_hash() (vmod-shim/memo.c), so both sides place keys alike.
func shardKeyHash(s string) uint32 { return uint32(ghostHash([]byte(s), 0) >> 32) }

// ghostHash is the shim's 64-bit multiply-xorshift hash (ghost_hash()).
func ghostHash(b []byte, seed uint64) uint64 {
	l := uint64(len(b))
	h := seed ^ (0x9e3779b97f4a7c15 * (l + 1))
	for len(b) >= 8 {
		h = (h ^ binary.LittleEndian.Uint64(b)) * 0xff51afd7ed558ccd
		h ^= h >> 32
		b = b[8:]
	}
	var last [8]byte
	copy(last[:], b)
	h = (h ^ binary.LittleEndian.Uint64(last[:])) * 0xc4ceb9fe1a85ec53
	h ^= h >> 29
	h *= 0xff51afd7ed558ccd
	return h ^ (h >> 32)
}

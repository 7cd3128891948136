// Package ring is ghost's consistent-hash ring: members (endpoints of a
// route, Varnish nodes of a cluster, anything with a stable identity)
// own points on a 64-bit circle in proportion to their weight, and a key
// belongs to the member of the first point at or after the key's hash.
//
// The ring is built here, in Go, once per table (ghostd), and looked up
// in C (vmod-shim/ring.c) per request, without a round trip: Encode gives
// the points as the bytes the shim reads, Hash is the key hash both sides
// compute (the C twin is ghost_ring_hash), and testdata/ring_vectors.txt,
// written by TestVectors and checked by test/cshim/ring_test.c, holds both
// to the same results.
//
// The anchor is the shard director of Varnish's vmod_directors: each
// member gets replicas (points) hashed from its identity, so a member
// that joins or leaves moves only the keys of its own points (about 1/N
// of them for N equal members) and every other key stays where it was;
// weights scale the replicas; Walk goes round the ring to the next
// distinct member, as the shard director's alt and healthy=CHOSEN do, to
// skip members that are down. The differences: 64-bit points and key
// hashes (no collisions to speak of), about 160 replicas per member on
// average rather than 67 (a more even split; see ring_test.go for the
// measured figures), and a ring that does not depend on the order in
// which members are given, only on their identities and weights.
//
// Use for a ring over Varnish nodes (self-sharding):
//
//	r, err := ring.New([]ring.Member{{ID: "varnish-0"}, {ID: "varnish-1"}, {ID: "varnish-2"}})
//	owner := r.Lookup(ring.Hash(key))                     // index into the members
//	next := r.Walk(ring.Hash(key), func(m int) bool { return up[m] })
//	blob := r.Encode()                                    // for the shim: ghost_ring_walk()
//
// Every node that builds the ring from the same members (same IDs and
// weights, in any order) gets the same owner for every key.
package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
)

const (
	// Replicas is the average number of points per member.
	Replicas = 160
	// MaxMembers bounds a ring (the shim's walk keeps one bit per member).
	MaxMembers = 4096
	// budget bounds the points of a ring: Replicas per member up to
	// budget/Replicas members, fewer per member beyond (at most
	// budget + MaxMembers = 65536 points, 768 KiB encoded).
	budget = 61440
	// PointSize is the size of one encoded point: the 64-bit position
	// and the 32-bit member index, both big-endian.
	PointSize = 12
)

// Member is one owner of key space. ID is its identity: the ring places
// its points from ID alone, so the same ID owns the same keys in every
// ring it is in (an endpoint "10.0.0.1:8080", a node name). The member's
// weight is Weight/Share (Share 0 counts as 1; Weight 0 with Share 0
// counts as 1 when every member has Weight 0 — i.e. members without
// weights are equal): a route's group of weight w with n endpoints gives
// each endpoint Weight w, Share n. A member of weight 0 owns nothing
// (Lookup and Walk never return it) but keeps its index.
type Member struct {
	ID     string
	Weight uint64
	Share  uint64
}

// Point is one point of the ring: its position and the index of the
// member that owns it.
type Point struct {
	Hash   uint64
	Member uint32
}

// Ring is an immutable consistent-hash ring.
type Ring struct {
	// Members as given to New: Point.Member, Lookup and Walk index them.
	Members []Member
	// Points sorted by Hash (ties, practically never seen, by member ID).
	Points []Point
}

// Hash is the key hash of the ring: FNV-1a (64-bit) over b, then
// MurmurHash3's 64-bit finaliser so that keys differing in their last
// byte spread over the whole circle. vmod-shim/ring.c's
// ghost_ring_hash() computes the same value; change both and regenerate
// the vectors.
func Hash(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return fmix(h)
}

// HashString is Hash of the bytes of s.
func HashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return fmix(h)
}

func fmix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// ErrEmpty: no member has a positive weight.
var ErrEmpty = errors.New("no member with a positive weight")

// New builds the ring of members. Member i gets about
// Replicas × N × weight_i / Σweight points (N: members of positive
// weight; at least 1 point each, fewer per member beyond 384 members so
// that a ring stays within 65536 points); replica r of a member sits at
// HashString(ID + "\x00" + r), so a member keeps its points when others
// come and go. Errors: no member, more than MaxMembers, an empty or
// duplicate ID, no positive weight (ErrEmpty).
func New(members []Member) (*Ring, error) {
	if len(members) == 0 {
		return nil, ErrEmpty
	}
	if len(members) > MaxMembers {
		return nil, fmt.Errorf("%d members, at most %d", len(members), MaxMembers)
	}
	seen := make(map[string]bool, len(members))
	weights := make([]*big.Rat, len(members))
	total := new(big.Rat)
	allZero := true
	for _, m := range members {
		if m.Weight != 0 {
			allZero = false
		}
	}
	n := 0
	for i, m := range members {
		if m.ID == "" {
			return nil, fmt.Errorf("member %d: empty ID", i)
		}
		if seen[m.ID] {
			return nil, fmt.Errorf("member %d: duplicate ID %q", i, m.ID)
		}
		seen[m.ID] = true
		w, s := m.Weight, m.Share
		if allZero {
			w = 1
		}
		if s == 0 {
			s = 1
		}
		weights[i] = new(big.Rat).SetFrac(new(big.Int).SetUint64(w), new(big.Int).SetUint64(s))
		if w > 0 {
			n++
			total.Add(total, weights[i])
		}
	}
	if n == 0 {
		return nil, ErrEmpty
	}
	unit := int64(Replicas)
	if unit*int64(n) > budget {
		unit = budget / int64(n)
	}
	r := &Ring{Members: members}
	scale := new(big.Rat).SetInt64(unit * int64(n))
	scale.Quo(scale, total)
	for i, m := range members {
		if weights[i].Sign() == 0 {
			continue
		}
		reps := roundRat(new(big.Rat).Mul(weights[i], scale))
		if reps < 1 {
			reps = 1
		}
		id := []byte(m.ID + "\x00")
		for rep := int64(0); rep < reps; rep++ {
			r.Points = append(r.Points, Point{
				Hash:   Hash(strconv.AppendInt(id, rep, 10)),
				Member: uint32(i),
			})
		}
	}
	sort.Slice(r.Points, func(a, b int) bool {
		pa, pb := r.Points[a], r.Points[b]
		if pa.Hash != pb.Hash {
			return pa.Hash < pb.Hash
		}
		return members[pa.Member].ID < members[pb.Member].ID
	})
	return r, nil
}

// roundRat rounds a non-negative rational to the nearest integer, halves up.
func roundRat(x *big.Rat) int64 {
	num := new(big.Int).Mul(x.Num(), big.NewInt(2))
	num.Add(num, x.Denom())
	den := new(big.Int).Mul(x.Denom(), big.NewInt(2))
	return num.Quo(num, den).Int64()
}

// start is the index of the first point at or after h, wrapping round.
func (r *Ring) start(h uint64) int {
	i := sort.Search(len(r.Points), func(i int) bool { return r.Points[i].Hash >= h })
	if i == len(r.Points) {
		i = 0
	}
	return i
}

// Lookup is the index of the member that owns the key hash h: the owner
// of the first point at or after h (the first point when none is).
func (r *Ring) Lookup(h uint64) int {
	if len(r.Points) == 0 {
		return -1
	}
	return int(r.Points[r.start(h)].Member)
}

// Walk is the first member, going round the ring from h, that ok
// accepts: the owner of h if ok(owner), else the next distinct member
// on the ring, and so on (each member is asked at most once); -1 when ok
// accepts none. vmod-shim/ring.c's ghost_ring_walk() walks the same way.
func (r *Ring) Walk(h uint64, ok func(member int) bool) int {
	if len(r.Points) == 0 {
		return -1
	}
	asked := make([]bool, len(r.Members))
	i := r.start(h)
	for k := 0; k < len(r.Points); k++ {
		m := int(r.Points[(i+k)%len(r.Points)].Member)
		if asked[m] {
			continue
		}
		asked[m] = true
		if ok(m) {
			return m
		}
	}
	return -1
}

// Encode is the ring's points as the shim reads them
// (ghost_ring_walk()): PointSize bytes per point in ring order, the
// 64-bit position then the 32-bit member index, big-endian.
func (r *Ring) Encode() []byte {
	b := make([]byte, 0, len(r.Points)*PointSize)
	for _, p := range r.Points {
		b = binary.BigEndian.AppendUint64(b, p.Hash)
		b = binary.BigEndian.AppendUint32(b, p.Member)
	}
	return b
}

// ID identifies the ring's content (members' IDs in order, and points):
// two rings with the same ID are the same ring, so a cache of encoded
// rings in the shim may be keyed on it across table generations.
func (r *Ring) ID() uint64 {
	b := r.Encode()
	for _, m := range r.Members {
		b = append(b, m.ID...)
		b = append(b, 0)
	}
	return Hash(b)
}

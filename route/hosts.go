package route

import (
	"hash/maphash"
	"math/bits"
)

// hostTable maps lookup keys (lower-case hostnames, or ".suffix" for
// wildcards) to vhosts. It is an open-addressing hash table whose slots
// are the vhosts themselves, so a lookup touches one slot — which is the
// vhost, holding its hash and the key string that also holds its bucket
// keys — rather than a map's directory, table and group arrays and then a
// separate vhost. That keeps the memory a decision touches small and its
// cost flat as the number of vhosts grows.
type hostTable struct {
	seed  maphash.Seed
	slots []vhost // a slot is empty when its key is ""
	mask  uint64
	n     int
}

func newHostTable(n int) *hostTable {
	size := uint64(1)
	if n > 0 {
		size = 1 << bits.Len64(uint64(n)*2-1) // load factor ≤ 1/2
	}
	return &hostTable{seed: maphash.MakeSeed(), slots: make([]vhost, size), mask: size - 1}
}

// reserve takes the slot of lookup key norm for the vhost of key (as
// written) and returns it, with its norm, key and hash set: the vhost is
// compiled in place. When norm is in the table already, it returns the
// vhost there as other instead (and vh nil). One probe sequence for both:
// the slots are most of a large table, and newVhostSet reserves every
// vhost's on one core.
func (h *hostTable) reserve(norm, key string) (vh, other *vhost) {
	hash := maphash.String(h.seed, norm)
	for i := hash & h.mask; ; i = (i + 1) & h.mask {
		s := &h.slots[i]
		if s.key == "" {
			s.norm, s.key, s.hash = norm, key, hash
			h.n++
			return s, nil
		}
		if s.hash == hash && s.norm == norm {
			return nil, s
		}
	}
}

// size is the number of keys (0 for a nil table).
func (h *hostTable) size() int {
	if h == nil {
		return 0
	}
	return h.n
}

// hostKey is a host to look up: a string, or a byte buffer holding a host
// lower-cased in place, which is looked up without allocating.
type hostKey interface{ string | []byte }

// getHost returns the vhost stored under key in h, or nil.
func getHost[K hostKey](h *hostTable, key K) *vhost {
	if h.size() == 0 {
		return nil
	}
	var hash uint64
	switch k := any(key).(type) {
	case string:
		hash = maphash.String(h.seed, k)
	case []byte:
		hash = maphash.Bytes(h.seed, k)
	}
	for i := hash & h.mask; ; i = (i + 1) & h.mask {
		s := &h.slots[i]
		if s.key == "" {
			return nil
		}
		if s.hash == hash && s.norm == string(key) {
			return s
		}
	}
}

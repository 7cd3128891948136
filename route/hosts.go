package route

import (
	"hash/maphash"
	"math/bits"
)

// hostTable maps lookup keys (lower-case hostnames, or ".suffix" for
// wildcards) to vhosts. It is an open-addressing hash table in one array
// of (hash, vhost) slots, so a lookup touches the slot array and the vhost
// itself (which holds its key) — few pages even with 100,000 vhosts, where
// a general map would walk its directory, table and group arrays.
type hostTable struct {
	seed  maphash.Seed
	slots []hostSlot
	mask  uint64
	n     int
}

type hostSlot struct {
	hash uint64
	vh   *vhost // nil = empty slot
}

func newHostTable(n int) *hostTable {
	size := uint64(8)
	if n > 2 {
		size = 1 << bits.Len64(uint64(n)*2) // load factor ≤ 1/2
	}
	return &hostTable{seed: maphash.MakeSeed(), slots: make([]hostSlot, size), mask: size - 1}
}

// put adds vh under vh.norm (keys are unique: compile rejects duplicates).
func (h *hostTable) put(vh *vhost) {
	hash := maphash.String(h.seed, vh.norm)
	for i := hash & h.mask; ; i = (i + 1) & h.mask {
		if h.slots[i].vh == nil {
			h.slots[i] = hostSlot{hash: hash, vh: vh}
			h.n++
			return
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

// get returns the vhost stored under key, or nil.
func (h *hostTable) get(key string) *vhost {
	if h == nil || h.n == 0 {
		return nil
	}
	hash := maphash.String(h.seed, key)
	for i := hash & h.mask; ; i = (i + 1) & h.mask {
		s := &h.slots[i]
		if s.vh == nil {
			return nil
		}
		if s.hash == hash && s.vh.norm == key {
			return s.vh
		}
	}
}

// getBytes is get for a key in a byte buffer, without allocating.
func (h *hostTable) getBytes(key []byte) *vhost {
	if h == nil || h.n == 0 {
		return nil
	}
	hash := maphash.Bytes(h.seed, key)
	for i := hash & h.mask; ; i = (i + 1) & h.mask {
		s := &h.slots[i]
		if s.vh == nil {
			return nil
		}
		if s.hash == hash && s.vh.norm == string(key) {
			return s.vh
		}
	}
}

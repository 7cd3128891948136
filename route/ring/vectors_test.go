package ring

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/varnish/ghost/route/routetest"
)

// vectorPath is the file vmod-shim/ring.c is tested against
// (test/cshim/ring_test.c, run by make test-c): the shim hashes keys and
// walks rings ghostd built, so it must do both exactly as Hash and Walk.
const vectorPath = "testdata/ring_vectors.txt"

// vectorText renders the vectors:
//
//	hash <key, hex; "-" empty> <Hash(key)>
//	ring <members> <Encode(), hex>
//	walk <h> <members refused, comma-separated; "-" none> <Walk's result>
//
// walk lines belong to the ring line before them.
func vectorText() []byte {
	var b bytes.Buffer
	b.WriteString(`# Consistent-hash ring vectors, written by route/ring/vectors_test.go
# (GHOST_UPDATE_VECTORS=1 go test ./route/ring -run TestVectors) and
# checked by it and by test/cshim/ring_test.c against vmod-shim/ring.c.
#
# hash <key bytes, hex; - when empty> <ring.Hash(key), decimal>
# ring <number of members> <ring.Encode(), hex>
# walk <h, decimal> <members refused: indexes, comma-separated; - none> <ring.Walk(h, accept the others); -1 none>
`)
	rng := rand.New(rand.NewPCG(13, 90))
	hashKeys := [][]byte{nil, []byte("a"), []byte("/"), []byte("/index.html"),
		[]byte("/product/17?v=1"), []byte("192.0.2.1"), []byte("2001:db8::1"),
		{0}, {0xff, 0, 0x80}, bytes.Repeat([]byte("x"), 1000)}
	for i := 0; i < 20; i++ {
		k := make([]byte, rng.IntN(64))
		for j := range k {
			k[j] = byte(rng.Uint32())
		}
		hashKeys = append(hashKeys, k)
	}
	for _, k := range hashKeys {
		s := "-"
		if len(k) > 0 {
			s = hex.EncodeToString(k)
		}
		fmt.Fprintf(&b, "hash %s %d\n", s, Hash(k))
	}
	rings := [][]Member{
		{{ID: "10.0.0.1:80"}},
		{{ID: "10.0.0.1:80"}, {ID: "10.0.0.2:80"}, {ID: "10.0.0.3:80"}},
		{{ID: "a", Weight: 1}, {ID: "b", Weight: 2}, {ID: "c", Weight: 0}, {ID: "d", Weight: 1}},
		{{ID: "varnish-0"}, {ID: "varnish-1"}, {ID: "varnish-2"}, {ID: "varnish-3"}, {ID: "varnish-4"}},
		{{ID: "g0e0", Weight: 90, Share: 2}, {ID: "g0e1", Weight: 90, Share: 2}, {ID: "g1e0", Weight: 10}},
	}
	for _, m := range rings {
		r, err := New(m)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(&b, "ring %d %s\n", len(m), hex.EncodeToString(r.Encode()))
		hs := []uint64{0, 1, math.MaxUint64, r.Points[0].Hash, r.Points[0].Hash + 1,
			r.Points[len(r.Points)-1].Hash, r.Points[len(r.Points)-1].Hash + 1}
		for i := 0; i < 16; i++ {
			hs = append(hs, rng.Uint64())
		}
		for _, h := range hs {
			refusals := [][]int{nil, {r.Lookup(h)}}
			var some []int
			for i := range m {
				if rng.IntN(2) == 0 {
					some = append(some, i)
				}
			}
			all := make([]int, len(m))
			for i := range all {
				all[i] = i
			}
			refusals = append(refusals, some, all)
			for _, ref := range refusals {
				no := map[int]bool{}
				txt := make([]string, len(ref))
				for i, x := range ref {
					no[x] = true
					txt[i] = strconv.Itoa(x)
				}
				s := strings.Join(txt, ",")
				if s == "" {
					s = "-"
				}
				got := r.Walk(h, func(x int) bool { return !no[x] })
				fmt.Fprintf(&b, "walk %d %s %d\n", h, s, got)
			}
		}
	}
	return b.Bytes()
}

// TestVectors: the vector file is what Hash, Encode and Walk compute
// today. A change to them changes the file (regenerate it), and with it
// what the C test demands of the shim.
func TestVectors(t *testing.T) {
	routetest.VectorFile(t, vectorPath, vectorText(), "./route/ring", "the ring", "TestVectors")
}

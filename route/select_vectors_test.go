package route

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// selectVectors is what vmod-shim's ghost_select is checked against
// (test/cshim/pick_test.c, second file): the pick with health, panic and
// tried endpoints must be exactly Select.
const selectVectors = "testdata/select_vectors.txt"

func flatList(s map[int]bool, n int) string {
	var l []string
	for f := 0; f < n; f++ {
		if s[f] {
			l = append(l, strconv.Itoa(f))
		}
	}
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ",")
}

func selectVectorText() []byte {
	var b bytes.Buffer
	b.WriteString(`# Pick-with-health vectors, written by route/select_vectors_test.go
# (GHOST_UPDATE_VECTORS=1 go test ./route -run TestSelectVectors) and
# checked by it and by test/cshim/pick_test.c against vmod-shim/pick.c.
#
# u groups sick tried panic group endpoint panicked
#   u, groups: as in pick_vectors.txt
#   sick, tried: flat indices f,f,... or "-" for none
#   panic: the answer's pn (percent)
#   group endpoint: Select's result, -1 -1 when nothing can be picked;
#   panicked: 1 when the panic rule applied
`)
	configs := [][][2]uint64{
		{{1, 1}},
		{{1, 3}},
		{{100, 1}, {100, 1}, {100, 1}},
		{{90, 3}, {10, 2}},
		{{1, 2}, {1, 1}},
		{{70, 1}, {30, 1}},
		{{5, 4}, {5, 4}, {1, 1}},
	}
	rng := rand.New(rand.NewPCG(12, 85))
	for i := 0; i < 16; i++ {
		c := make([][2]uint64, 1+rng.IntN(6))
		for j := range c {
			c[j] = [2]uint64{1 + rng.Uint64N(1000), uint64(1 + rng.IntN(5))}
		}
		configs = append(configs, c)
	}
	for _, c := range configs {
		var d Decision
		n := 0
		for gi, g := range c {
			grp := Group{Weight: g[0]}
			for e := uint64(0); e < g[1]; e++ {
				grp.Endpoints = append(grp.Endpoints, Endpoint{Address: fmt.Sprintf("g%de%d", gi, e), Port: 80})
			}
			d.Groups = append(d.Groups, grp)
			n += int(g[1])
		}
		for k := 0; k < 10; k++ {
			sick, tried := map[int]bool{}, map[int]bool{}
			for f := 0; f < n; f++ {
				switch {
				case k == 1 || (k > 2 && rng.IntN(3) == 0):
					sick[f] = true // k 1: every endpoint sick
				}
				if k >= 6 && rng.IntN(3) == 0 {
					tried[f] = true
				}
			}
			panics := []int{0, 50, 100}
			us := []uint64{0, math.MaxUint64, rng.Uint64(), rng.Uint64(), rng.Uint64()}
			for _, pn := range panics {
				for _, u := range us {
					var sf, tf func(int) bool
					if len(sick) > 0 || k == 2 {
						sf = func(f int) bool { return sick[f] }
					}
					if len(tried) > 0 {
						tf = func(f int) bool { return tried[f] }
					}
					g, e, p, ok := d.Select(u, sf, tf, pn)
					if !ok {
						g, e = -1, -1
					}
					pb := 0
					if p {
						pb = 1
					}
					fmt.Fprintf(&b, "%d %s %s %s %d %d %d %d\n", u, groupsText(c),
						flatList(sick, n), flatList(tried, n), pn, g, e, pb)
				}
			}
		}
	}
	return b.Bytes()
}

// TestSelectVectors: the vector file is what Select computes today.
func TestSelectVectors(t *testing.T) {
	vectorFile(t, selectVectors, selectVectorText(), "Select", "TestSelectVectors")
}

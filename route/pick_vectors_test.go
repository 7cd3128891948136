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

// pickVectors is the file vmod-shim's weighted pick is tested against
// (test/cshim/pick_test.c, run by make test): the shim picks per request
// among the groups of a (memoised) answer, so it must pick exactly as
// Pick does.
const pickVectors = "testdata/pick_vectors.txt"

// pickVectorText renders the vectors: one line per (groups, u) with
// the expected group and endpoint (-1 -1 when nothing can be picked).
func pickVectorText() []byte {
	var b bytes.Buffer
	b.WriteString(`# Weighted pick vectors, written by route/pick_vectors_test.go
# (GHOST_UPDATE_VECTORS=1 go test ./route -run TestPickVectors) and
# checked by it and by test/cshim/pick_test.c against vmod-shim/pick.c.
#
# u groups group endpoint skip
#   u: the random 64-bit number, decimal
#   groups: weight/endpoints,... ("-" for none); endpoint e of group g
#   is any distinct address
#   group endpoint: the result, -1 -1 when nothing can be picked
#   skip: "-" (Pick), or the flat indices PickAmong leaves out, f,f,...
`)
	configs := [][][2]uint64{
		{},
		{{0, 1}},
		{{5, 0}},
		{{1, 1}},
		{{1, 3}},
		{{0, 1}, {1, 3}, {7, 0}},
		{{1, 1}, {1, 2}},
		{{70, 1}, {0, 1}, {30, 1}},
		{{90, 3}, {0, 1}, {100, 1}},
		{{MaxWeight, 5}, {MaxWeight, 7}, {3, 2}},
		{{1, 1000}},
		{{MaxWeight, 1}, {1, 1}},
	}
	many := make([][2]uint64, 64)
	for i := range many {
		many[i] = [2]uint64{MaxWeight, 1}
	}
	configs = append(configs, many)
	rng := rand.New(rand.NewPCG(15, 3))
	for i := 0; i < 24; i++ {
		c := make([][2]uint64, 1+rng.IntN(8))
		for j := range c {
			w := rng.Uint64N(MaxWeight + 1)
			switch rng.IntN(4) {
			case 0:
				w = rng.Uint64N(4)
			case 1:
				w = rng.Uint64N(200)
			}
			c[j] = [2]uint64{w, uint64(rng.IntN(6))}
		}
		configs = append(configs, c)
	}
	for _, c := range configs {
		var d Decision
		for gi, g := range c {
			grp := Group{Weight: g[0]}
			for e := uint64(0); e < g[1]; e++ {
				grp.Endpoints = append(grp.Endpoints, Endpoint{Address: fmt.Sprintf("g%de%d", gi, e), Port: 80})
			}
			d.Groups = append(d.Groups, grp)
		}
		us := []uint64{0, 1, math.MaxUint64, 1 << 63, 1<<63 - 1, math.MaxUint64 / 3}
		for i := 0; i < 12; i++ {
			us = append(us, rng.Uint64())
		}
		for _, u := range us {
			g, e, ok := d.Pick(u)
			if !ok {
				g, e = -1, -1
			}
			fmt.Fprintf(&b, "%d %s %d %d -\n", u, groupsText(c), g, e)
		}
		// the same groups with endpoints left out (tried, unhealthy)
		nflat := 0
		for _, g := range c {
			nflat += int(g[1])
		}
		if nflat == 0 || nflat > 64 {
			continue
		}
		for k := 0; k < 4; k++ {
			out := map[int]bool{}
			var list []string
			for f := 0; f < nflat; f++ {
				if rng.IntN(3) == 0 || (k == 3 && f > 0) {
					out[f] = true
					list = append(list, strconv.Itoa(f))
				}
			}
			if len(list) == 0 {
				continue
			}
			for _, u := range us[:8] {
				g, e, ok := d.PickAmong(u, func(f int) bool { return out[f] })
				if !ok {
					g, e = -1, -1
				}
				fmt.Fprintf(&b, "%d %s %d %d %s\n", u, groupsText(c), g, e, strings.Join(list, ","))
			}
		}
	}
	return b.Bytes()
}

func groupsText(c [][2]uint64) string {
	if len(c) == 0 {
		return "-"
	}
	s := make([]string, len(c))
	for i, g := range c {
		s[i] = strconv.FormatUint(g[0], 10) + "/" + strconv.FormatUint(g[1], 10)
	}
	return strings.Join(s, ",")
}

// TestPickVectors: the vector file is what Pick computes today. A change
// to Pick changes the file (regenerate it), and with it what the C test
// demands of the shim.
func TestPickVectors(t *testing.T) {
	vectorFile(t, pickVectors, pickVectorText(), "Pick", "TestPickVectors")
}

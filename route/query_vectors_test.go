package route

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// queryVectors is the file vmod-shim's query parameter reader is tested
// against (test/cshim/query_test.c, run by make test): the shim keys
// memoised decisions on the value class of the parameters a vhost matches
// Exact (Deps.QueryValues), so it must find a parameter's value exactly
// as queryValue does.
const queryVectors = "testdata/query_vectors.txt"

func hexOrDash(s string) string {
	if s == "" {
		return "-"
	}
	return hex.EncodeToString([]byte(s))
}

// queryVectorText renders one line per (query, name): both hex-encoded
// ("-" when empty), then 1 and the value (hex) when queryValue finds the
// name, else 0 -.
func queryVectorText() []byte {
	var b bytes.Buffer
	b.WriteString(`# Query parameter vectors, written by route/query_vectors_test.go
# (GHOST_UPDATE_VECTORS=1 go test ./route -run TestQueryVectors) and
# checked by it and by test/cshim/query_test.c against vmod-shim/query.c.
#
# query name found value   (query, name, value hex-encoded, "-" when empty;
#                           found 1/0: queryValue's result)
`)
	cases := [][2]string{
		{"", "v"}, {"v=1", "v"}, {"v=", "v"}, {"v", "v"}, {"v&v=2", "v"}, {"vv=2&v=3", "v"},
		{"a=1&v=2&v=3", "v"}, {"=x&v=1", ""}, {"=x", ""}, {"&&v=1&", "v"}, {"v=1=2", "v"},
		{"V=1", "v"}, {"v%3D=1", "v"}, {"a=b&", "a"}, {"&", ""}, {"x=1;v=2", "v"}, {"v=a b", "v"},
		{"v=1#frag", "v"}, {"q=?x", "q"}, {"é=1&v=é", "é"},
	}
	rng := rand.New(rand.NewPCG(16, 5))
	names := []string{"v", "w", "vv", "", "V", "é"}
	vals := []string{"", "1", "a=b", "é", "?", "%20"}
	for i := 0; i < 300; i++ {
		var pairs []string
		for n := rng.IntN(5); n > 0; n-- {
			p := names[rng.IntN(len(names))]
			if rng.IntN(4) != 0 {
				p += "=" + vals[rng.IntN(len(vals))]
			}
			pairs = append(pairs, p)
		}
		cases = append(cases, [2]string{strings.Join(pairs, "&"), names[rng.IntN(len(names))]})
	}
	for _, c := range cases {
		v, ok := queryValue(c[0], c[1])
		found, val := 0, "-"
		if ok {
			found, val = 1, hexOrDash(v)
		}
		fmt.Fprintf(&b, "%s %s %d %s\n", hexOrDash(c[0]), hexOrDash(c[1]), found, val)
	}
	return b.Bytes()
}

// TestQueryVectors: the vector file is what queryValue computes today.
func TestQueryVectors(t *testing.T) {
	vectorFile(t, queryVectors, queryVectorText(), "queryValue", "TestQueryVectors")
}

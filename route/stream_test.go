package route

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	gojson "github.com/goccy/go-json"
)

// canonicalParse is Parse without its streaming path: the whole document
// decoded, then compiled in key order.
func canonicalParse(name string, data []byte) (*Table, error) {
	f, err := decodeFile(name, data, false)
	if err != nil {
		return nil, err
	}
	return compile(name, f, nil)
}

// tableDiff describes how two tables differ, "" when they hold the same
// vhosts, routes, indexes, endpoints and counts (host table hashes, which
// have a random seed, are left out).
func tableDiff(a, b *Table) string {
	return tableDiffSrc(a, b, false)
}

// tableDiffSrc is tableDiff that also compares, when src is true, the
// hashes of the values the vhosts were compiled from and whether their
// keys are known (which only the streamed compile records), and the
// tables' settings.
func tableDiffSrc(a, b *Table, src bool) string {
	if a.stats != b.stats {
		return fmt.Sprintf("stats %+v != %+v", a.stats, b.stats)
	}
	if !reflect.DeepEqual(a.refs, b.refs) {
		return fmt.Sprintf("endpoints %v != %v", a.refs, b.refs)
	}
	if len(a.probes) != len(b.probes) || (len(a.probes) > 0 && !reflect.DeepEqual(a.probes, b.probes)) {
		return fmt.Sprintf("probes %v != %v", a.probes, b.probes)
	}
	if len(a.rings) != len(b.rings) {
		return fmt.Sprintf("%d rings != %d", len(a.rings), len(b.rings))
	}
	for id, r := range a.rings {
		if o := b.rings[id]; o == nil || !reflect.DeepEqual(r, o) {
			return fmt.Sprintf("ring %x differs", id)
		}
	}
	if src && a.known != b.known {
		return fmt.Sprintf("KnownKeysOnly %v != %v", a.known, b.known)
	}
	if a.policies != b.policies || a.passDefault != b.passDefault || !bytes.Equal(a.secret, b.secret) {
		return fmt.Sprintf("policies %d, pass %v, secret %q != %d, %v, %q", a.policies, a.passDefault, a.secret, b.policies, b.passDefault, b.secret)
	}
	if a.exact.size() != b.exact.size() || a.wild.size() != b.wild.size() || (a.catchAll == nil) != (b.catchAll == nil) {
		return "host tables differ in size"
	}
	if len(a.vhosts) != len(b.vhosts) {
		return fmt.Sprintf("%d vhosts != %d", len(a.vhosts), len(b.vhosts))
	}
	for i := range a.vhosts {
		x, y := *a.vhosts[i], *b.vhosts[i]
		x.hash, y.hash = 0, 0
		if !src {
			x.src, y.src = [32]byte{}, [32]byte{}
			x.known, y.known = false, false
		}
		if !reflect.DeepEqual(x, y) {
			return fmt.Sprintf("vhost %d differs:\n%+v\n%+v", i, x, y)
		}
		got := b.catchAll
		if x.norm != "*" {
			got = getHost(b.exact, x.norm)
			if strings.HasPrefix(x.norm, ".") {
				got = getHost(b.wild, x.norm)
			}
		}
		if got != b.vhosts[i] {
			return fmt.Sprintf("vhost %q is not found under %q", x.key, x.norm)
		}
	}
	return ""
}

// checkStream holds parseStream to the whole-document path: the table or
// the error it answers with is the one that path gives, and a document it
// finds invalid is one the fast decoder rejects. It returns what
// parseStream made of the document.
func checkStream(t *testing.T, data []byte) streamResult {
	t.Helper()
	st, res, serr := parseStream("ghost.json", data, &Options{})
	want, err := canonicalParse("ghost.json", data)
	switch res {
	case streamDone:
		if serr != nil || err != nil {
			if serr == nil || err == nil || serr.Error() != err.Error() {
				t.Fatalf("parseStream and the whole-document path disagree on %q:\n%v\n%v", data, serr, err)
			}
			return res
		}
		if d := tableDiff(st, want); d != "" {
			t.Fatalf("parseStream and the whole-document path disagree on %q: %s", data, d)
		}
		if keys := UnknownKeyPositions(data); st.KnownKeysOnly() && len(keys) > 0 {
			t.Fatalf("KnownKeysOnly of %q, which has %v", data, keys)
		}
	case streamInvalid:
		var f fileJSON
		if gojson.Unmarshal(data, &f) == nil {
			t.Fatalf("parseStream found invalid a document that decodes: %q", data)
		}
	}
	return res
}

// The streaming path takes well-formed files, whatever their vhost order,
// and builds the same table as the whole-document path.
func TestParseStreamSameTable(t *testing.T) {
	docs := []string{
		fuzzTable,
		string(genFile(50, 12)),
		`{"version":2}`,
		`{"version":2,"vhosts":{}}`,
		` {"vhosts" : { "b.com" : {"routes":[{` + be(1) + `}]} , "a.com":{"routes":[]}} , "version" : 2 } ` + "\n",
		`{"default":{"x":[1,{"y":"}]\""}]},"version":2,"vhosts":{"a.com":{"routes":null,"default_backends":[{"address":"10.0.0.1","port":80}]}}}`,
		`{"version":2,"vhosts":{"z.com":{"routes":[{"path_match":{"type":"Exact","value":"/a"},` + be(1) + `}]},` +
			`"*.z.com":{"routes":[{"backends":[]}]},"*":{"default_backends":[{"backends":[{"address":"::1","port":1}]}]},` +
			`"[::1]":{"routes":[{"path_match":{"type":"PathPrefix","value":"/\u0061\"b"}}]}}}`,
	}
	for _, d := range docs {
		if checkStream(t, []byte(d)) != streamDone {
			t.Errorf("parseStream did not take %q", d)
		}
	}
}

// Documents whose meaning depends on how encoding/json reads keys, nulls,
// repeats and numbers, and documents that do not decode, are left to the
// whole-document path, so that Parse returns what it returned before.
func TestParseStreamLeaves(t *testing.T) {
	const vh = `{"routes":[{"backends":[{"address":"10.0.0.1","port":80}]}]}`
	cases := []struct {
		doc  string
		want streamResult
	}{
		{``, streamShape},
		{`[]`, streamShape},
		{`null`, streamShape},
		{`{}`, streamShape},
		{`{"version":1,"vhosts":{}}`, streamShape},
		{`{"version":2.0}`, streamShape},
		{`{"version":null}`, streamShape},
		{`{"version":"2"}`, streamShape},
		{`{"vhosts":{}}`, streamShape},
		{`{"Version":2}`, streamShape},
		{`{"version":2,"VHOSTS":{}}`, streamShape},
		{`{"vers\u0069on":2}`, streamShape},
		{`{"version":2,"version":2}`, streamShape},
		{`{"version":2,"vhosts":{},"vhosts":{}}`, streamShape},
		{`{"version":2,"vhosts":null}`, streamShape},
		{`{"version":2,"vhosts":[]}`, streamShape},
		{`{"version":2,"vhosts":{"a.com":null}}`, streamShape},
		{`{"version":2,"vhosts":{"a.com":[]}}`, streamShape},
		{`{"version":2,"vhosts":{"a.com":` + vh + `,"a.com":{}}}`, streamShape},
		{`{"version":2,"vhosts":{"a\u002ecom":` + vh + `}}`, streamShape},
		{"{\"version\":2,\"vhosts\":{\"\xff\":{}}}", streamShape},
		{`{"version":2,"vhosts":{"a.com":{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}}`, streamShape},
		{`{"version":2`, streamInvalid},
		{`{"version":2}x`, streamInvalid},
		{`{"version":2,}`, streamInvalid},
		{`{"version":2,"vhosts":{"a.com":{},}}`, streamInvalid},
		{`{"version":2,"vhosts":{"a.com":{}`, streamInvalid},
		{`{"version":2,"vhosts":{"a.com`, streamInvalid},
		{`{"version" 2}`, streamInvalid},
		{`{"version":2 "vhosts":{}}`, streamInvalid},
		{`{"version":2,"default":[1,],"vhosts":{}}`, streamInvalid},
		{`{"version":2,"default":,"vhosts":{}}`, streamInvalid},
		{`{"version":2,"vhosts":{"a.com":{"routes":[{"priority":"x"}]}}}`, streamInvalid},
		{`{"version":2,"vhosts":{"a.com":{"routes":[}]}}}`, streamInvalid},
		{`{"version":2,"vhosts":{"a.com":{"routes":[{"route_name":"\"}]}}}`, streamInvalid},
		{`{"version":2,"vhosts":{"a.com":{"routes":[{"method":"x"}]},"b.com":{"routes":[{"method":1}]}}}`, streamInvalid},
	}
	for _, c := range cases {
		if got := checkStream(t, []byte(c.doc)); got != c.want {
			t.Errorf("parseStream made %d of %q, want %d", got, c.doc, c.want)
		}
	}
}

// Validation errors are the streaming path's to report, as compile reports
// them: the first vhost in key order, whatever the order of the file.
func TestParseStreamErrors(t *testing.T) {
	cases := []struct{ doc, want string }{
		{`{"version":2,"vhosts":{"b.com":{"routes":[{"method":"x"}]},"a.com":{"routes":[{"method":"y"}]}}}`,
			`ghost.json: vhost "a.com" route 0: method "y" is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH`},
		{`{"version":2,"vhosts":{"b.com":{},"a.com":{},"B.com":{"routes":[{"method":"y"}]}}}`,
			`ghost.json: vhost "B.com" route 0: method "y" is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH`},
		{`{"version":2,"vhosts":{"b.com":{},"B.com":{},"a b":{}}}`,
			`ghost.json: vhost "a b": invalid vhost key: hostname contains an invalid character ' '`},
		{`{"version":2,"vhosts":{"b.com":{"routes":[{"method":"x"}]},"B.com":{}}}`,
			`ghost.json: vhost "b.com": same host as vhost "B.com" (keys are case-insensitive)`},
	}
	for _, c := range cases {
		if got := checkStream(t, []byte(c.doc)); got != streamDone {
			t.Errorf("parseStream made %d of %q, want streamDone", got, c.doc)
		}
		if _, err := Parse("ghost.json", []byte(c.doc)); err == nil || err.Error() != c.want {
			t.Errorf("Parse(%q) = %v, want %s", c.doc, err, c.want)
		}
	}
}

// FuzzParseStream holds the streaming path to the whole-document path on
// any input.
func FuzzParseStream(f *testing.F) {
	f.Add([]byte(fuzzTable))
	f.Add([]byte(genFile(3, 5)))
	f.Add([]byte(`{"version":2,"vhosts":{"a.com":{"routes":[{"headers":[{"name":"X","value":"1"}],"backends":[]}]},"b.com":{}}}`))
	f.Add([]byte(`{"version":2,"default":{"a":"}"},"vhosts":{"a.com":{"routes":[{"backends":[{"address":"10.0.0.1","port":80},` +
		`{"address":"10.0.0.2","port":80,"weight":0}]},{"path_match":{"type":"RegularExpression","value":"^/[a-z]+$"}}]}}}`))
	f.Add([]byte(`{"version":2,"vhosts":{"b.com":{"routes":[{"method":"x"}]},"A.com":{},"a.com":{"routes":[{"port":1}]}}}`))
	for _, d := range corpusDocs(f) { // FuzzParse's corpus too
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStream(t, data)
	})
}

// parseStreamBoth runs parseStream serially and on several workers (two
// and five, on two cores; two also taking the batches in reverse
// order; two with Options.Release, which zeroes what it is given), and
// fails unless they give the same result, error and table.
func parseStreamBoth(t *testing.T, data []byte) {
	t.Helper()
	defer func(n, w, procs int) {
		parallelMin, parallelWorkers, parallelReverse = n, w, false
		runtime.GOMAXPROCS(procs)
	}(parallelMin, parallelWorkers, runtime.GOMAXPROCS(2))
	parallelMin = 1 << 30
	st, sres, serr := parseStream("ghost.json", data, &Options{})
	parallelMin = 0
	for _, w := range []int{-2, 2, 5, 0} { // -2: two workers taking the last batch first; 0: two, releasing
		parallelWorkers, parallelReverse = max(w, -w, 2), w < 0
		o, doc := &Options{}, data
		var rel released
		if w == 0 {
			doc = bytes.Clone(data)
			o.Release = func(lo, hi int) { rel.add(doc, lo, hi) }
		}
		pt, pres, perr := parseStream("ghost.json", doc, o)
		if w == 0 && pres == streamDone && perr == nil {
			rel.check(t, doc)
		}
		if sres != pres || fmt.Sprint(serr) != fmt.Sprint(perr) {
			t.Fatalf("serial and %d workers disagree on %.200q: %d %v, %d %v", w, data, sres, serr, pres, perr)
		}
		if st != nil || pt != nil {
			if st == nil || pt == nil {
				t.Fatalf("serial and %d workers disagree on %.200q: table %v, %v", w, data, st != nil, pt != nil)
			}
			if d := tableDiffSrc(st, pt, true); d != "" {
				t.Fatalf("serial and %d workers disagree on %.200q: %s", w, data, d)
			}
		}
	}
}

// released records what Options.Release was given, and zeroes it.
type released struct {
	mu     sync.Mutex
	lo, hi int
}

func (r *released) add(doc []byte, lo, hi int) {
	clear(doc[lo:hi]) // a read of it afterwards is a race, and a wrong table
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hi == 0 {
		r.lo, r.hi = lo, hi
		return
	}
	r.lo, r.hi = min(r.lo, lo), max(r.hi, hi)
}

// check fails unless, after a compile, the document's vhost values were
// all released: one stretch, from a value's start to a value's end.
func (r *released) check(t *testing.T, doc []byte) {
	t.Helper()
	if r.hi == 0 {
		return // no vhost
	}
	if bytes.ContainsFunc(doc[r.lo:r.hi], func(c rune) bool { return c != 0 }) {
		t.Fatalf("Release left a gap in [%d, %d)", r.lo, r.hi)
	}
	if r.lo == 0 || doc[r.lo-1] != ':' && !bytes.HasSuffix(bytes.TrimRight(doc[:r.lo], " \t\r\n"), []byte(":")) ||
		!bytes.HasPrefix(bytes.TrimLeft(doc[r.hi:], " \t\r\n"), []byte("}")) {
		t.Fatalf("Release gave [%d, %d), not the vhosts' values: %.100q", r.lo, r.hi, doc)
	}
}

// Compiling on several workers changes nothing: the same table, the same
// first error in key order (a bad key, a repeated host or a vhost that
// does not compile, whichever comes first), and a document with any vhost
// that does not decode is still left to the whole-document path, also
// after a vhost that fails to compile.
func TestParseStreamParallel(t *testing.T) {
	docs := []string{
		fuzzTable,
		string(genFile(300, 7)),
		`{"version":2,"vhosts":{}}`,
		`{"version":2,"vhosts":{"b.com":{"routes":[{"method":"x"}]},"a.com":{"routes":[{"method":"y"}]}}}`,
		`{"version":2,"vhosts":{"b.com":{},"a.com":{},"B.com":{"routes":[{"method":"y"}]}}}`,
		`{"version":2,"vhosts":{"b.com":{},"B.com":{},"a b":{}}}`,
		`{"version":2,"vhosts":{"a.com":{"routes":[{"method":"y"}]},"b.com":{},"c.com":{"routes":5}}}`,
		`{"version":2,"vhosts":{"a.com":{"routes":5},"b.com":{"routes":[{"method":"y"}]}}}`,
		`{"version":2,"vhosts":{"a.com":{},"b.com":{},"c.com":{},"d.com":{"routes":[{"port":"x"}]}}}`,
	}
	// Errors (c: a vhost that does not compile, k: an invalid key, r: a
	// host repeated in another case), and a vhost that does not decode
	// (d), in later batches, and the last batch short.
	for _, bad := range []map[int]byte{
		{70: 'c'}, {70: 'c', 140: 'd'}, {140: 'c', 70: 'd'}, {199: 'd'}, {0: 'c'}, {0: 'd'},
		{70: 'k', 140: 'c'}, {70: 'c', 140: 'k'}, {130: 'r', 150: 'c'}, {130: 'c', 150: 'r'},
		{10: 'c', 190: 'c'}, {63: 'c', 64: 'c'}, {127: 'c', 128: 'c', 192: 'c'}, {150: 'k', 10: 'd'}, {199: 'k'},
	} {
		var b strings.Builder
		b.WriteString(`{"version":2,"vhosts":{`)
		for i := range 200 {
			if i > 0 {
				b.WriteByte(',')
			}
			switch bad[i] {
			case 'c':
				fmt.Fprintf(&b, `"v%03d.com":{"routes":[{"method":"y"}]}`, i)
			case 'd':
				fmt.Fprintf(&b, `"v%03d.com":{"routes":5}`, i)
			case 'k':
				fmt.Fprintf(&b, `"v%03d.c*m":{}`, i)
			case 'r':
				fmt.Fprintf(&b, `"v%03d.com":{},"v%03d.COM":{}`, i, i)
			default:
				fmt.Fprintf(&b, `"v%03d.com":{"routes":[{"path_match":{"type":"PathPrefix","value":"/%d"},%s}]}`, i, i, be(i%7+1))
			}
		}
		b.WriteString(`}}`)
		docs = append(docs, b.String())
	}
	for _, d := range docs {
		parseStreamBoth(t, []byte(d))
	}
	for _, d := range corpusDocs(t) {
		parseStreamBoth(t, d)
	}
}

// corpusDocs returns the documents of FuzzParse's corpus.
func corpusDocs(t testing.TB) [][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParse", "*"))
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if q, ok := strings.CutPrefix(line, "[]byte("); ok {
				if v, err := strconv.Unquote(strings.TrimSuffix(q, ")")); err == nil {
					out = append(out, []byte(v))
				}
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d documents from FuzzParse's corpus", len(out))
	}
	return out
}

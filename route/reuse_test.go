package route

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// reuseValues are vhost values with every feature a compiled vhost holds
// (sessions, rings, probes, cache policies, filters, regexes, default
// backends): fuzzTable's vhosts and genFile's.
func reuseValues(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, doc := range []string{fuzzTable, string(genFile(5, 7))} {
		var f struct{ Vhosts map[string]json.RawMessage }
		if err := json.Unmarshal([]byte(doc), &f); err != nil {
			t.Fatal(err)
		}
		for _, v := range f.Vhosts {
			out = append(out, string(v))
		}
	}
	if len(out) < 8 {
		t.Fatalf("only %d vhost values", len(out))
	}
	return out
}

// reuseDoc writes a document with the vhosts of m (key → value), in the
// order of keys.
func reuseDoc(keys []string, m map[string]string) []byte {
	var b strings.Builder
	b.WriteString(`{"version":2,"vhosts":{`)
	for i, k := range keys {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "%q:%s", k, m[k])
	}
	b.WriteString("}}")
	return []byte(b.String())
}

// A table compiled with Options.Prev is the table compiled without it
// (the oracle), whatever changed between the two files: values, keys
// added and removed, the order of the members, the session secret, a
// previous table from the whole-document path, an error in a changed
// vhost. Unchanged vhosts are shared with the previous table (their
// routes are the same array), changed ones are not, and the previous
// table, which goes on serving meanwhile, is not changed.
func TestReuse(t *testing.T) {
	defer func(n, procs int) { parallelMin = n; runtime.GOMAXPROCS(procs) }(parallelMin, runtime.GOMAXPROCS(2))
	vals := reuseValues(t)
	base := map[string]string{}
	var keys []string
	for i := range 300 {
		k := fmt.Sprintf("v%03d.example.com", i)
		if i%50 == 7 {
			k = fmt.Sprintf("*.w%03d.example.com", i)
		}
		keys = append(keys, k)
		base[k] = vals[i%len(vals)]
	}
	keys = append(keys, "*")
	base["*"] = vals[0]
	changed := map[string]string{}
	for k, v := range base {
		changed[k] = v
	}
	var ckeys []string
	for i, k := range keys {
		switch {
		case i%10 == 3: // another value
			changed[k] = vals[(i+1)%len(vals)]
		case i%10 == 4 && i%20 != 4: // the same value, written otherwise
			changed[k] = " " + base[k]
		case i%37 == 5: // removed
			delete(changed, k)
			continue
		}
		ckeys = append(ckeys, k)
	}
	for i := range 5 { // added
		k := fmt.Sprintf("new%d.example.com", i)
		changed[k] = vals[i]
		ckeys = append(ckeys, k)
	}
	rev := func(ks []string) []string { // the members in another order
		out := make([]string, len(ks))
		for i, k := range ks {
			out[len(ks)-1-i] = k
		}
		return out
	}
	bad := map[string]string{}
	for k, v := range changed {
		bad[k] = v
	}
	bad["v250.example.com"] = `{"routes":[{"method":"y"}]}`
	s1, s2 := []byte("secret one"), []byte("secret two")
	prevDoc := reuseDoc(keys, base)
	cases := []struct {
		name       string
		prev, next []byte
		prevOpts   Options
		opts       Options
		adopt      bool // unchanged vhosts are adopted
	}{
		{"same file", prevDoc, prevDoc, Options{SessionSecret: s1}, Options{SessionSecret: s1}, true},
		{"changed", prevDoc, reuseDoc(ckeys, changed), Options{SessionSecret: s1}, Options{SessionSecret: s1, CachePass: true}, true},
		{"changed, reordered", prevDoc, reuseDoc(rev(ckeys), changed), Options{}, Options{}, true},
		{"another secret", prevDoc, reuseDoc(ckeys, changed), Options{SessionSecret: s1}, Options{SessionSecret: s2}, false},
		{"from the whole-document path", []byte(strings.Replace(string(prevDoc), `{`, `{"\u0078":1,`, 1)),
			reuseDoc(ckeys, changed), Options{}, Options{}, false},
		{"an error", prevDoc, reuseDoc(ckeys, bad), Options{}, Options{}, true},
		{"small", reuseDoc(keys[:5], base), reuseDoc(keys[:5], changed), Options{}, Options{}, true},
	}
	for _, c := range cases {
		for _, par := range []bool{false, true} {
			parallelMin = 1 << 30
			if par {
				parallelMin = 0
			}
			prev, err := ParseOptions("ghost.json", c.prev, c.prevOpts)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			prevCopy, _ := ParseOptions("ghost.json", c.prev, c.prevOpts)
			want, werr := ParseOptions("ghost.json", c.next, c.opts)
			// The previous table serves while the next one compiles.
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				var d Decision
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					prev.Decide(&Request{Host: keys[i%len(keys)], Method: "GET", URL: "/a/b",
						Headers: []Header{{"Cookie", "ghost-s=x"}}}, &d)
				}
			}()
			o := c.opts
			o.Prev = prev
			got, gerr := ParseOptions("ghost.json", c.next, o)
			close(stop)
			wg.Wait()
			if fmt.Sprint(werr) != fmt.Sprint(gerr) {
				t.Fatalf("%s (parallel %v): error %v, want %v", c.name, par, gerr, werr)
			}
			if d := tableDiffSrc(prev, prevCopy, true); d != "" {
				t.Fatalf("%s (parallel %v): the previous table changed: %s", c.name, par, d)
			}
			if werr != nil {
				continue
			}
			if d := tableDiffSrc(want, got, true); d != "" {
				t.Fatalf("%s (parallel %v): %s", c.name, par, d)
			}
			old := map[string]*vhost{}
			for _, vh := range prev.vhosts {
				old[vh.key] = vh
			}
			prevVals, nextVals := docValues(t, c.prev), docValues(t, c.next)
			adopted := 0
			for _, vh := range got.vhosts {
				pv := old[vh.key]
				same := c.adopt && pv != nil && prevVals[vh.key] == nextVals[vh.key]
				shared := pv != nil && len(vh.routes) > 0 && &vh.routes[0] == &pv.routes[0]
				if same != shared && len(vh.routes) > 0 {
					t.Fatalf("%s (parallel %v): vhost %q shared %v, want %v", c.name, par, vh.key, shared, same)
				}
				if same {
					adopted++
				}
			}
			if got.shared != (adopted > 0) || (c.adopt && adopted < len(got.vhosts)/2) {
				t.Fatalf("%s (parallel %v): %d of %d vhosts adopted, shared %v", c.name, par, adopted, len(got.vhosts), got.shared)
			}
			// Setting the secret the table has changes nothing.
			got.SetSessionSecret(o.SessionSecret)
			if d := tableDiffSrc(prev, prevCopy, true); d != "" {
				t.Fatalf("%s (parallel %v): the previous table changed: %s", c.name, par, d)
			}
		}
	}
}

// docValues returns the vhost values of a document, by key.
func docValues(t *testing.T, doc []byte) map[string]string {
	t.Helper()
	var f struct{ Vhosts map[string]json.RawMessage }
	if err := json.Unmarshal(doc, &f); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range f.Vhosts {
		out[k] = string(v)
	}
	return out
}

// Reuse through the FuzzParse corpus: each document compiled with the
// previous one of the corpus (and with itself) as Prev is the document
// compiled alone.
func TestReuseCorpus(t *testing.T) {
	docs := corpusDocs(t)
	var prev *Table
	for _, d := range append(docs, docs...) {
		want, werr := Parse("ghost.json", d)
		got, gerr := ParseOptions("ghost.json", d, Options{Prev: prev})
		if fmt.Sprint(werr) != fmt.Sprint(gerr) {
			t.Fatalf("%.200q: error %v, want %v", d, gerr, werr)
		}
		if werr != nil {
			continue
		}
		if d2 := tableDiffSrc(want, got, true); d2 != "" {
			t.Fatalf("%.200q: %s", d, d2)
		}
		again, _ := ParseOptions("ghost.json", d, Options{Prev: got})
		if d2 := tableDiffSrc(want, again, true); d2 != "" {
			t.Fatalf("%.200q, with itself as Prev: %s", d, d2)
		}
		prev = got
	}
}

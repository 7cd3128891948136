package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"

	gojson "github.com/goccy/go-json"
)

// checkFast holds vhostDecoder's fast path to the general decoders: when
// it takes a vhost's value, goccy and encoding/json decode it, to the
// same value. d has decoded other values before (its slabs are reused).
func checkFast(t *testing.T, d *vhostDecoder, raw []byte) bool {
	t.Helper()
	var fast vhostJSON
	resetScratch(&fast)
	if !d.fast(raw, &fast) {
		return false
	}
	var g, std vhostJSON
	if err := gojson.Unmarshal(raw, &g); err != nil {
		t.Fatalf("fast path took %q, goccy: %v", raw, err)
	}
	if err := json.Unmarshal(raw, &std); err != nil {
		t.Fatalf("fast path took %q, encoding/json: %v", raw, err)
	}
	nilEmpty(&fast)
	nilEmpty(&g)
	nilEmpty(&std)
	if !reflect.DeepEqual(fast, g) || !reflect.DeepEqual(fast, std) {
		t.Fatalf("fast path decoded %q to\n%s\ngoccy to\n%s\nencoding/json to\n%s", raw, dump(fast), dump(g), dump(std))
	}
	return true
}

// nilEmpty makes the route and backend lists nil when empty: the
// streamed compile's scratch keeps their arrays (resetScratch), and the
// compile reads their lengths only.
func nilEmpty(vj *vhostJSON) {
	if len(vj.Routes) == 0 {
		vj.Routes = nil
	}
	for i := range vj.Routes {
		if len(vj.Routes[i].Backends) == 0 {
			vj.Routes[i].Backends = nil
		}
	}
}

func dump(vj vhostJSON) string {
	b, _ := json.Marshal(vj)
	return fmt.Sprintf("%s %#v", b, vj)
}

// vhostValues returns the vhost values of a document (nil when it has
// none, or does not decode).
func vhostValues(doc []byte) [][]byte {
	var f struct{ Vhosts map[string]json.RawMessage }
	if json.Unmarshal(doc, &f) != nil {
		return nil
	}
	var out [][]byte
	for _, v := range f.Vhosts {
		out = append(out, v)
	}
	return out
}

var fastSeeds = []string{
	`{}`,
	`{"routes":[]}`,
	`{"routes":[{}]}`,
	` { "routes" : [ { "path_match" : { "type" : "PathPrefix" , "value" : "/a" } , "backends" : [ { "address" : "10.0.0.1" , "port" : 80 , "weight" : 0 } ] } ] } `,
	`{"routes":[{"method":"GET","headers":[{"name":"x","value":"y","type":"Exact"}],"query_params":[],"priority":-3,"rule_index":0,"route_name":"r","listeners":["a","b"]}],"default_backends":[{"address":"h","port":1}]}`,
	`{"routes":[{"priority":123456789012345678}]}`,
	`{"routes":[{"priority":1234567890123456789}]}`,
	`{"routes":[{"priority":-0}]}`,
	`{"routes":[{"priority":01}]}`,
	`{"routes":[{"priority":1.0}]}`,
	`{"routes":[{"priority":1e3}]}`,
	`{"routes":[{"priority":null}]}`,
	`{"routes":[{"method":"GE\u0054"}]}`,
	`{"routes":[{"method":"GET","method":"PUT"}]}`,
	`{"routes":[{"path_match":{"type":"Exact"},"path_match":{"value":"/"}}]}`,
	`{"routes":[{"Method":"GET"}]}`,
	`{"routes":[{"colour":"red"}]}`,
	`{"routes":[{"backends":[{"backends":[]}]}]}`,
	`{"routes":[{"backends":[{"port":"80"}]}]}`,
	`{"routes":[{"backends":[{"port":80,}]}]}`,
	`{"routes":[{"listeners":[]}],"default_backends":[]}`,
	`{"routes":[{"path_match":{}}]}`,
	`{"routes":[1]}`,
	`{"routes":{}}`,
	`{"routes":[{}]}x`,
	`{"routes":[{"route_name":"é"}]}`,
}

// FuzzFastDecode: whatever vhostDecoder's fast path takes, the general
// decoders take, to the same value, also from a decoder that decoded
// other values before.
func FuzzFastDecode(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	for _, d := range corpusDocs(f) {
		for _, v := range vhostValues(d) {
			f.Add(v)
		}
	}
	for _, v := range vhostValues(genFile(20, 7)) {
		f.Add(v)
	}
	var d vhostDecoder
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkFast(t, &d, raw)
		checkFast(t, &d, raw) // the slabs reused
	})
}

// The fast path takes the usual shapes: the benchmarks' files, and most of
// FuzzParse's corpus that decodes.
func TestFastDecodeTakes(t *testing.T) {
	var d vhostDecoder
	for _, v := range vhostValues(genFile(50, 7)) {
		if !checkFast(t, &d, v) {
			t.Fatalf("fast path gave up on %s", v)
		}
	}
	for _, s := range fastSeeds[:6] {
		if !checkFast(t, &d, []byte(s)) {
			t.Fatalf("fast path gave up on %s", s)
		}
	}
	took, all := 0, 0
	for _, doc := range corpusDocs(t) {
		for _, v := range vhostValues(doc) {
			all++
			if checkFast(t, &d, v) {
				took++
			}
		}
	}
	t.Logf("fast path took %d of %d vhost values of FuzzParse's corpus", took, all)
}

// KnownKeysOnly is true of the usual files, false of one with a key
// Parse ignores in a vhost (also in one adopted from the previous table)
// or at the top level, of one whose vhost the fast path did not take (a
// key in another case, which Parse reads), and of a document compiled
// whole.
func TestKnownKeysOnly(t *testing.T) {
	good := genFile(300, 7)
	for _, c := range []struct {
		doc  []byte
		want bool
	}{
		{good, true},
		{[]byte(`{"version":2,"vhosts":{},"default":{"x":1}}`), true},
		{[]byte(`{"version":2,"vhosts":{"a.com":{"routes":[{"colour":"red"}]}}}`), false},
		{[]byte(`{"version":2,"vhosts":{"a.com":{"routes":[{"Method":"GET"}]}}}`), false},
		{[]byte(`{"version":2,"vhosts":{"a.com":{}},"other":1}`), false},
		{[]byte(`{"vhosts":{"a.com":{}},"version":2}`), true},
		{[]byte(`[{"version":2}]`), false},
		{bytes.Replace(good, []byte(`"routes":[`), []byte(`"routes":[{"unknown":1},`), 1), false},
	} {
		tb, err := Parse("ghost.json", c.doc)
		if err != nil {
			if c.want {
				t.Fatal(err)
			}
			continue
		}
		if tb.KnownKeysOnly() != c.want {
			t.Errorf("KnownKeysOnly of %.100q: %v", c.doc, !c.want)
		}
		if c.want && len(UnknownKeyPositions(c.doc)) > 0 {
			t.Errorf("UnknownKeyPositions of %.100q disagrees with the test", c.doc)
		}
	}
	// an adopted vhost keeps what its compile knew
	bad := bytes.Replace(good, []byte(`"routes":[`), []byte(`"routes":[{"unknown":1},`), 1)
	prev, err := Parse("ghost.json", bad)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := ParseOptions("ghost.json", bad, Options{Prev: prev})
	if err != nil || tb.KnownKeysOnly() || !tb.shared {
		t.Fatalf("adopted: %v, known %v, shared %v", err, tb.KnownKeysOnly(), tb.shared)
	}
}

// Options.Start is called once, before anything compiles (so before any
// Release), for every kind of document; its error is ParseOptions'.
func TestOptionsStart(t *testing.T) {
	stop := errors.New("stop")
	for _, doc := range []string{
		string(genFile(300, 7)), // streamed, on several workers
		`{"version":2,"vhosts":{"a.com":{}}}`,
		`{"Version":2,"vhosts":{"a.com":{}}}`,                  // whole-document path
		`{"version":2,"vhosts":{"a.com":{},"a.com":{}}}`,       // repeated key: left to it after the scan
		`{"version":2,"vhosts":{"a.com":{"routes":5}}}`,        // a vhost that does not decode
		`{"version":2,"vhosts":{"a.com":{"routes":[{"x":}]}}}`, // invalid JSON
		`{"version":2,"vhosts":{"a.com":{"routes":[{"method":"x"}]}}}`,
	} {
		for _, fail := range []bool{false, true} {
			calls := 0
			var released atomic.Bool
			o := Options{Start: func() error {
				calls++
				if released.Load() {
					t.Errorf("Release before Start on %.60q", doc)
				}
				if fail {
					return stop
				}
				return nil
			}, Release: func(lo, hi int) { released.Store(true) }}
			tb, err := ParseOptions("ghost.json", []byte(doc), o)
			if calls != 1 {
				t.Errorf("Start called %d times on %.60q", calls, doc)
			}
			if fail && (err != stop || tb != nil || released.Load()) {
				t.Errorf("Start failed on %.60q: %v, table %v, released %v", doc, err, tb != nil, released.Load())
			}
			if !fail {
				_, want := Parse("ghost.json", []byte(doc))
				if fmt.Sprint(err) != fmt.Sprint(want) && !(errors.Is(err, ErrReleased) && want != nil) {
					t.Errorf("with Start, %.60q: %v, want %v", doc, err, want)
				}
			}
		}
	}
}

package route

import (
	"encoding/json"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// fill sets every field reachable from v: pointers point to a value, lists
// and maps hold one element, strings and numbers are non-zero.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e)
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(reflect.ValueOf("example.com"), e)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() || f.Anonymous {
				fill(v.Field(i))
			}
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Int64:
		v.SetInt(1)
	}
}

// addUnknown adds the key "zz" to every object of a decoded JSON document
// but the vhosts map and the "default" object, and returns the paths
// UnknownKeys should report for them.
func addUnknown(v any, path string, mapLevel bool) []string {
	var out []string
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			switch {
			case mapLevel:
				out = append(out, addUnknown(c, join("*"), false)...)
			case path == "" && k == "default":
			default:
				out = append(out, addUnknown(c, join(k), path == "" && k == "vhosts")...)
			}
		}
		if !mapLevel {
			x["zz"] = 1
			out = append(out, join("zz"))
		}
	case []any:
		for _, c := range x {
			out = append(out, addUnknown(c, path+"[]", false)...)
		}
	}
	return out
}

// TestSchemaMatchesDecoder checks that the schema UnknownKeys uses is the
// one Parse decodes: a document with every field of the decoding types set
// has no unknown key, and a key added to any of its objects is reported
// with its path.
func TestSchemaMatchesDecoder(t *testing.T) {
	var f fileJSON
	fill(reflect.ValueOf(&f).Elem())
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := UnknownKeys(data); len(got) != 0 {
		t.Errorf("fully populated document: unknown keys %q", got)
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc.(map[string]any)["default"] = map[string]any{"anything": map[string]any{"goes": 1}}
	want := addUnknown(doc, "", false)
	sort.Strings(want)
	want = slices.Compact(want)
	if len(want) < 15 {
		t.Fatalf("only %d objects in the populated document: %q", len(want), want)
	}
	data, err = json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := UnknownKeys(data); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestUnknownKeyPositions(t *testing.T) {
	doc := `{"version":2,"vhost":{},
 "vhosts":{"a.com":{"routes":[
   {"path_mach":{"type":"Exact","value":"/x"},"backends":[{"address":"10.0.0.1","port":80}]},
   {"backend_groups":[{"weight":1,"backends":[],"backend_tls":{"hostname":"x"}}],
    "filters":{"url_rewrite":{"hostname":"b","timeout":1}}}],
  "default_backends":[{"external_proxy":{"hostname":"e","port":80,"tls":false},"weight":1}]},
  "b-c":{"routes":[],"0x":1}},
 "default":{"anything":{"goes":1}}}`
	var got []string
	for _, k := range UnknownKeyPositions([]byte(doc)) {
		got = append(got, k.String())
	}
	want := []string{
		`unknown key .vhost (line 1 column 14)`,
		`unknown key .vhosts["a.com"].routes[0].path_mach (line 3 column 5)`,
		`unsupported key .vhosts["a.com"].routes[1].backend_groups[0].backend_tls (line 4 column 49): ` + groupUnsupported["backend_tls"],
		`unknown key .vhosts["a.com"].routes[1].filters.url_rewrite.timeout (line 5 column 46)`,
		`unsupported key .vhosts["a.com"].default_backends[0].external_proxy (line 6 column 24): ` + groupUnsupported["external_proxy"],
		`unknown key .vhosts["b-c"]["0x"] (line 7 column 22)`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if UnknownKeyPositions([]byte(`{"version":`)) != nil {
		t.Fatal("positions for invalid JSON")
	}
}

func TestUnknownKeysFoldCaseLikeParse(t *testing.T) {
	doc := `{"Version":2,"VHOSTS":{"a":{"Routes":[{"Backends":[{"ADDRESS":"10.0.0.1","Port":80}]}]}}}`
	tb, err := Parse("ghost.json", []byte(doc))
	if err != nil || tb.Stats().Routes != 1 {
		t.Fatalf("Parse does not fold case: %v", err)
	}
	if got := UnknownKeyPositions([]byte(doc)); len(got) != 0 {
		t.Fatalf("keys Parse reads reported as unknown: %v", got)
	}
}

func TestUnknownKeysEscaped(t *testing.T) {
	// "\u0076hosts" is "vhosts": known, walked into; "a\"b" is unknown.
	doc := `{"version":2,"\u0076hosts":{"h":{"routes":[{"a\"b":1,"backends":[{"address":"10.0.0.1","port":80}]}]}}}`
	got := UnknownKeyPositions([]byte(doc))
	if len(got) != 1 || got[0].String() != `unknown key .vhosts.h.routes[0]["a\"b"] (line 1 column 45)` {
		t.Fatalf("got %v", got)
	}
}

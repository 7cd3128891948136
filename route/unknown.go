package route

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
)

// schemaNode describes the keys Parse reads from one JSON object. A nil
// child means a scalar (or a value whose inside is not checked).
type schemaNode struct {
	fields map[string]*schemaNode // object: known keys
	elem   *schemaNode            // list: element schema; map: value schema
	isMap  bool                   // object with arbitrary keys (vhosts)
	any    bool                   // anything goes (top-level "default")
}

// schema is derived from the decoding types in config.go, so that the keys
// UnknownKeys knows are exactly the keys Parse reads. The top-level
// "default" object that some chaperones write is not decoded but is
// expected: it and everything inside it are known.
var schema = func() *schemaNode {
	n := schemaOf(reflect.TypeFor[fileJSON](), map[reflect.Type]*schemaNode{})
	n.fields["default"] = &schemaNode{any: true}
	return n
}()

// schemaOf describes the JSON that encoding/json reads into a value of type
// t: a struct is an object of its json-tagged exported fields, a slice a
// list, a map with string keys an object with arbitrary keys; anything else
// is a scalar (nil). seen holds the node of each struct type already
// described, so that a recursive type ends.
func schemaOf(t reflect.Type, seen map[reflect.Type]*schemaNode) *schemaNode {
	switch t.Kind() {
	case reflect.Pointer:
		return schemaOf(t.Elem(), seen)
	case reflect.Slice:
		return &schemaNode{elem: schemaOf(t.Elem(), seen)}
	case reflect.Map:
		return &schemaNode{isMap: true, elem: schemaOf(t.Elem(), seen)}
	case reflect.Struct:
		if n, ok := seen[t]; ok {
			return n
		}
		n := &schemaNode{fields: map[string]*schemaNode{}}
		seen[t] = n
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			n.fields[name] = schemaOf(f.Type, seen)
		}
		return n
	}
	return nil
}

// UnknownKeys lists the object keys of a ghost.json document that Parse
// ignores, as distinct sorted paths such as "vhosts.*.routes[].timeout".
// ghostd may log them (once, at debug level). It returns nil for a
// document that is not valid JSON; Parse reports that.
func UnknownKeys(data []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(data))
	found := map[string]bool{}
	if walkUnknown(dec, schema, "", found) != nil {
		return nil
	}
	out := make([]string, 0, len(found))
	for k := range found {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// walkUnknown reads one value from dec and records unknown keys under it.
func walkUnknown(dec *json.Decoder, n *schemaNode, path string, found map[string]bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	switch d {
	case '[':
		var elem *schemaNode
		if n != nil && !n.any {
			elem = n.elem
		}
		for dec.More() {
			if err := walkUnknown(dec, elem, path+"[]", found); err != nil {
				return err
			}
		}
	case '{':
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := kt.(string)
			var child *schemaNode
			sub := path
			if sub != "" {
				sub += "."
			}
			switch {
			case n == nil || n.any:
			case n.isMap:
				child, sub = n.elem, sub+"*"
			default:
				c, known := n.fields[k]
				if !known {
					found[sub+k] = true
				}
				child, sub = c, sub+k
			}
			if err := walkUnknown(dec, child, sub, found); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

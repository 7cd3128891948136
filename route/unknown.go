package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// schemaNode describes the keys Parse reads from one JSON object. A nil
// child means a scalar (or a value whose inside is not checked).
type schemaNode struct {
	fields map[string]*schemaNode // object: known keys
	elem   *schemaNode            // list: element schema; map: value schema
	isMap  bool                   // object with arbitrary keys (vhosts)
	any    bool                   // anything goes (top-level "default")
	// unsupported holds keys of the varnish/gateway format that ghost
	// reads past: key → why (see unsupportedKeys).
	unsupported map[string]string
}

// unsupportedKeys are keys the varnish/gateway chaperone writes for
// features ghost does not implement. They are reported like unknown keys
// (check warns, -strict refuses), with the reason instead of "unknown".
// The top-level "default" object, which ghost deliberately ignores, is
// known and quiet (see schema).
var unsupportedKeys = map[reflect.Type]map[string]string{
	reflect.TypeFor[groupJSON]():   groupUnsupported,
	reflect.TypeFor[backendJSON](): groupUnsupported, // default_backends entries may be groups
}

var groupUnsupported = map[string]string{
	"backend_tls":    "TLS to backends is not supported: the group's endpoints are fetched over plain HTTP",
	"external_proxy": "ExternalName backends are not supported: the group has no endpoints of its own",
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
// t: a struct is an object of its json-tagged exported fields (those of
// embedded structs included), a slice a list, a map with string keys an
// object with arbitrary keys; anything else is a scalar (nil). seen holds the node of each struct type already
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
		for _, f := range reflect.VisibleFields(t) {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" || f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				continue // an embedded struct: its fields are listed
			}
			if name == "" {
				name = f.Name
			}
			n.fields[name] = schemaOf(f.Type, seen)
		}
		for k, why := range unsupportedKeys[t] {
			if _, decoded := n.fields[k]; !decoded {
				if n.unsupported == nil {
					n.unsupported = map[string]string{}
				}
				n.unsupported[k] = why
			}
		}
		return n
	}
	return nil
}

// UnknownKeys lists the object keys of a ghost.json document that Parse
// ignores, as distinct sorted paths such as "vhosts.*.routes[].timeout".
// It returns nil for a document it cannot walk (not JSON); Parse reports
// what is wrong with it.
func UnknownKeys(data []byte) []string {
	found := map[string]bool{}
	if walkDocument(data, func(path, _, _ string, _ int64) { found[path] = true }) != nil {
		return nil
	}
	out := make([]string, 0, len(found))
	for k := range found {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// UnknownKey is one occurrence of a key that Parse ignores.
type UnknownKey struct {
	Path   string // jq-style path: .vhosts["a.com"].routes[0].path_mach
	Line   int    // 1-based, of the key's opening quote
	Column int    // 1-based, in bytes
	Reason string // "" for an unknown key; why ghost ignores a known but unsupported one
}

// String is "unknown key PATH (line L column C)", or "unsupported key
// PATH (line L column C): REASON".
func (k UnknownKey) String() string {
	if k.Reason != "" {
		return fmt.Sprintf("unsupported key %s (line %d column %d): %s", k.Path, k.Line, k.Column, k.Reason)
	}
	return fmt.Sprintf("unknown key %s (line %d column %d)", k.Path, k.Line, k.Column)
}

// UnknownKeyPositions lists every occurrence of a key Parse ignores, in
// document order, with its path and position, for ghostd check and the
// load-time warning. It returns nil for a document it cannot walk (not
// JSON).
func UnknownKeyPositions(data []byte) []UnknownKey {
	var out []UnknownKey
	err := walkDocument(data, func(_, jq, why string, off int64) {
		line, col := lineCol(data, off)
		out = append(out, UnknownKey{Path: jq, Line: line, Column: col, Reason: why})
	})
	if err != nil {
		return nil
	}
	return out
}

// walkDocument walks a whole document and calls report for every unknown
// key with its schema path, its jq path, why it is unsupported ("" when
// unknown) and the offset of its opening quote. It walks with parseStream's
// scanner: it runs on every load, and encoding/json's token API is several
// times slower than parsing the file.
func walkDocument(data []byte, report func(path, jq, why string, off int64)) error {
	w := unknownWalker{scanner: scanner{data: data}, report: report}
	if err := w.walk(schema); err != nil {
		return err
	}
	if w.space(); w.i != len(w.data) {
		return errBadJSON
	}
	return nil
}

var errBadJSON = errors.New("invalid JSON")

// pathStep is one step of the path to the value being walked.
type pathStep struct {
	raw   []byte // object key as written (nil for a list element)
	key   string // the key unescaped, when it has escapes
	index int    // list index
	list  bool
	any   bool // the key is a vhost key: "*" in the schema path
}

type unknownWalker struct {
	scanner
	path   []pathStep
	report func(path, jq, why string, off int64)
}

// walk walks one value whose schema is n.
func (w *unknownWalker) walk(n *schemaNode) error {
	w.space()
	if w.i >= len(w.data) {
		return errBadJSON
	}
	switch w.data[w.i] {
	case '[':
		w.i++
		var elem *schemaNode
		if n != nil && !n.any {
			elem = n.elem
		}
		if w.consume(']') {
			return nil
		}
		for k := 0; ; k++ {
			w.path = append(w.path, pathStep{list: true, index: k})
			err := w.walk(elem)
			w.path = w.path[:len(w.path)-1]
			if err != nil {
				return err
			}
			if done, err := w.next(']'); done || err != nil {
				return err
			}
		}
	case '{':
		w.i++
		if w.consume('}') {
			return nil
		}
		for {
			if err := w.member(n); err != nil {
				return err
			}
			if done, err := w.next('}'); done || err != nil {
				return err
			}
		}
	default: // a string, number, true, false or null
		if _, _, res := w.value(); res != streamDone {
			return errBadJSON
		}
		return nil
	}
}

// member walks one "key": value of an object whose schema is n.
func (w *unknownWalker) member(n *schemaNode) error {
	w.space()
	off := w.i
	if off >= len(w.data) || w.data[off] != '"' {
		return errBadJSON
	}
	end := stringEnd(w.data, off+1)
	if end < 0 {
		return errBadJSON
	}
	w.i = end
	raw := w.data[off+1 : end-1]
	key := ""
	esc := bytes.IndexByte(raw, '\\') >= 0
	if esc {
		var err error
		if key, err = unquote(w.data[off:end]); err != nil {
			return errBadJSON
		}
	}
	var child *schemaNode
	step := pathStep{}
	switch {
	case n == nil || n.any:
	case n.isMap:
		child, step.any = n.elem, true
	default:
		var known bool
		if esc {
			child, known = n.fields[key]
		} else {
			child, known = n.fields[string(raw)]
		}
		if !known {
			child, known = n.foldField(key, raw, esc)
		}
		if !known {
			if !esc {
				key = string(raw)
			}
			w.path = append(w.path, pathStep{key: key, raw: raw})
			p, jq := w.paths()
			w.path = w.path[:len(w.path)-1]
			w.report(p, jq, n.unsupported[key], int64(off))
		}
	}
	if !w.consume(':') {
		return errBadJSON
	}
	step.raw, step.key = raw, key // key: set only for escaped keys
	w.path = append(w.path, step)
	err := w.walk(child)
	w.path = w.path[:len(w.path)-1]
	return err
}

// unquote decodes a JSON string with escapes. (A function of its own, so
// that the key of every member does not escape to the heap.)
func unquote(q []byte) (string, error) {
	var s string
	err := json.Unmarshal(q, &s)
	return s, err
}

// foldField looks a key up case-insensitively, as Parse's decoder
// matches keys when there is no exact match ("Version" is read as
// "version").
func (n *schemaNode) foldField(key string, raw []byte, esc bool) (*schemaNode, bool) {
	if !esc {
		key = string(raw)
	}
	for k, c := range n.fields {
		if strings.EqualFold(k, key) {
			return c, true
		}
	}
	return nil, false
}

// next consumes "," (more to come) or the closing delimiter (done).
func (w *unknownWalker) next(end byte) (bool, error) {
	if w.consume(',') {
		return false, nil
	}
	if w.consume(end) {
		return true, nil
	}
	return false, errBadJSON
}

// paths renders the current path as a schema path
// ("vhosts.*.routes[].timeout") and a jq path
// (.vhosts["a.com"].routes[0].timeout).
func (w *unknownWalker) paths() (string, string) {
	var p, jq strings.Builder
	for _, s := range w.path {
		if s.list {
			p.WriteString("[]")
			jq.WriteString("[" + strconv.Itoa(s.index) + "]")
			continue
		}
		if p.Len() > 0 {
			p.WriteByte('.')
		}
		k := s.key
		if k == "" {
			k = string(s.raw)
		}
		if s.any {
			p.WriteByte('*')
		} else {
			p.WriteString(k)
		}
		jq.WriteString(jqKey(k))
	}
	return p.String(), jq.String()
}

// jqKey is the jq path step for an object key: .name, or ["key"] when the
// key is not an identifier.
func jqKey(k string) string {
	ident := k != ""
	for i := 0; i < len(k) && ident; i++ {
		c := k[i]
		ident = c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9'
	}
	if ident {
		return "." + k
	}
	return "[" + strconv.Quote(k) + "]"
}

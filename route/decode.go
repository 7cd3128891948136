package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	gojson "github.com/goccy/go-json"
)

// decodeFile decodes the JSON document. Syntax and type errors are reported
// with their line and column and, where the error lies inside a vhost or a
// route, with that vhost and route index.
func decodeFile(name string, data []byte) (*fileJSON, error) {
	// goccy/go-json decodes the same documents into the same values as
	// encoding/json, about twice as fast (most of a large reload is JSON
	// decoding). A document it rejects is decoded again by encoding/json,
	// whose errors carry the offsets the messages below are built from.
	var f fileJSON
	err := gojson.Unmarshal(data, &f)
	if err != nil {
		f = fileJSON{}
		err = json.Unmarshal(data, &f)
	}
	if err == nil {
		if f.Version == nil {
			return nil, fmt.Errorf("%s: missing \"version\" (expected 2)", name)
		}
		if *f.Version != 2 {
			return nil, fmt.Errorf("%s: unsupported version %d (expected 2)", name, *f.Version)
		}
		return &f, nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		msg := strings.TrimPrefix(syn.Error(), "json: ")
		pos := syn.Offset
		if pos > 0 && !strings.HasPrefix(msg, "unexpected end") {
			pos-- // Offset counts the offending byte; point at it
		}
		line, col := lineCol(data, pos)
		if len(bytes.TrimSpace(data)) == 0 {
			msg = "empty document"
		}
		return nil, fmt.Errorf("%s: line %d column %d: %s", name, line, col, msg)
	case errors.As(err, &typ):
		where, field, start := jsonPathAt(data, typ.Offset)
		line, col := lineCol(data, start)
		if field == "" {
			field = typ.Field
		}
		what := typ.Value
		want := "a " + typ.Type.Kind().String()
		switch typ.Type.Kind().String() {
		case "int64":
			want = "an integer"
		case "string":
			want = "a string"
		case "slice":
			want = "a list"
		case "map", "struct", "ptr":
			want = "an object"
		}
		prefix := name
		if where != "" {
			prefix += ": " + where
		}
		if field != "" {
			return nil, fmt.Errorf("%s: %s: %s is not %s (line %d column %d)", prefix, field, what, want, line, col)
		}
		return nil, fmt.Errorf("%s: %s is not %s (line %d column %d)", prefix, what, want, line, col)
	default:
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "json: "))
	}
}

// lineCol turns a byte offset into a 1-based line and column (in bytes).
func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	line, col = 1, 1
	for _, c := range data[:off] {
		if c == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return line, col
}

// jsonPathAt walks a syntactically valid document up to byte offset off
// (where encoding/json reported a type error) and describes the value
// found there: its vhost/route context (as validation messages name it),
// the field path below that, and the byte offset where the value starts.
func jsonPathAt(data []byte, off int64) (where, field string, start int64) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var stack []jframe
	var path []string // element path of the current value
	for dec.InputOffset() < off {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.obj && top.want {
				if d, ok := tok.(json.Delim); ok && d == '}' {
					stack, path = stack[:len(stack)-1], path[:len(path)-1]
					markDone(stack)
					continue
				}
				top.key, _ = tok.(string)
				top.want = false
				continue
			}
		}
		d, isDelim := tok.(json.Delim)
		if isDelim && (d == '}' || d == ']') {
			stack, path = stack[:len(stack)-1], path[:len(path)-1]
			markDone(stack)
			continue
		}
		elem := ""
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.obj {
				elem = top.key
			} else {
				elem = strconv.Itoa(top.index)
			}
		}
		start = skipSeparators(data, before)
		if isDelim {
			path = append(path, elem)
			stack = append(stack, jframe{obj: d == '{', want: d == '{'})
			continue
		}
		if dec.InputOffset() >= off { // a scalar that spans off
			path = append(path, elem)
			break
		}
		markDone(stack)
	}
	// path[0] is the document root ("").
	if len(path) > 0 {
		path = path[1:]
	}
	where, field = describePath(path)
	return where, field, start
}

// skipSeparators advances past white space, ":" and "," to a value's start.
func skipSeparators(data []byte, i int64) int64 {
	for i < int64(len(data)) {
		switch data[i] {
		case ' ', '\t', '\n', '\r', ':', ',':
			i++
		default:
			return i
		}
	}
	return i
}

// jframe is one open object or array while walking a document.
type jframe struct {
	obj   bool
	key   string
	index int
	want  bool // object: the next string token is a key
}

func markDone(stack []jframe) {
	if len(stack) == 0 {
		return
	}
	top := &stack[len(stack)-1]
	if top.obj {
		top.want = true
	} else {
		top.index++
	}
}

// describePath renders an element path such as
// [vhosts a.com routes 2 backends 0 port] as (`vhost "a.com" route 2`,
// `backends[0].port`).
func describePath(p []string) (where, field string) {
	if len(p) >= 2 && p[0] == "vhosts" {
		where = fmt.Sprintf("vhost %q", p[1])
		p = p[2:]
		if len(p) >= 2 && p[0] == "routes" {
			where += " route " + p[1]
			p = p[2:]
		}
	}
	var b strings.Builder
	for _, e := range p {
		if _, err := strconv.Atoi(e); err == nil {
			b.WriteString("[" + e + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e)
	}
	return where, b.String()
}

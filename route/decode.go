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
//
// stdOnly skips the fast decoder, for a document known not to decode.
func decodeFile(name string, data []byte, stdOnly bool) (*fileJSON, error) {
	// goccy/go-json decodes the same documents into the same values as
	// encoding/json, about twice as fast (most of a large reload is JSON
	// decoding). A document it rejects is decoded again by encoding/json,
	// whose errors carry the offsets the messages below are built from
	// (and which checks the syntax of the whole document before it
	// decodes any of it).
	var f fileJSON
	var err error
	if stdOnly || gojson.Unmarshal(data, &f) != nil {
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

// streamResult says what parseStream made of a document.
type streamResult uint8

const (
	// streamDone: the table or the error parseStream returned is Parse's.
	streamDone streamResult = iota
	// streamShape: the document has a shape left to decodeFile, which
	// reads it as encoding/json does.
	streamShape
	// streamInvalid: the document does not decode (a syntax or a type
	// error): decodeFile has only the error message to make.
	streamInvalid
)

// member is a vhost of the document: its key and where its value lies.
type member struct {
	key    string
	lo, hi int
}

// parseStream is Parse for a document of the plain shape ghost.json files
// have, which it reads without holding the decoded form of the whole file
// (several times the size of the file and of the table): it finds where
// each vhost's value lies, then decodes and compiles one vhost at a time,
// in key order as compile does, so that the table, or the error, is the
// one decodeFile and compile would give.
//
// It leaves to them (streamShape) what encoding/json reads in ways it does
// not follow: a top level that is not an object, a key with an escape or
// a byte that is not printable ASCII, a key that matches "version" or
// "vhosts" only case-insensitively, a repeated key, a "vhosts" or vhost
// value that is not an object (null included), a version not written "2",
// values nested deeper than maxStreamDepth. A document that does not
// decode is left to them too (streamInvalid), for its message.
func parseStream(name string, data []byte, o *Options) (*Table, streamResult, error) {
	sc := scanner{data: data}
	if !sc.consume('{') {
		return nil, streamShape, nil
	}
	var vhosts []member
	seenVersion, seenVhosts, otherKey := false, false, false
	if !sc.consume('}') {
		for {
			key, res := sc.plainKey()
			if res != streamDone {
				return nil, res, nil
			}
			if !sc.consume(':') {
				return nil, streamInvalid, nil
			}
			switch {
			case key == "version":
				lo, hi, res := sc.value()
				if res != streamDone {
					return nil, res, nil
				}
				if seenVersion || string(data[lo:hi]) != "2" {
					return nil, streamShape, nil
				}
				seenVersion = true
			case key == "vhosts":
				if seenVhosts {
					return nil, streamShape, nil
				}
				seenVhosts = true
				var res streamResult
				if vhosts, res = sc.members(); res != streamDone {
					return nil, res, nil
				}
			case strings.EqualFold(key, "version"), strings.EqualFold(key, "vhosts"):
				return nil, streamShape, nil
			default: // ignored, but the document must still be valid JSON
				otherKey = otherKey || key != "default" // the one known
				lo, hi, res := sc.value()
				if res != streamDone {
					return nil, res, nil
				}
				if !json.Valid(data[lo:hi]) {
					return nil, streamInvalid, nil
				}
			}
			if sc.consume(',') {
				continue
			}
			if sc.consume('}') {
				break
			}
			return nil, streamInvalid, nil
		}
	}
	sc.space()
	if sc.i != len(data) {
		return nil, streamInvalid, nil
	}
	if !seenVersion {
		return nil, streamShape, nil
	}
	if err := o.begin(); err != nil {
		return nil, streamDone, err
	}
	t, res, err := compileMembers(name, data, vhosts, o)
	if t != nil && !otherKey {
		t.known = true
		for _, vh := range t.vhosts {
			t.known = t.known && vh.known
		}
	}
	return t, res, err
}

// resetScratch makes vj, which compileMembers decodes every vhost into, a
// zero value again but for the arrays of its route list and of each
// route's backend list, which it keeps, emptied and zeroed: the decoder
// decodes an array into the slice's own array when it has room, so these
// arrays are not grown anew for every vhost (they would be most of the
// garbage of a large reload). A vhost decoded into vj is then what it would
// be decoded into a new value, but that these two lists, when absent or
// null in the file, are empty instead of nil, which compile does not tell
// apart (it reads their length). The elements past a list's length are
// zero already: the decoder writes none past the length it leaves.
func resetScratch(vj *vhostJSON) {
	routes := vj.Routes
	for i := range routes {
		be := routes[i].Backends
		clear(be)
		routes[i] = routeJSON{Backends: be[:0]}
	}
	*vj = vhostJSON{Routes: routes[:0]}
}

// scanner walks the outer levels of a JSON document for parseStream. It
// only finds where values start and end; the values are checked by a
// decoder, and what lies between them by the scanner itself.
type scanner struct {
	data []byte
	i    int
}

// space skips JSON white space.
func (sc *scanner) space() {
	for sc.i < len(sc.data) {
		switch sc.data[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, if c is next.
func (sc *scanner) consume(c byte) bool {
	sc.space()
	if sc.i < len(sc.data) && sc.data[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

// plainKey reads an object key made of printable ASCII without escapes,
// which every decoder reads the same. Any other key is streamShape, and
// something else than a string streamInvalid.
func (sc *scanner) plainKey() (string, streamResult) {
	sc.space()
	d := sc.data
	if sc.i >= len(d) || d[sc.i] != '"' {
		return "", streamInvalid
	}
	for j := sc.i + 1; j < len(d); j++ {
		switch c := d[j]; {
		case c == '"':
			k := string(d[sc.i+1 : j])
			sc.i = j + 1
			return k, streamDone
		case c < 0x20, c >= 0x7f, c == '\\':
			return "", streamShape
		}
	}
	return "", streamInvalid
}

// members reads the members of the "vhosts" object, each an object.
func (sc *scanner) members() ([]member, streamResult) {
	if !sc.consume('{') {
		return nil, streamShape
	}
	var out memberList
	if sc.consume('}') {
		return out.all(), streamDone
	}
	for {
		key, res := sc.plainKey()
		if res != streamDone {
			return nil, res
		}
		if !sc.consume(':') {
			return nil, streamInvalid
		}
		sc.space()
		if sc.i >= len(sc.data) || sc.data[sc.i] != '{' {
			return nil, streamShape // null and other types
		}
		lo, hi, vres := sc.value()
		if vres != streamDone {
			return nil, vres
		}
		out.add(member{key: key, lo: lo, hi: hi})
		if sc.consume(',') {
			continue
		}
		if sc.consume('}') {
			return out.all(), streamDone
		}
		return nil, streamInvalid
	}
}

// memberList collects members in blocks, so that a list of 100k vhosts
// is not copied every time it grows (the copies would be garbage of the
// reload): all makes one slice of them, of the exact length.
type memberList struct {
	blocks [][]member
	n      int
}

const memberBlock = 1024

func (l *memberList) add(m member) {
	if l.n%memberBlock == 0 {
		l.blocks = append(l.blocks, make([]member, 0, memberBlock))
	}
	b := &l.blocks[len(l.blocks)-1]
	*b = append(*b, m)
	l.n++
}

func (l *memberList) all() []member {
	if len(l.blocks) == 1 {
		return l.blocks[0]
	}
	out := make([]member, 0, l.n)
	for _, b := range l.blocks {
		out = append(out, b...)
	}
	return out
}

// maxStreamDepth bounds the nesting of a value parseStream hands to a
// decoder. A ghost.json nests a handful of levels; a deeper value is left
// to decodeFile, so that the decoders' depth limits, which count from the
// document root, apply to it as they do to the whole document.
const maxStreamDepth = 64

// value skips white space and the value that follows, and returns where it
// starts and ends. For an object or an array, the end is that of the
// matching bracket; the value itself is not validated. A value that does
// not end is streamInvalid, one nested deeper than maxStreamDepth
// streamShape.
func (sc *scanner) value() (lo, hi int, res streamResult) {
	sc.space()
	d := sc.data
	lo = sc.i
	i := lo
	if i >= len(d) {
		return 0, 0, streamInvalid
	}
	switch d[i] {
	case '{', '[':
		depth := 0
		for i < len(d) {
			switch d[i] {
			case '"':
				if i = stringEnd(d, i+1); i < 0 {
					return 0, 0, streamInvalid
				}
				continue
			case '{', '[':
				if depth++; depth > maxStreamDepth {
					return 0, 0, streamShape
				}
			case '}', ']':
				if depth--; depth == 0 {
					sc.i = i + 1
					return lo, sc.i, streamDone
				}
			}
			i++
		}
		return 0, 0, streamInvalid
	case '"':
		if i = stringEnd(d, i+1); i < 0 {
			return 0, 0, streamInvalid
		}
	default: // a number, true, false or null
		for i < len(d) && strings.IndexByte(",:{}[] \t\n\r\"", d[i]) < 0 {
			i++
		}
		if i == lo {
			return 0, 0, streamInvalid
		}
	}
	sc.i = i
	return lo, i, streamDone
}

// stringEnd returns the offset just past the closing quote of the string
// whose content starts at i, or -1 when the string does not end.
func stringEnd(d []byte, i int) int {
	start := i
	for {
		j := bytes.IndexByte(d[i:], '"')
		if j < 0 {
			return -1
		}
		j += i
		k := j
		for k > start && d[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 { // the quote is not escaped
			return j + 1
		}
		i = j + 1
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

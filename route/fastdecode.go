package route

// A decoder of the usual shape of a vhost's value, for the streamed
// compile (parseStream): most of a large reload's garbage was the
// decoder's (a pointer, a string or a struct for almost every field of
// every route), and decoding was most of its time. vhostDecoder reads the
// keys ghost.json files usually have, written plainly, into the vhostJSON
// the general decoder would make; anything else (another key, a key
// written twice, null, an escape or a byte that is not printable ASCII in
// a string, a number that is not a plain integer, invalid JSON) makes it
// give up, and the vhost is decoded again by the general decoder. So the
// value decoded is always the general decoder's (FuzzFastDecode holds it
// to that).
//
// What it decodes lives in the decoder and is reused from vhost to vhost:
// the pointers it sets point into its own slabs, and its strings are
// interned. The compile reads a decoded vhost and keeps none of its
// pointers (it keeps strings, which are immutable).

import (
	gojson "github.com/goccy/go-json"
)

// vhostDecoder decodes vhost values; one per worker.
type vhostDecoder struct {
	scanner // its space and consume; data is the value being decoded
	strs    slab[string]
	ints    slab[int64]
	paths   slab[pathMatchJSON]
	intern  map[string]string
}

// internMax bounds the strings a vhostDecoder interns: the values that
// repeat from vhost to vhost (path types, paths, addresses, methods) are
// among the first ones seen.
const internMax = 4096

// decode decodes raw, a vhost's value, into *vj, as gojson.Unmarshal
// decodes it into a vj reset by resetScratch (which it is, and its error);
// known when the fast path took it (then raw has no key Parse ignores).
func (d *vhostDecoder) decode(raw []byte, vj *vhostJSON) (known bool, err error) {
	resetScratch(vj)
	if d.fast(raw, vj) {
		return true, nil
	}
	resetScratch(vj)
	return false, gojson.Unmarshal(raw, vj)
}

// fast decodes raw into *vj (reset) when it has the usual shape; false
// when it gives up (*vj is then partly decoded).
func (d *vhostDecoder) fast(raw []byte, vj *vhostJSON) bool {
	d.strs.n, d.ints.n, d.paths.n = 0, 0, 0
	d.data, d.i = raw, 0
	ok := d.vhost(vj)
	d.data = nil
	return ok
}

// slab hands out zeroed values from chunks that it keeps: a value stays
// where it is until the slab is reset (n = 0).
type slab[T any] struct {
	chunks [][]T
	n      int
}

const slabChunk = 256

func (s *slab[T]) new() *T {
	c, i := s.n/slabChunk, s.n%slabChunk
	if c == len(s.chunks) {
		s.chunks = append(s.chunks, make([]T, slabChunk))
	}
	s.n++
	p := &s.chunks[c][i]
	var zero T
	*p = zero
	return p
}

// vhost decodes the whole of d.data as a vhost.
func (d *vhostDecoder) vhost(vj *vhostJSON) bool {
	ok := d.object(func(key []byte) int {
		switch string(key) {
		case "routes":
			return field(0, d.array(func() bool {
				vj.Routes = grow(vj.Routes)
				return d.route(&vj.Routes[len(vj.Routes)-1])
			}))
		case "default_backends":
			vj.DefaultBackends = []backendJSON{}
			return field(1, d.array(func() bool {
				vj.DefaultBackends = append(vj.DefaultBackends, backendJSON{})
				return d.backend(&vj.DefaultBackends[len(vj.DefaultBackends)-1])
			}))
		}
		return -1
	})
	d.space()
	return ok && d.i == len(d.data)
}

// grow adds an element to s, which is zero, or what resetScratch left.
func grow[T any](s []T) []T {
	if len(s) < cap(s) {
		return s[:len(s)+1]
	}
	var zero T
	return append(s, zero)
}

// route decodes a route.
func (d *vhostDecoder) route(r *routeJSON) bool {
	return d.object(func(key []byte) int {
		switch string(key) {
		case "path_match":
			pm := d.paths.new()
			r.PathMatch = pm
			return field(0, d.object(func(key []byte) int {
				switch string(key) {
				case "type":
					return field(0, d.strPtr(&pm.Type))
				case "value":
					return field(1, d.strPtr(&pm.Value))
				}
				return -1
			}))
		case "method":
			return field(1, d.strPtr(&r.Method))
		case "headers":
			return field(2, d.matches(&r.Headers))
		case "query_params":
			return field(3, d.matches(&r.QueryParams))
		case "backends":
			return field(4, d.array(func() bool {
				r.Backends = grow(r.Backends)
				return d.backend(&r.Backends[len(r.Backends)-1])
			}))
		case "priority":
			return field(5, d.int(&r.Priority))
		case "rule_index":
			return field(6, d.int(&r.RuleIndex))
		case "route_name":
			return field(7, d.str(&r.RouteName))
		case "listeners":
			r.Listeners = []string{}
			return field(8, d.array(func() bool {
				r.Listeners = append(r.Listeners, "")
				return d.str(&r.Listeners[len(r.Listeners)-1])
			}))
		}
		return -1
	})
}

// matches decodes a list of header or query parameter matches.
func (d *vhostDecoder) matches(list *[]matchJSON) bool {
	*list = []matchJSON{}
	return d.array(func() bool {
		*list = append(*list, matchJSON{})
		m := &(*list)[len(*list)-1]
		return d.object(func(key []byte) int {
			switch string(key) {
			case "name":
				return field(0, d.strPtr(&m.Name))
			case "value":
				return field(1, d.strPtr(&m.Value))
			case "type":
				return field(2, d.strPtr(&m.Type))
			}
			return -1
		})
	})
}

// backend decodes an endpoint entry (not a group).
func (d *vhostDecoder) backend(b *backendJSON) bool {
	return d.object(func(key []byte) int {
		switch string(key) {
		case "address":
			return field(0, d.str(&b.Address))
		case "port":
			return field(1, d.intPtr(&b.Port))
		case "weight":
			return field(2, d.intPtr(&b.Weight))
		}
		return -1
	})
}

// field is what an object's member function returns: the member's field
// (its bit in the object's seen fields), or -1 when its value did not
// decode.
func field(bit int, ok bool) int {
	if !ok {
		return -1
	}
	return bit
}

// object decodes an object, calling member after each key and its colon;
// member decodes the value and returns its field (field), which may come
// once.
func (d *vhostDecoder) object(member func(key []byte) int) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	var seen uint32
	for {
		key, ok := d.plain()
		if !ok || !d.consume(':') {
			return false
		}
		f := member(key)
		if f < 0 || seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		if d.consume(',') {
			continue
		}
		return d.consume('}')
	}
}

// array decodes a list, calling elem for each element.
func (d *vhostDecoder) array(elem func() bool) bool {
	if !d.consume('[') {
		return false
	}
	if d.consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if d.consume(',') {
			continue
		}
		return d.consume(']')
	}
}

// plain reads a string of printable ASCII without escapes.
func (d *vhostDecoder) plain() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	for j := d.i; j < len(d.data); j++ {
		switch c := d.data[j]; {
		case c == '"':
			s := d.data[d.i:j]
			d.i = j + 1
			return s, true
		case c < 0x20, c >= 0x7f, c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// str decodes a string into *s.
func (d *vhostDecoder) str(s *string) bool {
	b, ok := d.plain()
	if !ok {
		return false
	}
	if v, ok := d.intern[string(b)]; ok {
		*s = v
		return true
	}
	*s = string(b)
	if d.intern == nil {
		d.intern = map[string]string{}
	}
	if len(d.intern) < internMax {
		d.intern[*s] = *s
	}
	return true
}

// strPtr decodes a string into a new *string.
func (d *vhostDecoder) strPtr(p **string) bool {
	*p = d.strs.new()
	return d.str(*p)
}

// int decodes an integer written plainly: -?(0|[1-9][0-9]*), at most 18
// digits, followed by what may follow a value.
func (d *vhostDecoder) int(v *int64) bool {
	d.space()
	j, neg := d.i, false
	if j < len(d.data) && d.data[j] == '-' {
		j, neg = j+1, true
	}
	start := j
	var n int64
	for j < len(d.data) && '0' <= d.data[j] && d.data[j] <= '9' {
		n = n*10 + int64(d.data[j]-'0')
		j++
	}
	digits := j - start
	if digits == 0 || digits > 18 || digits > 1 && d.data[start] == '0' {
		return false
	}
	if j < len(d.data) {
		switch d.data[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	if neg {
		n = -n
	}
	*v, d.i = n, j
	return true
}

// intPtr decodes an integer into a new *int64.
func (d *vhostDecoder) intPtr(p **int64) bool {
	*p = d.ints.new()
	return d.int(*p)
}

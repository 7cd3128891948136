package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
	"unsafe"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"github.com/varnish/ghost/route"
)

// maxDepth bounds the nesting of values skipped under unknown keys, so a
// frame of nested arrays cannot make the decoder recurse a million times.
const maxDepth = 32

// Decode errors that do not come from msgpack itself.
var (
	errNotMap   = errors.New("body is not a msgpack map")
	errTrailing = errors.New("trailing bytes after the message")
	errNoType   = errors.New(`missing "t"`)
	errTooDeep  = fmt.Errorf("values nested deeper than %d", maxDepth)
	errShort    = errors.New("value runs past the end of the frame")
)

// requestDecoder decodes request frames without allocating: the strings it
// produces point into the frame it was given. One per connection; not safe
// for concurrent use.
type requestDecoder struct {
	rd   bytes.Reader
	dec  *msgpack.Decoder
	body []byte
}

// newRequestDecoder returns a decoder ready for use.
func newRequestDecoder() *requestDecoder {
	d := &requestDecoder{}
	d.dec = msgpack.NewDecoder(&d.rd)
	return d
}

// Decode decodes one frame body into req (which is reset first, keeping its
// slices' storage). The strings in req are valid only as long as body is
// not modified.
func (d *requestDecoder) Decode(body []byte, req *request) error {
	req.reset()
	d.body = body
	d.rd.Reset(body)
	err := d.decode(req)
	d.body = nil
	if err != nil {
		return fmt.Errorf("decoding request: %w", err)
	}
	return nil
}

func (d *requestDecoder) decode(req *request) error {
	c, err := d.dec.PeekCode()
	if err != nil {
		return err
	}
	if !isMap(c) {
		return errNotMap
	}
	n, err := d.dec.DecodeMapLen()
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		key, err := d.str()
		if err != nil {
			return fmt.Errorf("map key: %w", err)
		}
		if err := d.field(key, req); err != nil {
			return fmt.Errorf("field %q: %w", key, err)
		}
	}
	if d.rd.Len() != 0 {
		return errTrailing
	}
	if !req.hasType {
		return errNoType
	}
	return nil
}

func (d *requestDecoder) field(key string, req *request) (err error) {
	switch key {
	case "t":
		req.Type, err = d.str()
		req.hasType = true
	case "v":
		req.Version, err = d.dec.DecodeInt64()
	case "client":
		req.Client, err = d.str()
	case "host":
		req.Route.Host, err = d.str()
	case "method":
		req.Route.Method, err = d.str()
	case "url":
		req.Route.URL, err = d.str()
	case "sock":
		req.Route.Socket, err = d.str()
	case "https":
		req.Route.HTTPS, err = d.dec.DecodeBool()
	case "hdrs":
		req.Route.Headers, err = d.headers(req.Route.Headers)
	case "eps":
		req.Eps, req.Probes, err = d.endpoints(req.Eps, req.Probes)
	case "id":
		req.ID, err = d.dec.DecodeUint64()
	case "wait":
		var ms uint64
		ms, err = d.dec.DecodeUint64()
		req.Wait = time.Duration(min(ms, 1<<30)) * time.Millisecond
	default:
		err = d.skip(0)
	}
	return err
}

// pairLen reads the length of a 2-element array.
func (d *requestDecoder) pairLen() error {
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		return err
	}
	if n != 2 {
		return fmt.Errorf("want a 2-element array, got %d elements", n)
	}
	return nil
}

func (d *requestDecoder) headers(hs []route.Header) ([]route.Header, error) {
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		return hs, err
	}
	for i := 0; i < n; i++ {
		if err := d.pairLen(); err != nil {
			return hs, fmt.Errorf("header %d: %w", i, err)
		}
		var h route.Header
		if h.Name, err = d.str(); err != nil {
			return hs, fmt.Errorf("header %d name: %w", i, err)
		}
		if h.Value, err = d.str(); err != nil {
			return hs, fmt.Errorf("header %d value: %w", i, err)
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// endpoints decodes live's "eps": [addr, port] or [addr, port, probe id].
func (d *requestDecoder) endpoints(eps []route.Endpoint, probes []uint32) ([]route.Endpoint, []uint32, error) {
	n, err := d.dec.DecodeArrayLen()
	if err != nil {
		return eps, probes, err
	}
	for i := 0; i < n; i++ {
		m, err := d.dec.DecodeArrayLen()
		if err != nil {
			return eps, probes, fmt.Errorf("endpoint %d: %w", i, err)
		}
		if m != 2 && m != 3 {
			return eps, probes, fmt.Errorf("endpoint %d: want [addr, port] or [addr, port, probe], got %d elements", i, m)
		}
		var e route.Endpoint
		if e.Address, err = d.str(); err != nil {
			return eps, probes, fmt.Errorf("endpoint %d address: %w", i, err)
		}
		p, err := d.dec.DecodeInt64()
		if err != nil {
			return eps, probes, fmt.Errorf("endpoint %d port: %w", i, err)
		}
		if p < 0 || p > 65535 {
			return eps, probes, fmt.Errorf("endpoint %d port: %d out of range", i, p)
		}
		var id uint64
		if m == 3 {
			if id, err = d.dec.DecodeUint64(); err != nil {
				return eps, probes, fmt.Errorf("endpoint %d probe: %w", i, err)
			}
			if id > 1<<32-1 {
				return eps, probes, fmt.Errorf("endpoint %d probe: %d out of range", i, id)
			}
		}
		e.Port = uint16(p)
		eps = append(eps, e)
		probes = append(probes, uint32(id))
	}
	return eps, probes, nil
}

// str reads a string (or bin, or nil = "") without copying it.
func (d *requestDecoder) str() (string, error) {
	n, err := d.dec.DecodeBytesLen()
	if err != nil {
		return "", err
	}
	if n <= 0 {
		return "", nil
	}
	if n > d.rd.Len() {
		return "", errShort
	}
	pos := len(d.body) - d.rd.Len()
	s := unsafe.String(&d.body[pos], n)
	if _, err := d.rd.Seek(int64(n), io.SeekCurrent); err != nil {
		return "", err
	}
	return s, nil
}

// skip skips one value of any type, refusing deep nesting.
func (d *requestDecoder) skip(depth int) error {
	if depth > maxDepth {
		return errTooDeep
	}
	c, err := d.dec.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case isMap(c):
		n, err := d.dec.DecodeMapLen()
		if err != nil {
			return err
		}
		for i := 0; i < 2*n; i++ {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case isArray(c):
		n, err := d.dec.DecodeArrayLen()
		if err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case isStr(c):
		_, err := d.str()
		return err
	case isExt(c):
		return d.skipExt()
	}
	return d.dec.Skip()
}

// skipExt skips an ext value without buffering its payload.
func (d *requestDecoder) skipExt() error {
	c, err := d.rd.ReadByte()
	if err != nil {
		return err
	}
	var n int
	switch c {
	case msgpcode.FixExt1:
		n = 1
	case msgpcode.FixExt2:
		n = 2
	case msgpcode.FixExt4:
		n = 4
	case msgpcode.FixExt8:
		n = 8
	case msgpcode.FixExt16:
		n = 16
	default:
		var l [4]byte
		w := 4
		if c == msgpcode.Ext8 {
			w = 1
		} else if c == msgpcode.Ext16 {
			w = 2
		}
		if _, err := io.ReadFull(&d.rd, l[4-w:]); err != nil {
			return err
		}
		n = int(uint32(l[0])<<24 | uint32(l[1])<<16 | uint32(l[2])<<8 | uint32(l[3]))
	}
	n++ // the ext type byte
	if n > d.rd.Len() {
		return errShort
	}
	_, err = d.rd.Seek(int64(n), io.SeekCurrent)
	return err
}

func isMap(c byte) bool {
	return msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32
}

func isStr(c byte) bool {
	return msgpcode.IsFixedString(c) || c == msgpcode.Str8 || c == msgpcode.Str16 ||
		c == msgpcode.Str32 || c == msgpcode.Bin8 || c == msgpcode.Bin16 || c == msgpcode.Bin32
}

func isExt(c byte) bool {
	switch c {
	case msgpcode.FixExt1, msgpcode.FixExt2, msgpcode.FixExt4, msgpcode.FixExt8, msgpcode.FixExt16,
		msgpcode.Ext8, msgpcode.Ext16, msgpcode.Ext32:
		return true
	}
	return false
}

func isArray(c byte) bool {
	return msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32
}

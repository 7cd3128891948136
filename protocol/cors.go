package protocol

import (
	"fmt"

	"github.com/varnish/ghost/route"
)

// The route answer's "cr": a route's cors filter (docs/protocol.md).

// cors encodes c as the map "cr": oe, ow, h, v only when not empty, oa only
// when true, e always, pf for a decision that answers preflights.
func (e *encoder) cors(c *route.CORS) {
	n := 1
	for _, b := range []bool{len(c.Exact) > 0, len(c.Wild) > 0, c.Any, len(c.Headers) > 0, len(c.Vary) > 0, c.Preflight != nil} {
		if b {
			n++
		}
	}
	e.key("cr")
	_ = e.enc.EncodeMapLen(n)
	if len(c.Exact) > 0 {
		e.strs("oe", c.Exact)
	}
	if len(c.Wild) > 0 {
		e.key("ow")
		_ = e.enc.EncodeArrayLen(len(c.Wild))
		for _, w := range c.Wild {
			_ = e.enc.EncodeArrayLen(2)
			_ = e.enc.EncodeString(w.Prefix)
			_ = e.enc.EncodeString(w.Suffix)
		}
	}
	if c.Any {
		e.bool("oa", true)
	}
	e.bool("e", c.Echo)
	if len(c.Headers) > 0 {
		e.pairs("h", c.Headers)
	}
	if len(c.Vary) > 0 {
		e.strs("v", c.Vary)
	}
	if p := c.Preflight; p != nil {
		e.key("pf")
		_ = e.enc.EncodeMapLen(6)
		e.int("st", int64(p.Status))
		e.str("rs", p.Reason)
		e.strs("rq", p.Require)
		e.pairs("h", p.Headers)
		e.bool("em", p.EchoMethod)
		e.bool("eh", p.EchoHeaders)
	}
}

// cors decodes "cr".
func (c *Client) cors() (*route.CORS, error) {
	out := &route.CORS{}
	err := c.fields("cr", func(k string) (err error) {
		switch k {
		case "oe":
			out.Exact, err = c.strs()
		case "ow":
			out.Wild, err = list(c, func(i int) (w route.OriginPattern, err error) {
				if err = c.pairLen(fmt.Sprintf("origin pattern %d", i)); err != nil {
					return w, err
				}
				if w.Prefix, err = c.dec.DecodeString(); err != nil {
					return w, err
				}
				w.Suffix, err = c.dec.DecodeString()
				return w, err
			})
		case "oa":
			out.Any, err = c.dec.DecodeBool()
		case "e":
			out.Echo, err = c.dec.DecodeBool()
		case "h":
			out.Headers, err = c.pairs()
		case "v":
			out.Vary, err = c.strs()
		case "pf":
			out.Preflight, err = c.preflight()
		default:
			err = c.dec.Skip()
		}
		return err
	})
	return out, err
}

func (c *Client) preflight() (*route.Preflight, error) {
	p := &route.Preflight{}
	err := c.fields("pf", func(k string) (err error) {
		switch k {
		case "st":
			err = intInto(c, &p.Status)
		case "rs":
			p.Reason, err = c.dec.DecodeString()
		case "rq":
			p.Require, err = c.strs()
		case "h":
			p.Headers, err = c.pairs()
		case "em":
			p.EchoMethod, err = c.dec.DecodeBool()
		case "eh":
			p.EchoHeaders, err = c.dec.DecodeBool()
		default:
			err = c.dec.Skip()
		}
		return err
	})
	return p, err
}

package route

import (
	"strings"
)

// The cors filter (Gateway API HTTPCORSFilter; docs/routing.md, "CORS").
//
// Everything about CORS is decided here, once per route at load: which
// Origin values are allowed (compiled to exact strings and prefix/suffix
// patterns, default ports spelt both ways), which headers an allowed
// preflight and an allowed actual response get, and when a response must
// vary on Origin. A decision carries the result (CORS); a data plane only
// compares the request's Origin with the strings and copies the headers,
// as Allowed, ResponseHeaders and PreflightAnswer below do. So a decision
// does not depend on the Origin value and is reused for every origin:
// no memo key per origin, no round trip per origin.

// CORS is a route's compiled cors filter, as a decision carries it. It is
// shared with the table and must be treated as read-only.
type CORS struct {
	// Exact are the Origin values allowed as they are (sorted, distinct).
	Exact []string `json:"exact,omitempty"`
	// Wild are the allowed Origin patterns: Prefix, then a host of one or
	// more lower-case letters, digits, '-' and '.', then Suffix.
	Wild []OriginPattern `json:"wildcard,omitempty"`
	// Any: every non-empty Origin is allowed (allow_origins ["*"]).
	Any bool `json:"any,omitempty"`
	// Echo: Access-Control-Allow-Origin repeats the request's Origin,
	// sent only when it is allowed, and every actual response varies on
	// Origin. Without Echo (allow_origins ["*"] without credentials) it is
	// "*", on every response of the route, whatever the Origin.
	Echo bool `json:"echo_origin"`
	// Headers follow Access-Control-Allow-Origin on an allowed actual
	// response (Access-Control-Allow-Credentials, -Expose-Headers).
	Headers []Header `json:"headers,omitempty"`
	// Vary are header names added to the Vary of every actual response.
	Vary []string `json:"vary,omitempty"`
	// Preflight is set in decisions for OPTIONS requests only.
	Preflight *Preflight `json:"preflight,omitempty"`
}

// OriginPattern is a wildcard origin: Prefix ("https://"), a host, Suffix
// (".example.com", ".example.com:443", "", ":8443").
type OriginPattern struct {
	Prefix string `json:"prefix"`
	Suffix string `json:"suffix"`
}

// Preflight is how a route answers a CORS preflight request: an OPTIONS
// request that carries every header of Require. Such a request never
// reaches a backend: it gets Status with Reason and no body, and, when its
// Origin is allowed, Access-Control-Allow-Origin (as for actual
// responses) followed by Headers and the echoed request headers.
type Preflight struct {
	Status  int      `json:"status"`
	Reason  string   `json:"reason"`
	Require []string `json:"require"` // lower-case request header names
	Headers []Header `json:"headers,omitempty"`
	// EchoMethod: Access-Control-Allow-Methods is the request's
	// Access-Control-Request-Method (allow_methods ["*"] with
	// credentials).
	EchoMethod bool `json:"echo_method,omitempty"`
	// EchoHeaders: Access-Control-Allow-Headers is the request's
	// Access-Control-Request-Headers, left out when the request has none
	// (allow_headers ["*"] with credentials).
	EchoHeaders bool `json:"echo_headers,omitempty"`
}

// CORS response and request header names.
const (
	hdrACAO = "Access-Control-Allow-Origin"
	hdrACAC = "Access-Control-Allow-Credentials"
	hdrACAM = "Access-Control-Allow-Methods"
	hdrACAH = "Access-Control-Allow-Headers"
	hdrACEH = "Access-Control-Expose-Headers"
	hdrACMA = "Access-Control-Max-Age"
	hdrACRM = "Access-Control-Request-Method"
	hdrACRH = "Access-Control-Request-Headers"
	hdrOrig = "Origin"
)

// Preflight answer: 204 (the Gateway API allows 200 or 204).
const (
	preflightStatus = 204
	preflightReason = "No Content"
	// defaultMaxAge is the Gateway API's default for max_age.
	defaultMaxAge = 5
)

// isOriginHost reports whether s can be the host a wildcard stands for in
// a browser's Origin: one or more lower-case letters, digits, '-', '.'.
func isOriginHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Allowed reports whether the Origin value o (the request's lines of
// Origin joined with ","; ok false when it has none) is allowed.
func (c *CORS) Allowed(o string, ok bool) bool {
	if !ok || o == "" {
		return false
	}
	if c.Any {
		return true
	}
	for _, e := range c.Exact {
		if o == e {
			return true
		}
	}
	for _, w := range c.Wild {
		if len(o) > len(w.Prefix)+len(w.Suffix) && strings.HasPrefix(o, w.Prefix) &&
			strings.HasSuffix(o, w.Suffix) && isOriginHost(o[len(w.Prefix):len(o)-len(w.Suffix)]) {
			return true
		}
	}
	return false
}

// allowOrigin returns the Access-Control-Allow-Origin line for r, if any.
func (c *CORS) allowOrigin(r *Request) (Header, bool) {
	if !c.Echo {
		return Header{Name: hdrACAO, Value: "*"}, true
	}
	o, ok := requestHeader(r, hdrOrig)
	if !c.Allowed(o, ok) {
		return Header{}, false
	}
	return Header{Name: hdrACAO, Value: o}, true
}

// ResponseHeaders returns the headers the cors filter sets on an actual
// response (fetched from a backend) to r, in order; Vary is extra.
func (c *CORS) ResponseHeaders(r *Request) []Header {
	h, ok := c.allowOrigin(r)
	if !ok {
		return nil
	}
	return append([]Header{h}, c.Headers...)
}

// PreflightAnswer reports whether r is a preflight request the route
// answers itself and, if so, the headers of the answer (none when the
// Origin is not allowed: the browser then fails the request).
func (c *CORS) PreflightAnswer(r *Request) (bool, []Header) {
	p := c.Preflight
	if p == nil {
		return false, nil
	}
	for _, n := range p.Require {
		if _, ok := requestHeader(r, n); !ok {
			return false, nil
		}
	}
	h, ok := c.allowOrigin(r)
	if !ok {
		return true, nil
	}
	out := []Header{h}
	if p.EchoMethod {
		v, _ := requestHeader(r, hdrACRM)
		out = append(out, Header{Name: hdrACAM, Value: v})
	}
	if p.EchoHeaders {
		if v, ok := requestHeader(r, hdrACRH); ok {
			out = append(out, Header{Name: hdrACAH, Value: v})
		}
	}
	return true, append(out, p.Headers...)
}

// requestHeader returns r's lines of header n (ASCII case-insensitive)
// joined with ",", as ghost.vcl joins them before routing.
func requestHeader(r *Request, n string) (string, bool) {
	var v string
	found := false
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, n) {
			if found {
				v += "," + h.Value
			} else {
				v, found = h.Value, true
			}
		}
	}
	return v, found
}

// corsFilter is a route's compiled cors filter: the decision's CORS for
// requests other than OPTIONS, and for OPTIONS (with Preflight).
type corsFilter struct {
	actual, options *CORS
}

// forMethod returns the CORS a decision for method m carries.
func (f *corsFilter) forMethod(m string) *CORS {
	if m == "OPTIONS" {
		return f.options
	}
	return f.actual
}

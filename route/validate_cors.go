package route

// Validation and compilation of a route's cors filter (docs/routing.md,
// "CORS"; docs/configuration.md). The limits and the origin syntax are the
// Gateway API's (HTTPCORSFilter, CORSOrigin).

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Limits of a cors filter, the Gateway API's.
const (
	MaxCORSOrigins = 64
	MaxCORSHeaders = 64
	maxOriginLen   = 253
	maxCORSMaxAge  = 1<<31 - 1
)

// compileCORS validates a cors filter. field is "filters.cors".
func compileCORS(field string, cj *corsJSON) (*corsFilter, error) {
	creds := cj.AllowCredentials != nil && *cj.AllowCredentials
	c := &CORS{Echo: true}
	if len(cj.AllowOrigins) > MaxCORSOrigins {
		return nil, fmt.Errorf("%s.allow_origins: more than %d origins", field, MaxCORSOrigins)
	}
	if err := wildcardAlone(field+".allow_origins", cj.AllowOrigins); err != nil {
		return nil, err
	}
	for j, o := range cj.AllowOrigins {
		f := fieldIndex(field+".allow_origins", j)
		if slices.Contains(cj.AllowOrigins[:j], o) {
			return nil, fmt.Errorf("%s: %q is listed twice", f, o)
		}
		if o == "*" {
			c.Any = true
			c.Echo = creds
			continue
		}
		if err := c.addOrigin(f, o); err != nil {
			return nil, err
		}
	}
	slices.Sort(c.Exact)
	c.Exact = slices.Compact(c.Exact)
	if c.Echo {
		c.Vary = []string{hdrOrig}
	}

	methods, err := corsList(field+".allow_methods", cj.AllowMethods, 9, true, func(f, m string) error {
		if m != "*" && !validMethods[m] {
			return fmt.Errorf("%s: method %q is not one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH or \"*\"", f, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	allowHdrs, err := corsList(field+".allow_headers", cj.AllowHeaders, MaxCORSHeaders, true, checkHeaderNameOrStar)
	if err != nil {
		return nil, err
	}
	// expose_headers may mix "*" with names (the API does not forbid it).
	expose, err := corsList(field+".expose_headers", cj.ExposeHeaders, MaxCORSHeaders, false, checkHeaderNameOrStar)
	if err != nil {
		return nil, err
	}
	if creds && slices.Contains(expose, "*") {
		return nil, fmt.Errorf("%s.expose_headers: \"*\" cannot be used with allow_credentials: browsers take it as a header named \"*\" on a request with credentials; list the names", field)
	}
	maxAge := int64(defaultMaxAge)
	if cj.MaxAge != nil {
		if *cj.MaxAge < 1 || *cj.MaxAge > maxCORSMaxAge {
			return nil, fmt.Errorf("%s.max_age %d out of range 1-%d (seconds)", field, *cj.MaxAge, maxCORSMaxAge)
		}
		maxAge = *cj.MaxAge
	}

	if creds {
		c.Headers = append(c.Headers, Header{Name: hdrACAC, Value: "true"})
	}
	if len(expose) > 0 {
		c.Headers = append(c.Headers, Header{Name: hdrACEH, Value: strings.Join(expose, ", ")})
	}
	p := &Preflight{Status: preflightStatus, Reason: preflightReason,
		Require: []string{"access-control-request-method", "origin"}}
	if creds {
		p.Headers = append(p.Headers, Header{Name: hdrACAC, Value: "true"})
	}
	switch {
	case len(methods) == 1 && methods[0] == "*" && creds:
		p.EchoMethod = true
	case len(methods) > 0:
		p.Headers = append(p.Headers, Header{Name: hdrACAM, Value: strings.Join(methods, ", ")})
	}
	switch {
	case len(allowHdrs) == 1 && allowHdrs[0] == "*" && creds:
		p.EchoHeaders = true
	case len(allowHdrs) > 0:
		p.Headers = append(p.Headers, Header{Name: hdrACAH, Value: strings.Join(allowHdrs, ", ")})
	}
	if len(expose) > 0 {
		p.Headers = append(p.Headers, Header{Name: hdrACEH, Value: strings.Join(expose, ", ")})
	}
	p.Headers = append(p.Headers, Header{Name: hdrACMA, Value: strconv.FormatInt(maxAge, 10)})

	opt := *c
	opt.Preflight = p
	return &corsFilter{actual: c, options: &opt}, nil
}

// corsList validates a list of a cors filter: at most max entries, each
// checked, none twice (ASCII case-insensitively) and, when starAlone, "*"
// alone or not at all.
func corsList(field string, list []string, max int, starAlone bool, check func(f, v string) error) ([]string, error) {
	if len(list) > max {
		return nil, fmt.Errorf("%s: more than %d entries", field, max)
	}
	for j, v := range list {
		f := fieldIndex(field, j)
		if err := check(f, v); err != nil {
			return nil, err
		}
		if slices.ContainsFunc(list[:j], func(w string) bool { return strings.EqualFold(v, w) }) {
			return nil, fmt.Errorf("%s: %q is listed twice", f, v)
		}
	}
	if starAlone {
		if err := wildcardAlone(field, list); err != nil {
			return nil, err
		}
	}
	return list, nil
}

// wildcardAlone: "*" may not be listed with other entries.
func wildcardAlone(field string, list []string) error {
	if len(list) > 1 && slices.Contains(list, "*") {
		return fmt.Errorf("%s: \"*\" cannot be listed with other entries", field)
	}
	return nil
}

func checkHeaderNameOrStar(f, n string) error {
	if n == "*" {
		return nil
	}
	return checkHeaderName(f, n)
}

// addOrigin validates one origin of allow_origins (not "*"): scheme http
// or https, "://", a host (DNS labels of letters, digits and '-', the
// first label possibly "*", or "*" alone) and an optional port 1-65535;
// and adds the Origin values it allows. Hosts are lower-cased (browsers
// send them so); an origin without a port, or with its scheme's default
// port, allows both spellings.
func (c *CORS) addOrigin(f, o string) error {
	bad := func(why string) error {
		return fmt.Errorf("%s %q %s", f, o, why)
	}
	if len(o) > maxOriginLen {
		return bad(fmt.Sprintf("is longer than %d bytes", maxOriginLen))
	}
	scheme, rest, ok := strings.Cut(o, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return bad("must be \"*\" or start with http:// or https://")
	}
	host, port, hasPort := strings.Cut(rest, ":")
	def := "80"
	if scheme == "https" {
		def = "443"
	}
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '-' || len(port) > 5 {
			return bad("has a port that is not a number 1-65535")
		}
		port = strconv.Itoa(n)
	}
	if host == "" {
		return bad("has no host")
	}
	wild := false
	switch {
	case host == "*":
		wild, host = true, ""
	case strings.HasPrefix(host, "*."):
		wild, host = true, host[1:]
	}
	labels := strings.Split(strings.TrimPrefix(host, "."), ".")
	if host != "" {
		for _, l := range labels {
			if l == "" || !isDNSLabelChars(l) {
				return bad("has a host that is not DNS labels of letters, digits and '-' (a wildcard only as \"*\" or a leading \"*.\")")
			}
		}
	}
	host = strings.ToLower(host)
	base := scheme + "://"
	var suffixes []string
	switch {
	case !hasPort || port == def:
		suffixes = []string{host, host + ":" + def}
	default:
		suffixes = []string{host + ":" + port}
	}
	for _, s := range suffixes {
		if wild {
			p := OriginPattern{Prefix: base, Suffix: s}
			if !slices.Contains(c.Wild, p) {
				c.Wild = append(c.Wild, p)
			}
		} else {
			c.Exact = append(c.Exact, base+s)
		}
	}
	return nil
}

// isDNSLabelChars: letters, digits and '-' only.
func isDNSLabelChars(l string) bool {
	for i := 0; i < len(l); i++ {
		ch := l[i]
		if !('a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '-') {
			return false
		}
	}
	return true
}

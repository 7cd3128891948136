package route

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Limits on what a ghost.json may contain. They are far above what the
// Gateway API lets a controller write and keep a hostile or broken file from
// costing unbounded memory or regex-compile time.
const (
	MaxPathLen      = 1024    // Exact/PathPrefix values, rewrite/redirect paths
	MaxRegexLen     = 1024    // any RegularExpression (path, header, query)
	MaxHostnameLen  = 253     // vhost keys, rewrite/redirect hostnames
	MaxHeaderName   = 126     // header names (matchers and filters): see below
	MaxValueLen     = 4096    // header/query matcher values, filter header values
	MaxMatchers     = 64      // header matchers, and query matchers, per route
	MaxVaryHeaders  = 64      // distinct header names the routes of one vhost match on
	MaxNameLen      = 1024    // route_name, listener names, query parameter names
	MaxWeight       = 1000000 // backend and group weights
	DefaultWeight   = 100
	DefaultRedirect = 302
)

// MaxHeaderName is what Varnish 7.1 can handle: its header helpers
// (http_GetHdr, http_Unset, ...) take a name as "\<len>Name:" whose
// length byte, name plus colon, is a signed char, at most 127; VRY_Create
// refuses Vary names longer than 127 bytes and asserts (panics the child)
// on exactly 127. The shim joins repeated request lines and applies header
// filters through the same form, so a longer name would be routed on but
// not joined, filtered or varied on.

// errCtx names where a validation error is: the file, a vhost, a route.
type errCtx struct {
	file    string
	inVhost bool
	vhost   string
	route   int // -1 = vhost level
}

func (c errCtx) errorf(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	switch {
	case !c.inVhost:
		return fmt.Errorf("%s: %s", c.file, msg)
	case c.route < 0:
		return fmt.Errorf("%s: vhost %q: %s", c.file, c.vhost, msg)
	default:
		return fmt.Errorf("%s: vhost %q route %d: %s", c.file, c.vhost, c.route, msg)
	}
}

// validMethods are the nine standard methods, upper case.
var validMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// isToken reports whether s is an RFC 7230 token (a valid header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// checkHeaderName validates a header name of a matcher or filter.
func checkHeaderName(field, n string) error {
	if len(n) > MaxHeaderName {
		return fmt.Errorf("%s: header name is %d bytes, longer than %d (the most Varnish handles)", field, len(n), MaxHeaderName)
	}
	if !isToken(n) {
		return fmt.Errorf("%s: header name %q is not an RFC 7230 token", field, n)
	}
	return nil
}

// checkHeaderValue validates a value a filter writes into a header.
func checkHeaderValue(field, v string) error {
	if len(v) > MaxValueLen {
		return fmt.Errorf("%s: value longer than %d bytes", field, MaxValueLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '\r' || c == '\n' || c == 0 {
			return fmt.Errorf("%s: value %q contains CR, LF or NUL", field, v)
		}
	}
	return nil
}

// checkPath validates an Exact/PathPrefix value or a rewrite/redirect path:
// it starts with "/" (unless empty is allowed) and holds only characters a
// request path can carry (no space, control character, "?" or "#").
func checkPath(field, p string, allowEmpty bool) error {
	if p == "" && allowEmpty {
		return nil
	}
	if len(p) > MaxPathLen {
		return fmt.Errorf("%s: path longer than %d bytes", field, MaxPathLen)
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%s %q must start with \"/\"", field, p)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= ' ' || c == 0x7f || c == '?' || c == '#' {
			return fmt.Errorf("%s %q contains an invalid character %q", field, p, c)
		}
	}
	return nil
}

// checkHostname validates a DNS hostname (letters, digits, "-", "_", dots;
// non-empty labels; one trailing dot allowed) or a bracketed IPv6 literal.
// It is used for exact vhost keys, wildcard suffixes and filter hostnames.
func checkHostname(h string) string {
	if h == "" {
		return "is empty"
	}
	if len(h) > MaxHostnameLen {
		return fmt.Sprintf("is longer than %d bytes", MaxHostnameLen)
	}
	if h[0] == '[' {
		if h[len(h)-1] != ']' {
			return "is not a valid bracketed IPv6 literal"
		}
		a, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "is not a valid bracketed IPv6 literal"
		}
		return ""
	}
	if strings.IndexByte(h, ':') >= 0 {
		return "must not contain a port (or an unbracketed IPv6 address)"
	}
	s := strings.TrimSuffix(h, ".")
	if s == "" {
		return "has an empty label"
	}
	for rest, more := s, true; more; { // strings.Split's labels, without the slice
		var label string
		label, rest, more = strings.Cut(rest, ".")
		if label == "" {
			return "has an empty label"
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			default:
				return fmt.Sprintf("contains an invalid character %q", c)
			}
		}
	}
	return ""
}

type hostKind uint8

const (
	hostExact hostKind = iota
	hostWild
	hostAll
)

// normVhostKey validates a vhost key and returns its lookup form: the
// lower-case hostname without a trailing dot (exact), ".suffix" (wildcard)
// or "*".
func normVhostKey(k string) (string, hostKind, string) {
	if k == "*" {
		return "*", hostAll, ""
	}
	if strings.HasPrefix(k, "*.") {
		rest := k[2:]
		if strings.IndexByte(rest, '*') >= 0 {
			return "", 0, "only one leading wildcard label is allowed (\"*.example.com\")"
		}
		if rest == "" || rest[0] == '[' {
			return "", 0, "wildcard needs a hostname suffix (\"*.example.com\")"
		}
		if why := checkHostname(rest); why != "" {
			return "", 0, "suffix " + why
		}
		return "." + strings.TrimSuffix(strings.ToLower(rest), "."), hostWild, ""
	}
	if strings.IndexByte(k, '*') >= 0 {
		return "", 0, "a wildcard must be the whole first label (\"*.example.com\")"
	}
	if why := checkHostname(k); why != "" {
		return "", 0, "hostname " + why
	}
	return strings.TrimSuffix(strings.ToLower(k), "."), hostExact, ""
}

// fieldIndex names element j of a list field: "headers[2]".
func fieldIndex(field string, j int) string {
	return field + "[" + strconv.Itoa(j) + "]"
}

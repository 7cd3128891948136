package route

import "strings"

// What a data plane does not compute itself: the reason phrase and body
// of the responses it makes for a decision that is not a fetch, and
// whether a fetched response may be cached (docs/routing.md, "Caching";
// docs/protocol.md, the route answer's rs, bd and nc).

// Reason phrases and bodies of the decisions that are not fetches.
const (
	reasonOK         = "OK"
	reasonNotFound   = "no route"
	reasonNoBackends = "no backends available"
	bodyNotFound     = reasonNotFound + "\n"
	bodyNoBackends   = reasonNoBackends + "\n"
)

// redirectReason is the standard reason phrase of a redirect status
// (RFC 9110 section 15.4); a redirect response has no body.
func redirectReason(status int) string {
	switch status {
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 303:
		return "See Other"
	case 307:
		return "Temporary Redirect"
	case 308:
		return "Permanent Redirect"
	}
	return "Redirect"
}

// fetchRewritten holds the request headers (lower case) a Varnish 7.1
// backend request does not carry as the client sent them: those
// varnishd's header table filters from a fetch (HTTPH_R_FETCH in its
// tbl/http_headers.h: hop-by-hop headers, Range, the conditionals, ...),
// Accept-Encoding (rewritten to gzip, or removed, with
// http_gzip_support) and X-Varnish (varnishd's own). The shim records the
// client's values of these for routing (ghost.prepare()), but Vary cannot:
// varnishd takes an object's Vary values from the backend request.
// TestFetchRewrittenIsVarnishs checks the list against varnishd's table.
var fetchRewritten = map[string]bool{
	"accept-ranges":       true,
	"cache-control":       true,
	"connection":          true,
	"content-range":       true,
	"http2-settings":      true,
	"if-match":            true,
	"if-modified-since":   true,
	"if-none-match":       true,
	"if-range":            true,
	"if-unmodified-since": true,
	"keep-alive":          true,
	"proxy-authenticate":  true,
	"proxy-authorization": true,
	"range":               true,
	"te":                  true,
	"trailer":             true,
	"transfer-encoding":   true,
	"upgrade":             true,
	"accept-encoding":     true,
	"x-varnish":           true,
}

// uncacheable says why a response fetched for a route must not be cached,
// "" when it may be: its vhost routes on header names (lower case) that
// Vary cannot keep apart, because the object's Vary values come from the
// backend request and that request carries another value than the
// client's: a header varnishd rewrites on a fetch, or one the route's
// request filters (ops) set, add to or remove. Served from cache, such an
// object could reach requests another route owns; uncacheable, every
// request is routed by itself. The first such name, in the order of
// names, is the reason.
func uncacheable(names []string, ops *HeaderOps) string {
	for _, n := range names {
		if fetchRewritten[n] {
			return "routes on " + n
		}
		if ops != nil && opsName(ops, n) {
			return "request filter changes routed header " + n
		}
	}
	return ""
}

// opsName: do ops set, add to or remove header n (ASCII case-insensitive)?
func opsName(ops *HeaderOps, n string) bool {
	for _, h := range ops.Set {
		if strings.EqualFold(h.Name, n) {
			return true
		}
	}
	for _, h := range ops.Add {
		if strings.EqualFold(h.Name, n) {
			return true
		}
	}
	for _, r := range ops.Remove {
		if strings.EqualFold(r, n) {
			return true
		}
	}
	return false
}

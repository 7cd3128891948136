package route

import (
	"strconv"
	"strings"
)

// replacePrefix implements ReplacePrefixMatch (docs/routing.md,
// "ReplacePrefixMatch"). prefix is the matched PathPrefix value
// without its trailing "/" ("" for "/" or no path_match), so path equals
// prefix or continues with "/" after it.
func replacePrefix(path, prefix, repl string) string {
	rest := ""
	if len(path) >= len(prefix) {
		rest = path[len(prefix):]
	}
	out := strings.TrimSuffix(repl, "/") + rest
	if out == "" {
		return "/"
	}
	return out
}

// base builds the redirect Location without the query (docs/routing.md,
// "Redirects"):
// scheme://host[:port]path. host and port are the request's Host header
// split by splitHostPort; path is the request path.
func (x *redirect) base(r *Request, host, hostPort, path string, rt *croute) string {
	scheme := x.scheme
	if scheme == "" {
		scheme = "http"
		if r.HTTPS {
			scheme = "https"
		}
	}
	h := x.hostname
	if h == "" {
		h = host
	}
	port := x.port
	if port == 0 {
		switch {
		case x.scheme != "":
			port = defaultPort(x.scheme)
		default:
			if p, err := strconv.Atoi(hostPort); err == nil && p >= 1 && p <= 65535 && hostPort[0] != '+' {
				port = p
			} else {
				port = defaultPort(scheme)
			}
		}
	}
	switch x.mod {
	case modFull:
		path = x.value
	case modPrefix:
		path = replacePrefix(path, rt.prefix, x.value)
	}
	var b strings.Builder
	b.Grow(len(scheme) + 3 + len(h) + 6 + len(path))
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(h)
	if port != defaultPort(scheme) {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(port))
	}
	b.WriteString(path)
	return b.String()
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

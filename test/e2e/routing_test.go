package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/varnish/ghost/route/routetest"
)

func get(host, url string, h ...string) Req { return Req{Host: host, URL: url, Hdr: hdr(h...)} }

func method(m, host, url string, h ...string) Req {
	return Req{Method: m, Host: host, URL: url, Hdr: hdr(h...)}
}

// uniq makes URLs unique per run so that nothing cached by an earlier
// run or check can answer.
func uniq(p string) string { return fmt.Sprintf("%s-%d", p, rand.Uint64()) }

// TestRoutingCases sends route/routetest's cases, which the route unit
// tests decide too, through varnishd, ghost.vcl, the shim and ghostd to the
// upstreams: each must reach its upstream or get its 404, 500 or redirect.
func TestRoutingCases(t *testing.T) {
	e := need(t)
	for _, c := range routetest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			q := Req{Method: c.Method, Host: c.Host, URL: c.URL, Hdr: hdr(c.Headers...)}
			code, loc, _ := strings.Cut(c.Want, " ")
			status, err := strconv.Atoi(code)
			switch {
			case err != nil:
				e.expectUpstream(t, q, c.Want)
			case status == 404:
				e.expectNoRoute(t, q)
			case status == 500:
				e.expectNoBackends(t, q)
			default:
				e.expectRedirect(t, q, status, loc)
			}
		})
	}
}

// TestRouting checks what only the whole stack can get wrong: the Host
// header forwarded unchanged, the client's request seen on the backend
// side, weights, ghost's own answers never cached, filters applied,
// caching never crossing routes, listeners, spoofed X-Ghost-* headers.
func TestRouting(t *testing.T) {
	e := need(t)

	t.Run("host/forwarded-unchanged", func(t *testing.T) {
		// varnishd itself lowercases the Host header (a plain varnishd -b
		// does the same), so compare case-insensitively: ghost must keep
		// the port and the trailing dot it strips for matching only.
		for _, h := range []string{"EXACT.test:8080", "exact.test.", "exact.test.:8080"} {
			r := e.expectUpstream(t, get(h, "/fwd"), "exact")
			if r.Echo != nil && !strings.EqualFold(r.Echo.Host, h) {
				t.Errorf("Host %q: upstream saw Host %q, want it unchanged", h, r.Echo.Host)
			}
		}
	})
	t.Run("host/http10-without-host-404", func(t *testing.T) {
		r, err := RawDo(e.HTTP, "GET /nothing-here HTTP/1.0\r\n\r\n", "GET")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 404 || r.Body != "no route\n" {
			t.Errorf("HTTP/1.0 GET /nothing-here without Host: want 404 %q, got %s", "no route\n", r)
		}
	})
	t.Run("method/head-not-served-from-cached-get", func(t *testing.T) {
		u := uniq("/m-cache")
		cc := []string{"X-Want-Cache-Control", "max-age=60"}
		e.expectUpstream(t, method("GET", "method.test", u, cc...), "m-get-any")
		e.expectUpstream(t, method("HEAD", "method.test", u, cc...), "m-any")
		e.expectUpstream(t, method("GET", "method.test", u, cc...), "m-get-any")
		e.expectUpstream(t, method("HEAD", "method.test", u, cc...), "m-any")
	})

	t.Run("headers/client-values-not-varnish-backend-request", func(t *testing.T) {
		e.expectUpstream(t, get("hdr2.test", "/"), "h2-none")
		e.expectUpstream(t, get("hdr2.test", "/ae", "Accept-Encoding", "br"), "h2-ae")
		e.expectUpstream(t, get("hdr2.test", "/inm", "If-None-Match", `"v1"`), "h2-inm")
		q := get("hdr2.test", "/range", "Range", "bytes=0-3")
		r := e.do(t, q)
		if (r.Status != 200 && r.Status != 206) || r.Header.Get("X-Upstream") != "h2-range" {
			t.Errorf("%s: want 200/206 from upstream %q, got %s", q, "h2-range", r)
		}
	})
	t.Run("weights/canary-90-10", func(t *testing.T) {
		const n = 1000
		counts := e.countUpstreams(t, "canary.test", n)
		if counts["never"] != 0 {
			t.Errorf("weight-0 backend chosen %d times", counts["never"])
		}
		if c := counts["canary"]; c < 50 || c > 160 {
			t.Errorf("canary (weight 10 of 100) got %d of %d, want 50..160", c, n)
		}
		if counts["stable"]+counts["canary"] != n {
			t.Errorf("unexpected upstreams: %v", counts)
		}
	})
	t.Run("weights/groups", func(t *testing.T) {
		const n = 400
		counts := e.countUpstreams(t, "groups.test", n)
		if counts["gnever"] != 0 {
			t.Errorf("weight-0 group chosen %d times", counts["gnever"])
		}
		for _, k := range []string{"g1a", "g1b"} {
			if c := counts[k]; c < n/4 || c > 3*n/4 {
				t.Errorf("%s got %d of %d, want about half (%d..%d)", k, c, n, n/4, 3*n/4)
			}
		}
	})
	t.Run("outcome/404-not-cached", func(t *testing.T) {
		q := get("path.test.nf.test", "/nope")
		r1 := e.expectNoRoute(t, q)
		r2 := e.expectNoRoute(t, q)
		if r1.Hit() || r2.Hit() {
			t.Errorf("404 served from cache: X-Varnish %q then %q", r1.Header.Get("X-Varnish"), r2.Header.Get("X-Varnish"))
		}
	})
	t.Run("outcome/500-not-cached", func(t *testing.T) {
		for _, p := range []string{"/none", "/zero", "/emptygroups", "/zerogroups"} {
			q := get("nobackends.test", p)
			r1 := e.expectNoBackends(t, q)
			r2 := e.expectNoBackends(t, q)
			if r1.Hit() || r2.Hit() {
				t.Errorf("%s: 500 served from cache", q)
			}
		}
	})

	t.Run("redirect/x-forwarded-proto-from-trusted-front", func(t *testing.T) {
		// loopback is a trusted front (vcl/ghost.vcl acl ghost_trusted_front)
		e.expectRedirect(t, get("redir.test", "/host", "X-Forwarded-Proto", "https"), 302, "https://other.test/host")
		e.expectRedirect(t, get("redir.test:8443", "/host", "X-Forwarded-Proto", "https"), 302, "https://other.test:8443/host")
		e.expectRedirect(t, get("redir.test:443", "/host", "X-Forwarded-Proto", "https"), 302, "https://other.test/host")
		// an untrusted client's X-Forwarded-Proto is ignored
		q := get("redir.test", "/host", "X-Forwarded-Proto", "https")
		r, err := e.DoProxy(q, "192.0.2.7")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 302 || r.Header.Get("Location") != "http://other.test/host" {
			t.Errorf("%s from untrusted 192.0.2.7: want 302 http://other.test/host, got %s", q, r)
		}
	})
	t.Run("redirect/not-cached", func(t *testing.T) {
		r1 := e.expectRedirect(t, get("redir.test", "/full?nc=1"), 301, "http://redir.test/new/full?nc=1")
		r2 := e.expectRedirect(t, get("redir.test", "/full?nc=1"), 301, "http://redir.test/new/full?nc=1")
		if r1.Hit() || r2.Hit() {
			t.Errorf("redirect served from cache")
		}
	})

	t.Run("filters/request-header-set-add-remove", func(t *testing.T) {
		r := e.expectUpstream(t, get("filter.test", "/reqhdr",
			"X-Set", "old", "x-set", "old2", "X-Add", "a,b", "X-Remove", "1", "x-remove", "2", "X-Keep", "k"), "f")
		if r.Echo == nil {
			return
		}
		h := r.Echo.Headers
		if !slices.Equal(h["x-set"], []string{"new"}) {
			t.Errorf("set: upstream saw x-set %q, want [new]", h["x-set"])
		}
		if got := strings.Join(h["x-add"], ","); got != "a,b,c" {
			t.Errorf("add: upstream saw x-add %q (joined %q), want a,b,c", h["x-add"], got)
		}
		if v, ok := h["x-remove"]; ok {
			t.Errorf("remove: upstream still saw x-remove %q", v)
		}
		if !slices.Equal(h["x-keep"], []string{"k"}) {
			t.Errorf("untouched header x-keep = %q, want [k]", h["x-keep"])
		}
		r = e.expectUpstream(t, get("filter.test", "/reqhdr"), "f")
		if r.Echo != nil && strings.Join(r.Echo.Headers["x-add"], ",") != "c" {
			t.Errorf("add without an existing line: upstream saw x-add %q, want c", r.Echo.Headers["x-add"])
		}
		// the filter belongs to its route only
		r = e.expectUpstream(t, get("filter.test", "/plain", "X-Set", "old"), "f")
		if r.Echo != nil && !slices.Equal(r.Echo.Headers["x-set"], []string{"old"}) {
			t.Errorf("route without filter: upstream saw x-set %q, want [old]", r.Echo.Headers["x-set"])
		}
	})
	t.Run("filters/response-header-set-add-remove", func(t *testing.T) {
		q := get("filter.test", "/resphdr", "X-Want-Set-Cookie", "a=1")
		r := e.do(t, q)
		if r.Status != 200 || r.Echo == nil || r.Echo.Upstream != "f" {
			t.Fatalf("%s: want 200 from f, got %s", q, r)
		}
		if v := r.Header.Values("X-Resp-Set"); !slices.Equal(v, []string{"s"}) {
			t.Errorf("set: X-Resp-Set = %q, want [s]", v)
		}
		if v := r.Header.Get("Content-Type"); v != "text/x-ghost" {
			t.Errorf("set replaces: Content-Type = %q, want text/x-ghost", v)
		}
		if v := r.Header.Values("X-Resp-Add"); strings.Join(v, ",") != "a" {
			t.Errorf("add: X-Resp-Add = %q, want a", v)
		}
		if v := r.Header.Values("X-Upstream"); len(v) != 0 {
			t.Errorf("remove: X-Upstream still present: %q", v)
		}
		cookies := append([]string(nil), r.Header.Values("Set-Cookie")...)
		sort.Strings(cookies)
		if !slices.Equal(cookies, []string{"a=1", "b=2"}) {
			t.Errorf("add Set-Cookie: got lines %q, want two separate lines a=1 and b=2", r.Header.Values("Set-Cookie"))
		}
		// add keeps the upstream's line
		q = get("filter.test", "/respadd")
		r = e.do(t, q)
		if got := strings.Join(r.Header.Values("X-Upstream"), ","); r.Status != 200 || got != "f,extra" {
			t.Errorf("%s: add to an existing response header: X-Upstream %q, want f,extra; got %s", q, got, r)
		}
		// not applied to other routes
		r = e.expectUpstream(t, get("filter.test", "/plain"), "f")
		if v := r.Header.Get("X-Resp-Set"); v != "" {
			t.Errorf("route without filter got X-Resp-Set %q", v)
		}
	})
	t.Run("filters/rewrite-full-path-keeps-query", func(t *testing.T) {
		e.expectRewrite(t, get("filter.test", "/rewrite/full?q=1&r"), "filter.test", "/replaced?q=1&r")
		e.expectRewrite(t, get("filter.test", "/rewrite/full"), "filter.test", "/replaced")
	})
	t.Run("filters/rewrite-prefix", func(t *testing.T) {
		e.expectRewrite(t, get("filter.test", "/rewrite/prefix/a/b?x=1"), "filter.test", "/new/a/b?x=1")
		e.expectRewrite(t, get("filter.test", "/rewrite/prefix"), "filter.test", "/new")
		e.expectRewrite(t, get("filter.test", "/rewrite/prefix/"), "filter.test", "/new/")
		e.expectRewrite(t, get("filter.test", "/strip/a"), "filter.test", "/a")
		e.expectRewrite(t, get("filter.test", "/strip"), "filter.test", "/")
		e.expectRewrite(t, get("filter.test", "/strip?k=v"), "filter.test", "/?k=v")
	})
	t.Run("filters/rewrite-prefix-without-path-match", func(t *testing.T) {
		e.expectRewrite(t, get("rewrite-root.test", "/foo?x=1"), "rewrite-root.test", "/v2/foo?x=1")
		e.expectRewrite(t, get("rewrite-root.test", "/"), "rewrite-root.test", "/v2/") // p = "", rest = "/"
		e.expectRewrite(t, get("rewrite-root.test", "/a/b/"), "rewrite-root.test", "/v2/a/b/")
	})
	t.Run("filters/rewrite-hostname", func(t *testing.T) {
		// routing is not redone for the new host (it has no vhost)
		e.expectRewrite(t, get("filter.test", "/rewrite/host?z=1"), "rewritten.test", "/rewrite/host?z=1")
		r := e.expectRewrite(t, get("filter.test", "/rewrite/both?z=2"), "rewritten.test", "/both?z=2")
		if r != nil && r.Echo != nil && !slices.Equal(r.Echo.Headers["x-set"], []string{"both"}) {
			t.Errorf("header modifier with rewrite: x-set = %q, want [both]", r.Echo.Headers["x-set"])
		}
		e.expectRewrite(t, get("filter.test:8080", "/plain"), "filter.test:8080", "/plain")
	})

	t.Run("cache/never-crosses-header-routes", func(t *testing.T) {
		cc := []string{"X-Want-Cache-Control", "max-age=60"}
		beta := append([]string{"x-beta", "1"}, cc...)
		// plain first, then the header route
		u := uniq("/page")
		e.expectUpstream(t, get("cache.test", u, cc...), "c-main")
		r := e.expectUpstream(t, get("cache.test", u, cc...), "c-main")
		if !r.Hit() {
			t.Errorf("precondition: a cacheable upstream response (max-age=60) was not cached (X-Varnish %q); the check below would prove nothing", r.Header.Get("X-Varnish"))
		}
		e.expectUpstream(t, get("cache.test", u, beta...), "c-beta")
		e.expectUpstream(t, get("cache.test", u, beta...), "c-beta")
		e.expectUpstream(t, get("cache.test", u, cc...), "c-main")
		e.expectUpstream(t, get("cache.test", u, append([]string{"x-beta", "2"}, cc...)...), "c-main")
		e.expectUpstream(t, get("cache.test", u, append([]string{"X-BETA", "1"}, cc...)...), "c-beta")
		// the header route first, then plain
		u = uniq("/page")
		e.expectUpstream(t, get("cache.test", u, beta...), "c-beta")
		e.expectUpstream(t, get("cache.test", u, cc...), "c-main")
		e.expectUpstream(t, get("cache.test", u, beta...), "c-beta")
	})
	t.Run("cache/never-crosses-query-and-method-routes", func(t *testing.T) {
		cc := []string{"X-Want-Cache-Control", "max-age=60"}
		p := uniq("/q")
		e.expectUpstream(t, get("query.test", p+"?v=2", cc...), "q-v2")
		e.expectUpstream(t, get("query.test", p+"?v=3", cc...), "q-v3")
		e.expectUpstream(t, get("query.test", p+"?v=2", cc...), "q-v2")
		p = uniq("/m")
		e.expectUpstream(t, get("method.test", p, cc...), "m-get-any")
		e.expectUpstream(t, method("HEAD", "method.test", p, cc...), "m-any")
	})
	t.Run("cache/never-crosses-repeated-header-lines", func(t *testing.T) {
		cc := []string{"X-Want-Cache-Control", "max-age=60"}
		u := uniq("/multi")
		e.expectUpstream(t, get("hdr.test", u, append([]string{"x-multi", "a"}, cc...)...), "h-none")
		e.expectUpstream(t, get("hdr.test", u, append([]string{"x-multi", "a", "x-multi", "b"}, cc...)...), "h-multi")
		e.expectUpstream(t, get("hdr.test", u, append([]string{"x-multi", "a"}, cc...)...), "h-none")
	})

	t.Run("cache/never-crosses-listener-routes", func(t *testing.T) {
		u := uniq("/lc")
		cc := []string{"X-Want-Cache-Control", "max-age=60"}
		e.expectUpstream(t, get("listener.test", u, cc...), "l-any")
		q := get("listener.test", u, cc...)
		r, err := e.DoProxy(q, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 200 || r.Upstream() != "l-proxy" {
			t.Errorf("%s via listener \"proxy\" after a cached l-any answer: want l-proxy, got %s", q, r)
		}
		e.expectUpstream(t, get("listener.test", u, cc...), "l-any")
	})
	t.Run("listeners", func(t *testing.T) {
		e.expectUpstream(t, get("listener.test", "/"), "l-any")
		q := get("listener.test", "/")
		r, err := e.DoProxy(q, "127.0.0.1")
		if err != nil {
			t.Fatalf("%s via PROXY listener: %v", q, err)
		}
		if r.Status != 200 || r.Upstream() != "l-proxy" {
			t.Errorf("%s via listener \"proxy\": want l-proxy, got %s", q, r)
		}
	})

	t.Run("spoofed-x-ghost-headers-ignored", func(t *testing.T) {
		spoof := []string{
			"X-Ghost-Method", "POST", "X-Ghost-Socket", "proxy", "X-Ghost-Status", "301",
			"X-Ghost-Location", "http://evil.example/", "X-Ghost-Redirect-Config", `{"hostname":"evil.example"}`,
			"X-Ghost-Filter-Context", `{"response_headers":{"set":[{"name":"x-evil","value":"1"}]}}`,
			"X-Ghost-Decision", "evil", "X-Ghost-Backend", "evil",
		}
		e.expectUpstream(t, method("GET", "method.test", "/m", spoof...), "m-get")
		e.expectUpstream(t, method("HEAD", "method.test", "/m", append([]string{"X-Ghost-Method", "GET"}, spoof[2:]...)...), "m-any")
		e.expectUpstream(t, get("listener.test", "/", spoof...), "l-any")
		e.expectNoRoute(t, get("unknown.test", "/nope", spoof...))
		e.expectRedirect(t, get("redir.test", "/https", spoof...), 301, "https://redir.test/https")
		r := e.expectUpstream(t, get("exact.test", "/spoof", spoof...), "exact")
		if r.Header.Get("X-Evil") != "" || r.Header.Get("Location") != "" {
			t.Errorf("spoofed headers influenced the response: %s", r)
		}
		if r.Echo != nil {
			for k, v := range r.Echo.Headers {
				if !strings.HasPrefix(k, "x-ghost-") {
					continue
				}
				for _, s := range v {
					if strings.Contains(s, "evil") || s == "POST" || s == "301" {
						t.Errorf("client-sent %s: %q reached the upstream", k, s)
					}
				}
				t.Logf("note: upstream received internal header %s: %q", k, v)
			}
		}
	})

	t.Run("metrics-endpoint", func(t *testing.T) {
		code, body, err := httpGetDirect("http://" + e.Metrics + "/metrics")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET http://%s/metrics: %d %v", e.Metrics, code, err)
		}
		if !strings.Contains(body, "ghost") {
			t.Errorf("metrics output has no ghost metric:\n%.500s", body)
		}
	})
}

// countUpstreams sends n requests for distinct URLs to host and counts the
// upstreams that answered them.
func (e *Env) countUpstreams(t *testing.T, host string, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		r := e.do(t, get(host, fmt.Sprintf("/w?i=%d", i)))
		if r.Status != 200 {
			t.Fatalf("request %d: %s", i, r)
		}
		counts[r.Upstream()]++
	}
	t.Logf("%s over %d requests: %v", host, n, counts)
	return counts
}

// expectRewrite checks that q reaches upstream f with Host host and URL url.
func (e *Env) expectRewrite(t *testing.T, q Req, host, url string) *Resp {
	t.Helper()
	r := e.expectUpstream(t, q, "f")
	if r.Echo == nil {
		return r
	}
	if r.Echo.URL != url || r.Echo.Host != host {
		t.Errorf("%s: upstream saw Host %q URL %q, want Host %q URL %q", q, r.Echo.Host, r.Echo.URL, host, url)
	}
	return r
}

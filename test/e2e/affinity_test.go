package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// affEndpoints are the upstreams the affinity routes spread over.
var affEndpoints = []string{"stable", "canary", "g1a", "g1b"}

func hashLB(key string, fallback ...string) obj {
	o := obj{"type": "consistent_hash", "key": key}
	if len(fallback) > 0 {
		o["fallback"] = fallback
	}
	return o
}

// split50 is a route on pm split 50/50 between two upstreams.
func (e *Env) split50(pm obj, a, b string) obj {
	return obj{"path_match": pm, "backend_groups": []obj{
		{"weight": 50, "backends": []obj{e.be(a)}},
		{"weight": 50, "backends": []obj{e.be(b)}},
	}}
}

// affVhosts: "aff.test" with consistent-hash routes over eps and
// session persistence routes on a 50/50 split.
func affVhosts(e *Env, eps []string) obj {
	return withVhosts(e, obj{
		"aff.test": routes(
			with(e.to(prefix("/h"), eps...), "load_balancer", hashLB("header:X-User", "cookie:uid", "url")),
			with(e.to(prefix("/ip"), eps...), "load_balancer", hashLB("source_ip")),
			with(e.split50(prefix("/s"), "stable", "canary"), "session_persistence",
				obj{"name": "gs", "absolute_timeout": "1h"}),
			with(e.split50(prefix("/si"), "stable", "canary"), "session_persistence",
				obj{"name": "gi", "idle_timeout": "10m"}),
			with(e.split50(prefix("/sh"), "stable", "canary"), "session_persistence",
				obj{"type": "header", "name": "X-Session"}),
		),
	})
}

func (e *Env) affLoad(t *testing.T, cfg obj) {
	t.Helper()
	if err := e.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	e.mustReload(t)
}

// owners sends each user's request once and returns who served it.
func (e *Env) owners(t *testing.T, users int, q func(i int) Req) []string {
	t.Helper()
	out := make([]string, users)
	for i := range out {
		r := e.do(t, q(i))
		if r.Status != 200 {
			t.Fatalf("%s: %s", q(i), r)
		}
		out[i] = r.Upstream()
	}
	return out
}

func byHeader(i int) Req {
	return Req{Host: "aff.test", URL: "/h/x", Hdr: [][2]string{{"X-User", fmt.Sprintf("user-%d", i)}}}
}

// TestConsistentHash: a key reaches the same endpoint on every request,
// after a reload that keeps the endpoints and after one that removes
// another endpoint; only the removed endpoint's keys move; the fallback
// keys apply in order; source_ip keys on the client address.
func TestConsistentHash(t *testing.T) {
	e := need(t)
	t.Cleanup(func() { e.restoreBase(t) })
	e.affLoad(t, affVhosts(e, affEndpoints))
	const users = 40
	first := e.owners(t, users, byHeader)
	seen := map[string]int{}
	for _, o := range first {
		seen[o]++
	}
	if len(seen) < 3 {
		t.Errorf("40 users reached only %v", seen)
	}
	t.Run("same-key-same-endpoint", func(t *testing.T) {
		for round := 0; round < 3; round++ {
			again := e.owners(t, users, byHeader)
			for i := range again {
				if again[i] != first[i] {
					t.Fatalf("user-%d: %s, then %s", i, first[i], again[i])
				}
			}
		}
	})
	t.Run("fallback-order", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			u := fmt.Sprintf("user-%d", i)
			// the header wins over the cookie
			r := e.do(t, Req{Host: "aff.test", URL: "/h/x", Hdr: [][2]string{{"X-User", u}, {"Cookie", "uid=other-" + u}}})
			if r.Upstream() != first[i] {
				t.Fatalf("header %s and a cookie: %s, header alone: %s", u, r.Upstream(), first[i])
			}
			// no header: the cookie, hashed as the header value would be
			r = e.do(t, Req{Host: "aff.test", URL: "/h/x", Hdr: [][2]string{{"Cookie", "a=1; uid=" + u + "; b=2"}}})
			if r.Upstream() != first[i] {
				t.Fatalf("cookie uid=%s: %s, header with the same value: %s", u, r.Upstream(), first[i])
			}
			// an empty header counts as absent
			r = e.do(t, Req{Host: "aff.test", URL: "/h/x", Hdr: [][2]string{{"X-User", ""}, {"Cookie", "uid=" + u}}})
			if r.Upstream() != first[i] {
				t.Fatalf("empty header, cookie uid=%s: %s, want %s", u, r.Upstream(), first[i])
			}
		}
		// neither: the URL
		urls := map[string]string{}
		for round := 0; round < 2; round++ {
			for i := 0; i < 20; i++ {
				url := fmt.Sprintf("/h/item-%d", i)
				r := e.do(t, Req{Host: "aff.test", URL: url})
				if o, ok := urls[url]; ok && o != r.Upstream() {
					t.Fatalf("%s: %s, then %s", url, o, r.Upstream())
				}
				urls[url] = r.Upstream()
			}
		}
	})
	t.Run("source-ip", func(t *testing.T) {
		got := map[string]string{}
		spread := map[string]bool{}
		for round := 0; round < 2; round++ {
			for i := 1; i <= 20; i++ {
				src := fmt.Sprintf("192.0.2.%d", i)
				r, err := e.DoProxy(Req{Host: "aff.test", URL: "/ip/" + fmt.Sprint(round)}, src)
				if err != nil || r.Status != 200 {
					t.Fatalf("from %s: %v %v", src, r, err)
				}
				if o, ok := got[src]; ok && o != r.Upstream() {
					t.Fatalf("from %s: %s, then %s", src, o, r.Upstream())
				}
				got[src] = r.Upstream()
				spread[r.Upstream()] = true
			}
		}
		if len(spread) < 2 {
			t.Errorf("20 client addresses reached only %v", spread)
		}
	})
	t.Run("reload-same-endpoints", func(t *testing.T) {
		cfg := affVhosts(e, affEndpoints)
		cfg["vhosts"].(obj)["aff-other.test"] = routes(e.to(nil, "stable"))
		e.affLoad(t, cfg)
		again := e.owners(t, users, byHeader)
		for i := range again {
			if again[i] != first[i] {
				t.Fatalf("user-%d: %s, after a reload that kept the endpoints %s", i, first[i], again[i])
			}
		}
	})
	t.Run("bad-spec-keeps-table", func(t *testing.T) {
		cfg := affVhosts(e, affEndpoints)
		rs := cfg["vhosts"].(obj)["aff.test"].(obj)["routes"].([]obj)
		rs[0] = with(rs[0], "load_balancer", hashLB("header:X-User", "cookie:"))
		if err := e.WriteConfig(cfg); err != nil {
			t.Fatal(err)
		}
		r := e.reload(t)
		want := `vhost "aff.test" route 0: load_balancer.fallback[0]: the cookie name is empty`
		if r.Status != 500 || !strings.Contains(r.Header.Get("X-Ghost-Error"), want) {
			t.Fatalf("reload of a bad load_balancer: want 500 naming %q, got %s (%q)", want, r, r.Header.Get("X-Ghost-Error"))
		}
		again := e.owners(t, users, byHeader)
		for i := range again {
			if again[i] != first[i] {
				t.Fatalf("user-%d: %s, after a refused reload %s", i, first[i], again[i])
			}
		}
	})
	t.Run("endpoint-removed", func(t *testing.T) {
		e.affLoad(t, affVhosts(e, affEndpoints[:3]))
		after := e.owners(t, users, byHeader)
		moved := 0
		for i := range after {
			switch {
			case first[i] == "g1b":
				if after[i] == "g1b" {
					t.Fatalf("user-%d still reaches the removed endpoint", i)
				}
				moved++
			case after[i] != first[i]:
				t.Fatalf("user-%d moved from %s to %s, though only g1b left", i, first[i], after[i])
			}
		}
		t.Logf("%d of %d users moved (those of g1b)", moved, users)
	})
}

func setCookie(r *Resp, name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestSessionPersistence: the first response names the endpoint in a
// cookie (or header); requests carrying it stay there across a 50/50
// split; a tampered or unknown token gets normal selection and a new
// session; responses are never cached; a session whose endpoint left
// the route moves.
func TestSessionPersistence(t *testing.T) {
	e := need(t)
	t.Cleanup(func() { e.restoreBase(t) })
	e.affLoad(t, affVhosts(e, affEndpoints))

	get := func(url string, h ...[2]string) *Resp {
		r := e.do(t, Req{Host: "aff.test", URL: url, Hdr: h})
		if r.Status != 200 {
			t.Fatalf("%s: %s", url, r)
		}
		return r
	}
	var sess *http.Cookie
	var owner string
	t.Run("cookie-sticks-across-split", func(t *testing.T) {
		r := get("/s/a")
		sess = setCookie(r, "gs")
		if sess == nil {
			t.Fatalf("first response sets no gs cookie: %v", r.Header)
		}
		owner = r.Upstream()
		sc := r.Header.Get("Set-Cookie")
		if !strings.Contains(sc, "Max-Age=3600") || !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "Path=/") {
			t.Errorf("Set-Cookie %q", sc)
		}
		if strings.Contains(sess.Value, "127.0.0.1") || len(sess.Value) < 18 {
			t.Errorf("the token is not opaque: %q", sess.Value)
		}
		for i := 0; i < 30; i++ {
			r := get("/s/a", [2]string{"Cookie", "x=1; gs=" + sess.Value})
			if r.Upstream() != owner {
				t.Fatalf("request %d with the session went to %s, not %s", i, r.Upstream(), owner)
			}
			if c := setCookie(r, "gs"); c != nil {
				t.Fatalf("request %d: a running session without idle_timeout is set again: %v", i, c)
			}
			if r.Hit() {
				t.Fatalf("request %d was served from cache", i)
			}
		}
		// without the cookie both sides of the split answer
		sides := map[string]bool{}
		for i := 0; i < 40 && len(sides) < 2; i++ {
			sides[get("/s/a").Upstream()] = true
		}
		if len(sides) != 2 {
			t.Errorf("without a session only %v answered", sides)
		}
	})
	t.Run("tampered-token", func(t *testing.T) {
		tok, issued, _ := strings.Cut(sess.Value, ".")
		bad := []string{
			strings.ToUpper(tok[:1]) + strings.ToLower(tok[1:]) + "." + issued,
			tok[:len(tok)-1] + "." + issued,
			tok + "x." + issued,
			tok + ".",
			tok,
			"127.0.0.1:80." + issued,
		}
		for _, v := range bad {
			if v == sess.Value {
				continue
			}
			sides := map[string]bool{}
			for i := 0; i < 40 && len(sides) < 2; i++ {
				r := get("/s/a", [2]string{"Cookie", "gs=" + v})
				sides[r.Upstream()] = true
				if c := setCookie(r, "gs"); c == nil || c.Value == v {
					t.Fatalf("token %q: no new session (%v)", v, c)
				}
			}
			if len(sides) != 2 {
				t.Errorf("token %q: only %v answered (normal selection splits 50/50)", v, sides)
			}
		}
	})
	t.Run("idle-timeout-refreshes", func(t *testing.T) {
		r := get("/si/a")
		c := setCookie(r, "gi")
		if c == nil || c.MaxAge != 600 {
			t.Fatalf("first response: %v", r.Header.Values("Set-Cookie"))
		}
		for i := 0; i < 10; i++ {
			r2 := get("/si/a", [2]string{"Cookie", "gi=" + c.Value})
			c2 := setCookie(r2, "gi")
			if r2.Upstream() != r.Upstream() || c2 == nil || c2.Value != c.Value || c2.MaxAge != 600 {
				t.Fatalf("request %d: %s, cookie %v", i, r2.Upstream(), c2)
			}
		}
	})
	t.Run("header", func(t *testing.T) {
		r := get("/sh/a")
		v := r.Header.Get("X-Session")
		if v == "" {
			t.Fatalf("no X-Session: %v", r.Header)
		}
		for i := 0; i < 20; i++ {
			r2 := get("/sh/a", [2]string{"X-Session", v})
			if r2.Upstream() != r.Upstream() || r2.Header.Get("X-Session") != v {
				t.Fatalf("request %d: %s (want %s), X-Session %q", i, r2.Upstream(), r.Upstream(), r2.Header.Get("X-Session"))
			}
		}
	})
	t.Run("endpoint-removed", func(t *testing.T) {
		cfg := affVhosts(e, affEndpoints)
		other := map[string]string{"stable": "canary", "canary": "stable"}[owner]
		vh := cfg["vhosts"].(obj)["aff.test"].(obj)
		rs := vh["routes"].([]obj)
		rs[2] = with(e.to(prefix("/s"), other), "session_persistence", obj{"name": "gs", "absolute_timeout": "1h"})
		e.affLoad(t, cfg)
		r := get("/s/a", [2]string{"Cookie", "gs=" + sess.Value})
		if r.Upstream() != other {
			t.Fatalf("session of a removed endpoint: %s", r.Upstream())
		}
		if c := setCookie(r, "gs"); c == nil || c.Value == sess.Value {
			t.Fatalf("no new session: %v", c)
		}
	})
}

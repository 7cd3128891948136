package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// cacheVhosts is the base table plus "cache.test", whose routes carry
// cache_policy objects (and one route without).
func cacheVhosts(e *Env, policy obj) obj {
	key := UpstreamKeys()[0]
	return withVhosts(e, obj{
		"cache.test": routes(
			with(e.to(prefix("/d"), key), "cache_policy", obj{"default_ttl_seconds": 100, "grace_seconds": 0,
				"bypass_headers": []obj{{"name": "Authorization"}, {"name": "Cookie", "value_regex": "session="}}}),
			with(e.to(prefix("/f"), key), "cache_policy", obj{"forced_ttl_seconds": 100, "grace_seconds": 0}),
			with(e.to(prefix("/k"), key), "cache_policy", obj{"default_ttl_seconds": 100,
				"cache_key": obj{"headers": []string{"X-Tenant"}, "query_params_exclude": []string{"utm_source", "utm_medium"}}}),
			with(e.to(prefix("/i"), key), "cache_policy", obj{"default_ttl_seconds": 100,
				"cache_key": obj{"query_params_include": []string{"q", "page"}}}),
			with(e.to(prefix("/r"), key), "cache_policy", policy),
			e.to(prefix("/n"), key),
		),
	})
}

// cc asks build/upstream for a Cache-Control header (its default is
// no-store).
func cc(v string) [2]string { return [2]string{"X-Want-Cache-Control", v} }

func (e *Env) cget(t *testing.T, url string, h ...[2]string) *Resp {
	t.Helper()
	return want200(t, url, e.do(t, Req{Host: "cache.test", URL: url, Hdr: h}))
}

// want200 fails the test unless r, the answer to GET url, is a 200.
func want200(t *testing.T, url string, r *Resp) *Resp {
	t.Helper()
	if r.Status != 200 {
		t.Fatalf("GET %s: %s", url, r)
	}
	return r
}

// cgetDecided is cget for a request whose cache decision must be
// ghostd's (doDecided). When ghostd misses the shim's budget, vcl_recv
// falls back to Varnish's own rules, as designed (docs/configuration.md
// "Reload"): the plain URL is looked up, and an object an older policy
// stored under it answers.
func (e *Env) cgetDecided(t *testing.T, url string, h ...[2]string) *Resp {
	t.Helper()
	return want200(t, url, e.doDecided(t, Req{Host: "cache.test", URL: url, Hdr: h}))
}

func hitWant(t *testing.T, what string, r *Resp, hit bool) {
	t.Helper()
	if r.Hit() != hit {
		t.Fatalf("%s: hit=%v, want %v (X-Varnish %q)", what, r.Hit(), hit, r.Header.Get("X-Varnish"))
	}
}

// TestCachePolicy drives every cache_policy rule through varnishd, ghostd
// and a real upstream.
func TestCachePolicy(t *testing.T) {
	e := need(t)
	t.Cleanup(func() { e.restoreBase(t) })
	if err := e.WriteConfig(cacheVhosts(e, obj{"default_ttl_seconds": 100})); err != nil {
		t.Fatal(err)
	}
	e.mustReload(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()) // fresh URLs: the cache outlives tests
	pub := cc("public")

	t.Run("bypass-by-presence-and-regex", func(t *testing.T) {
		u := "/d/" + run
		hitWant(t, "first", e.cget(t, u, pub), false)
		hitWant(t, "second", e.cget(t, u, pub), true)
		hitWant(t, "Authorization", e.cget(t, u, pub, [2]string{"Authorization", "Basic eDp5"}), false)
		hitWant(t, "session cookie", e.cget(t, u, pub, [2]string{"Cookie", "a=1; session=x"}), false)
		hitWant(t, "other cookie", e.cget(t, u, pub, [2]string{"Cookie", "a=1"}), true)
	})
	t.Run("default-vs-forced-ttl", func(t *testing.T) {
		// default: applies without freshness information; the origin's
		// max-age=0 wins; no-store stays uncacheable
		u := "/d/ttl-" + run
		e.cget(t, u, pub)
		hitWant(t, "default, origin public", e.cget(t, u, pub), true)
		u = "/d/ttl0-" + run
		e.cget(t, u, cc("max-age=0"))
		hitWant(t, "default, origin max-age=0", e.cget(t, u, cc("max-age=0")), false)
		// forced: overrides max-age=0 and no-cache, drops the origin's
		// Cache-Control from the stored object ...
		u = "/f/" + run
		r := e.cget(t, u, cc("max-age=0, no-cache"))
		if got := r.Header.Get("Cache-Control"); got != "" {
			t.Fatalf("forced: Cache-Control %q reached the client", got)
		}
		hitWant(t, "forced over max-age=0", e.cget(t, u, cc("max-age=0, no-cache")), true)
		// ... but never caches what the origin calls private or no-store
		u = "/f/priv-" + run
		e.cget(t, u, cc("private"))
		hitWant(t, "forced, private", e.cget(t, u, cc("private")), false)
		u = "/f/nostore-" + run
		e.cget(t, u)
		hitWant(t, "forced, no-store", e.cget(t, u), false)
	})
	t.Run("key-header", func(t *testing.T) {
		u := "/k/h-" + run
		hitWant(t, "a", e.cget(t, u, pub, [2]string{"X-Tenant", "a"}), false)
		hitWant(t, "b", e.cget(t, u, pub, [2]string{"X-Tenant", "b"}), false)
		hitWant(t, "a again", e.cget(t, u, pub, [2]string{"X-Tenant", "a"}), true)
		hitWant(t, "absent", e.cget(t, u, pub), false)
		hitWant(t, "empty", e.cget(t, u, pub, [2]string{"X-Tenant", ""}), false)
		hitWant(t, "absent again", e.cget(t, u, pub), true)
	})
	t.Run("exclude-merges-origin-sees-client-url", func(t *testing.T) {
		first := "/k/q-" + run + "?utm_source=news&b=2&a=1"
		r := e.cget(t, first, pub)
		hitWant(t, "first", r, false)
		if r.Echo == nil || r.Echo.URL != first {
			t.Fatalf("origin saw %v, want %q", r.Echo, first)
		}
		for _, u := range []string{
			"/k/q-" + run + "?a=1&b=2",
			"/k/q-" + run + "?b=2&utm_medium=x&a=1&utm_source=y",
		} {
			r := e.cget(t, u, pub)
			hitWant(t, u, r, true)
			if r.Echo == nil || r.Echo.URL != first {
				t.Fatalf("%s: object of %v, want the one fetched for %q", u, r.Echo, first)
			}
		}
		// repeats keep their order: b=2&b=3 and b=3&b=2 are two objects
		hitWant(t, "b=2&b=3", e.cget(t, "/k/r-"+run+"?b=2&b=3", pub), false)
		hitWant(t, "b=3&b=2", e.cget(t, "/k/r-"+run+"?b=3&b=2", pub), false)
		hitWant(t, "utm_source=1&b=2&b=3", e.cget(t, "/k/r-"+run+"?utm_source=1&b=2&b=3", pub), true)
	})
	t.Run("include-merges", func(t *testing.T) {
		u := "/i/" + run
		r := e.cget(t, u+"?page=2&sid=abc&q=x", pub)
		hitWant(t, "first", r, false)
		hitWant(t, "other sid, other order", e.cget(t, u+"?q=x&sid=def&page=2", pub), true)
		hitWant(t, "other page", e.cget(t, u+"?q=x&page=3", pub), false)
	})
	t.Run("no-policy-origin-default", func(t *testing.T) {
		u := "/n/" + run
		e.cget(t, u, cc("max-age=100"))
		hitWant(t, "origin max-age", e.cget(t, u, cc("max-age=100")), true)
		// the builtin VCL's rules: a Cookie passes
		hitWant(t, "cookie", e.cget(t, u, cc("max-age=100"), [2]string{"Cookie", "a=1"}), false)
	})
}

// TestCachePolicyReload: a reload changes decisions, not stored objects.
// A route that starts to bypass passes at once; a changed cache key makes
// the old objects unreachable (they expire by their old TTL); a policy
// taken away leaves the objects to Varnish's own rules (same key: still
// hits); BAN or PURGE is how to drop them.
func TestCachePolicyReload(t *testing.T) {
	e := need(t)
	t.Cleanup(func() { e.restoreBase(t) })
	load := func(p obj) {
		t.Helper()
		if err := e.WriteConfig(cacheVhosts(e, p)); err != nil {
			t.Fatal(err)
		}
		e.mustReload(t)
	}
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	pub := cc("public")
	u := "/r/" + run + "?utm_source=1"
	load(obj{"default_ttl_seconds": 100})
	e.cget(t, u, pub)
	hitWant(t, "cached", e.cget(t, u, pub), true)

	// after each reload the policy is ghostd's to apply: cgetDecided
	load(obj{"default_ttl_seconds": 100, "bypass_headers": []obj{{"name": "X-Fresh"}}})
	hitWant(t, "new bypass header", e.cgetDecided(t, u, pub, [2]string{"X-Fresh", "1"}), false)
	hitWant(t, "old object, same key", e.cgetDecided(t, u, pub), true)

	load(obj{"default_ttl_seconds": 100, "cache_key": obj{"query_params_exclude": []string{"utm_source"}}})
	hitWant(t, "new key: old object unreachable", e.cgetDecided(t, u, pub), false)
	hitWant(t, "new key: new object", e.cgetDecided(t, "/r/"+run, pub), true)

	load(nil) // "cache_policy": null: no policy
	hitWant(t, "policy removed: Varnish's rules, old key", e.cgetDecided(t, u, pub), true)
}

// TestChaperoneInvalidation drives PURGE and BAN the way the varnish/gateway
// v0.23 chaperone does (internal/invalidation: a Go http.Client, method
// PURGE or BAN, the path as the URL, the hostname as Host; success is
// 200 or 404 for PURGE, 200 for BAN).
func TestChaperoneInvalidation(t *testing.T) {
	e := need(t)
	t.Cleanup(func() { e.restoreBase(t) })
	if err := e.WriteConfig(cacheVhosts(e, obj{"default_ttl_seconds": 100})); err != nil {
		t.Fatal(err)
	}
	e.mustReload(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	pub := cc("public")
	client := &http.Client{Timeout: 10 * time.Second}
	send := func(method, hostname, path string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(context.Background(), method, "http://"+e.HTTP+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = hostname
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	a, b := "/d/inv-"+run+"/a", "/d/inv-"+run+"/b"
	for _, u := range []string{a, b} {
		e.cget(t, u, pub)
		hitWant(t, u, e.cget(t, u, pub), true)
	}
	if st := send("PURGE", "cache.test", a); st != 200 {
		t.Fatalf("PURGE: %d, want 200", st)
	}
	hitWant(t, "purged", e.cget(t, a, pub), false)
	hitWant(t, "not purged", e.cget(t, b, pub), true)
	if st := send("PURGE", "cache.test", "/d/inv-"+run+"/none"); st != 404 {
		t.Fatalf("PURGE of nothing: %d, want 404 (the chaperone counts it a success)", st)
	}
	if st := send("BAN", "cache.test", "/d/inv-"+run+"/.*"); st != 200 {
		t.Fatalf("BAN: %d, want 200", st)
	}
	hitWant(t, "banned a", e.cget(t, a, pub), false)
	hitWant(t, "banned b", e.cget(t, b, pub), false)
	// A hostname the chaperone's own validation would refuse is refused
	// here too, and widens nothing.
	if st := send("BAN", "cache.test && obj.status ~ .", "/"); st != 400 {
		t.Fatalf("hostile BAN: %d, want 400", st)
	}
	hitWant(t, "after hostile BAN", e.cget(t, b, pub), true)
	// From anywhere but loopback: 403, never routed.
	r, err := e.DoProxy(Req{Method: "PURGE", Host: "cache.test", URL: b}, "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != 403 || r.Echo != nil {
		t.Fatalf("non-loopback PURGE: %s, want 403 from varnishd", r)
	}
	hitWant(t, "after non-loopback PURGE", e.cget(t, b, pub), true)
}

package e2e

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const reloadURL = "/.varnish-ghost/reload"

// reload asks for a reload through varnishd from loopback.
func (e *Env) reload(t *testing.T) *Resp {
	t.Helper()
	return e.do(t, Req{Host: "localhost", URL: reloadURL})
}

// mustReload reloads and fails the test unless it answered 200.
func (e *Env) mustReload(t *testing.T) {
	t.Helper()
	if r := e.reload(t); r.Status != 200 {
		t.Fatalf("reload: want 200, got %s", r)
	}
}

// restoreBase puts the base config back (also after a failed test).
func (e *Env) restoreBase(t *testing.T) {
	t.Helper()
	if err := e.WriteConfig(BaseConfig(e)); err != nil {
		t.Fatalf("restore base config: %v", err)
	}
	if r := e.reload(t); r.Status != 200 {
		t.Errorf("restore base config: reload answered %s", r)
	}
}

func withVhosts(e *Env, extra obj) obj {
	v := BaseVhosts(e)
	for k, x := range extra {
		v[k] = x
	}
	return obj{"version": 2, "vhosts": v}
}

// TestReloadEndpoint checks /.varnish-ghost/reload (docs/vcl.md) and the
// outcomes that need a different table (no vhost at all, empty file).
// ghostd runs with -watch=false here, so only an explicit reload can
// change the table.
func TestReloadEndpoint(t *testing.T) {
	e := need(t)
	t.Cleanup(func() { e.restoreBase(t) })

	t.Run("loopback-reload-200", func(t *testing.T) {
		e.mustReload(t)
	})
	t.Run("new-config-applied-only-after-reload", func(t *testing.T) {
		e.expectNoRoute(t, get("newhost.test", "/"))
		if err := e.WriteConfig(withVhosts(e, obj{"newhost.test": routes(e.to(nil, "newhost"))})); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		// the 404 above must not have been cached, and nothing reloads by itself
		e.expectNoRoute(t, get("newhost.test", "/"))
		e.mustReload(t)
		e.expectUpstream(t, get("newhost.test", "/"), "newhost")
	})
	t.Run("any-method", func(t *testing.T) {
		for _, m := range []string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS"} {
			q := Req{Method: m, Host: "localhost", URL: reloadURL}
			if r := e.do(t, q); r.Status != 200 {
				t.Errorf("%s: want 200, got %s", q, r)
			}
		}
	})
	t.Run("exact-url-only", func(t *testing.T) {
		for _, u := range []string{reloadURL + "/", reloadURL + "x", reloadURL + "?x=1", "/.varnish-ghost/reloa", "/x" + reloadURL} {
			e.expectNoRoute(t, get("reload.test", u))
		}
	})
	t.Run("failed-reload-500-keeps-old-table", func(t *testing.T) {
		bad := withVhosts(e, obj{
			"newhost.test": routes(e.to(nil, "newhost")),
			"bad.test":     routes(e.to(prefix("no-slash"), "newhost")),
		})
		if err := e.WriteConfig(bad); err != nil {
			t.Fatal(err)
		}
		r := e.reload(t)
		if r.Status != 500 {
			t.Errorf("reload of an invalid file: want 500, got %s", r)
		}
		msg := r.Header.Get("X-Ghost-Error")
		t.Logf("x-ghost-error: %s", msg)
		if !strings.Contains(msg, "ghost.json") || !strings.Contains(msg, "bad.test") {
			t.Errorf("x-ghost-error %q should name the file and the vhost", msg)
		}
		// old table still live
		e.expectUpstream(t, get("newhost.test", "/"), "newhost")
		e.expectUpstream(t, get("exact.test", "/"), "exact")
		e.expectNoRoute(t, get("bad.test", "no-slash"))
		// syntactically broken file, and wrong version
		for _, body := range []string{`{"version": 2, "vhosts": {`, `{"version": 1, "vhosts": {}}`} {
			if err := e.WriteConfig(body); err != nil {
				t.Fatal(err)
			}
			r := e.reload(t)
			if r.Status != 500 || r.Header.Get("X-Ghost-Error") == "" {
				t.Errorf("reload of %q: want 500 with x-ghost-error, got %s", body, r)
			}
			e.expectUpstream(t, get("newhost.test", "/"), "newhost")
		}
	})
	t.Run("non-loopback-client-403-no-reload", func(t *testing.T) {
		if err := e.WriteConfig(BaseConfig(e)); err != nil {
			t.Fatal(err)
		}
		e.mustReload(t)
		e.expectNoRoute(t, get("newhost.test", "/"))
		if err := e.WriteConfig(withVhosts(e, obj{"newhost.test": routes(e.to(nil, "newhost"))})); err != nil {
			t.Fatal(err)
		}
		for _, src := range []string{"192.0.2.1", "10.1.2.3"} {
			q := Req{Host: "localhost", URL: reloadURL}
			r, err := e.DoProxy(q, src)
			if err != nil {
				t.Fatalf("%s from %s: %v", q, src, err)
			}
			if r.Status != 403 {
				t.Errorf("%s from client %s (PROXY listener): want 403, got %s", q, src, r)
			}
		}
		e.expectNoRoute(t, get("newhost.test", "/"))
		// the same PROXY listener with a loopback client is allowed
		r, err := e.DoProxy(Req{Host: "localhost", URL: reloadURL}, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 200 {
			t.Errorf("reload from 127.0.0.1 over PROXY: want 200, got %s", r)
		}
		e.expectUpstream(t, get("newhost.test", "/"), "newhost")
	})
	t.Run("no-vhost-404", func(t *testing.T) {
		v := BaseVhosts(e)
		delete(v, "*")
		if err := e.WriteConfig(obj{"version": 2, "vhosts": v}); err != nil {
			t.Fatal(err)
		}
		e.mustReload(t)
		e.expectNoRoute(t, get("unknown.test", "/catchall"))
		e.expectNoRoute(t, get("wild.test", "/catchall"))
		e.expectUpstream(t, get("exact.test", "/"), "exact")
	})
	t.Run("empty-config-404", func(t *testing.T) {
		for _, body := range []string{`{"version": 2}`, `{"version": 2, "vhosts": {}}`, `{"version": 2, "vhosts": null}`} {
			if err := e.WriteConfig(body); err != nil {
				t.Fatal(err)
			}
			e.mustReload(t)
			e.expectNoRoute(t, get("exact.test", "/"))
			e.expectNoRoute(t, get("unknown.test", "/catchall"))
		}
	})
	t.Run("restored", func(t *testing.T) {
		if err := e.WriteConfig(BaseConfig(e)); err != nil {
			t.Fatal(err)
		}
		e.mustReload(t)
		e.expectUpstream(t, get("exact.test", "/"), "exact")
		e.expectUpstream(t, get("unknown.test", "/catchall"), "catchall")
	})
}

// loadVhosts is the part of the table that changes under load. Variant A
// and B list routes in different orders with different priorities and
// rule indexes, and move routes between ports that answer with the same
// upstream name, so every request has one correct answer in both.
func loadVhosts(e *Env, b bool) obj {
	hdrMatch := []obj{hm("x-load", "yes", "Exact")}
	v := obj{}
	if !b {
		v["load.test"] = routes(
			e.to(prefix("/"), "lroot"),
			e.to(prefix("/a"), "la"),
			e.to(prefix("/b"), "lb"),
			obj{"path_match": exact("/w"), "backend_groups": []obj{
				{"weight": 1, "backends": []obj{e.be("lw")}},
				{"weight": 1, "backends": []obj{e.be("lw#2")}},
			}},
			with(e.to(exact("/h"), "lh"), "headers", hdrMatch),
			with(e.to(nil, "lq"), "query_params", []obj{hm("v", "1", "Exact")}),
			obj{"path_match": exact("/r"), "filters": obj{"request_redirect": obj{"hostname": "target.test", "status_code": 301}}},
		)
		v["load404.test"] = routes(e.to(exact("/x"), "lb"))
		v["load500.test"] = routes(obj{"backends": []obj{}})
	} else {
		v["load.test"] = routes(
			obj{"path_match": exact("/r"), "filters": obj{"request_redirect": obj{"hostname": "target.test", "status_code": 301}}, "priority": 3},
			with(e.to(nil, "lq"), "query_params", []obj{hm("v", "^1$", "RegularExpression")}, "priority", 9),
			with(e.to(exact("/h"), "lh"), "headers", []obj{hm("X-Load", "^yes$", "RegularExpression")}, "rule_index", 4),
			obj{"path_match": exact("/w"), "backend_groups": []obj{
				{"weight": 5, "backends": []obj{e.be("lw#3"), e.be("lw")}},
				{"weight": 0, "backends": []obj{e.be("never")}},
			}, "priority": 1},
			with(e.to(prefix("/b/"), "lb"), "priority", 2),
			with(e.to(prefix("/a/"), "la#2"), "rule_index", 7),
			with(e.to(nil, "lroot"), "priority", 100),
		)
		v["load404.test"] = routes(with(e.to(exact("/x"), "lb"), "priority", 1))
		v["load500.test"] = routes(obj{"backend_groups": []obj{{"weight": 0, "backends": []obj{e.be("never")}}}})
		v["lextra.test"] = routes(e.to(nil, "lextra"))
	}
	return v
}

// loadCase is one request of the load mix and its one correct answer.
type loadCase struct {
	q        func(i int) Req
	status   int
	upstream string
	location func(i int) string
}

func loadMix() []loadCase {
	return []loadCase{
		{q: func(int) Req { return get("load.test", "/a/1") }, status: 200, upstream: "la"},
		{q: func(int) Req { return get("load.test", "/b") }, status: 200, upstream: "lb"},
		{q: func(int) Req { return get("load.test", "/w") }, status: 200, upstream: "lw"},
		{q: func(int) Req { return get("load.test", "/h", "x-load", "yes") }, status: 200, upstream: "lh"},
		{q: func(int) Req { return get("load.test", "/h") }, status: 200, upstream: "lroot"},
		{q: func(i int) Req { return get("load.test", "/q?v=1&n="+strconv.Itoa(i)) }, status: 200, upstream: "lq"},
		{q: func(i int) Req { return get("load.test", "/r?n="+strconv.Itoa(i)) }, status: 301,
			location: func(i int) string { return "http://target.test/r?n=" + strconv.Itoa(i) }},
		{q: func(int) Req { return get("load404.test", "/y") }, status: 404},
		{q: func(int) Req { return get("load500.test", "/") }, status: 500},
		{q: func(int) Req { return get("exact.test", "/load") }, status: 200, upstream: "exact"},
		{q: func(int) Req { return method("HEAD", "method.test", "/m") }, status: 200, upstream: "m-any"},
		{q: func(int) Req { return get("hdr.test", "/", "x-env", "canary") }, status: 200, upstream: "h-canary"},
	}
}

// loadStats counts the outcome of a load run.
type loadStats struct {
	sent, failed, misrouted atomic.Int64
	mu                      sync.Mutex
	examples                []string
	failedAt                []time.Time // when each failed answer came
}

func (s *loadStats) note(kind string, q Req, got string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind == "failed" {
		s.failedAt = append(s.failedAt, time.Now())
	}
	if len(s.examples) < 10 {
		s.examples = append(s.examples, fmt.Sprintf("%s: %s -> %s", kind, q, got))
	}
}

// check classifies one answer: failed (transport error or an answer that
// is not a routing outcome, e.g. 503) or misrouted (a routing outcome,
// but the wrong one).
func (s *loadStats) check(c loadCase, i int, r *Resp, err error) {
	s.sent.Add(1)
	q := c.q(i)
	if err != nil {
		s.failed.Add(1)
		s.note("failed", q, err.Error())
		return
	}
	switch r.Status {
	case 200, 301, 302, 404, 500:
	default:
		s.failed.Add(1)
		s.note("failed", q, r.String())
		return
	}
	ok := r.Status == c.status
	if ok && c.upstream != "" && r.Upstream() != c.upstream {
		ok = false
	}
	if ok && c.location != nil && r.Header.Get("Location") != c.location(i) {
		ok = false
	}
	if !ok {
		s.misrouted.Add(1)
		s.note("misrouted", q, r.String())
	}
}

// TestReloadUnderLoad alternates two equivalent configs every 100 ms while
// several goroutines send requests: no request may fail or be misrouted
// (docs/reliability.md).
func TestReloadUnderLoad(t *testing.T) {
	e := need(t)
	t.Cleanup(func() { e.restoreBase(t) })
	cfgA := withVhosts(e, loadVhosts(e, false))
	cfgB := withVhosts(e, loadVhosts(e, true))
	if err := e.WriteConfig(cfgA); err != nil {
		t.Fatal(err)
	}
	e.mustReload(t)
	// every case right before load starts, so a failure here is a plain
	// routing bug rather than a reload one
	t.Run("both-configs-route-the-mix-alike", func(t *testing.T) {
		e.checkMixAlike(t, cfgA, cfgB)
	})
	if t.Failed() {
		return
	}
	t.Run("alternate-configs-every-100ms-under-load", func(t *testing.T) {
		e.reloadUnderLoad(t, cfgA, cfgB)
	})
	t.Run("removed-backends-leave-backend.list", func(t *testing.T) {
		e.checkRetired(t, cfgB)
	})
}

// checkMixAlike checks that every case of the load mix has its expected
// answer under both configs, without load.
func (e *Env) checkMixAlike(t *testing.T, cfgA, cfgB obj) {
	t.Helper()
	for _, useB := range []bool{false, true, false} {
		cfg := cfgA
		if useB {
			cfg = cfgB
		}
		if err := e.WriteConfig(cfg); err != nil {
			t.Fatal(err)
		}
		e.mustReload(t)
		var s loadStats
		for i, c := range loadMix() {
			r, err := Do(defaultClient, e.HTTP, c.q(i))
			s.check(c, i, r, err)
		}
		if s.failed.Load()+s.misrouted.Load() > 0 {
			t.Fatalf("config B=%v without load: %d failed, %d misrouted: %v", useB, s.failed.Load(), s.misrouted.Load(), s.examples)
		}
	}
}

// reloadUnderLoad alternates cfgA and cfgB every 100 ms (write + reload
// through varnishd) while workers send the load mix.
func (e *Env) reloadUnderLoad(t *testing.T, cfgA, cfgB obj) {
	t.Helper()

	const (
		workers  = 8
		duration = 8 * time.Second
		every    = 100 * time.Millisecond
	)
	var s loadStats
	stop := make(chan struct{})
	wait := e.runMix(loadMix(), workers, stop, &s)
	reloads, reloadFailures := 0, 0
	var reloadErrs []string
	rc := newClient()
	start := time.Now()
	tick := time.NewTicker(every)
	for time.Since(start) < duration {
		<-tick.C
		cfg := cfgA
		if reloads%2 == 0 {
			cfg = cfgB
		}
		if err := e.WriteConfig(cfg); err != nil {
			t.Error(err)
			break
		}
		reloads++
		r, err := Do(rc, e.HTTP, Req{Host: "localhost", URL: reloadURL})
		if err != nil || r.Status != 200 {
			reloadFailures++
			if len(reloadErrs) < 5 {
				reloadErrs = append(reloadErrs, fmt.Sprint(r, err))
			}
		}
	}
	tick.Stop()
	close(stop)
	wait()
	elapsed := time.Since(start)
	t.Logf("reload under load: %d workers, %v, %d reloads (%d failed), sent %d, failed %d, misrouted %d (%.0f req/s)",
		workers, elapsed.Round(time.Millisecond), reloads, reloadFailures, s.sent.Load(), s.failed.Load(), s.misrouted.Load(),
		float64(s.sent.Load())/elapsed.Seconds())
	if reloadFailures > 0 {
		t.Errorf("%d of %d reloads failed: %v", reloadFailures, reloads, reloadErrs)
	}
	if s.failed.Load() > 0 || s.misrouted.Load() > 0 {
		t.Errorf("reload under load: %d failed, %d misrouted of %d; examples:\n%s",
			s.failed.Load(), s.misrouted.Load(), s.sent.Load(), strings.Join(s.examples, "\n"))
	}
	if s.sent.Load() < 1000 {
		t.Errorf("only %d requests sent; the load was too light to mean anything", s.sent.Load())
	}
}

// checkRetired puts cfg live and checks that backend.list shows the
// backends of its endpoints only: the ones only the other config used
// were retired (docs/protocol.md, "live").
func (e *Env) checkRetired(t *testing.T, cfg obj) {
	t.Helper()
	if err := e.WriteConfig(cfg); err != nil {
		t.Fatal(err)
	}
	e.mustReload(t)
	// a few requests so the shim notices the new generation and retires
	for i := 0; i < 20; i++ {
		e.do(t, get("load.test", "/a/"+strconv.Itoa(i)))
		e.do(t, get("load.test", "/w"))
	}
	time.Sleep(200 * time.Millisecond)
	e.do(t, get("load.test", "/a/x"))
	var out string
	var err error
	deadline := time.Now().Add(5 * time.Second)
	gone := strconv.Itoa(e.Ports["la"]) // used by config A only
	kept := strconv.Itoa(e.Ports["la#2"])
	for {
		out, err = e.VarnishAdm("backend.list")
		if err != nil {
			t.Fatalf("varnishadm backend.list: %v\n%s", err, out)
		}
		if !strings.Contains(out, gone) || time.Now().After(deadline) {
			break
		}
		e.do(t, get("load.test", "/a/y"))
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out, kept) {
		t.Fatalf("backend.list does not show a live backend by port (%s); cannot tell which were retired:\n%s", kept, out)
	}
	if strings.Contains(out, gone) {
		t.Errorf("backend for 127.0.0.1:%s (only in the previous config) still in backend.list:\n%s", gone, out)
	}
}

package fault

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/varnish/ghost/test/stack"
)

// longTailConfig is baseConfig plus lt.test, a vhost of PathPrefix and
// Exact routes only (so its decisions have path scopes), with a header
// route, a query route, a rewrite and a redirect.
func longTailConfig(u *stack.Upstreams) map[string]any {
	cfg := baseConfig(u)
	p := func(n string) int { return u.Port(n, 0) }
	cfg["vhosts"].(map[string]any)["lt.test"] = map[string]any{
		"routes": []any{
			rt(pm("PathPrefix", "/p0"), p("u0")),
			rt(pm("PathPrefix", "/p1"), p("u1")),
			rt(pm("PathPrefix", "/p1/deep"), p("u2")),
			rt(pm("Exact", "/p1/deep/exact"), p("u3")),
			rt(pm("PathPrefix", "/hdr"), p("u3"), "headers",
				[]any{map[string]any{"name": "x-env", "value": "canary", "type": "Exact"}}),
			rt(pm("PathPrefix", "/hdr"), p("u4")),
			rt(pm("PathPrefix", "/qry"), p("u5"), "query_params",
				[]any{map[string]any{"name": "v", "value": "2", "type": "Exact"}}),
			rt(pm("PathPrefix", "/qry"), p("u0")),
			rt(pm("PathPrefix", "/rw"), p("u1"), "filters",
				map[string]any{"url_rewrite": map[string]any{"path_type": "ReplacePrefixMatch", "replace_prefix_match": "/new"}}),
			map[string]any{"path_match": pm("PathPrefix", "/go"),
				"filters": map[string]any{"request_redirect": map[string]any{"hostname": "elsewhere.test"}}},
		},
		"default_backends": []any{be(p("u5"))},
	}
	return cfg
}

// longTailTargets: every request a URL never seen before, under routed
// prefixes (and the default route) of scoped vhosts.
func longTailTargets() []target {
	return []target{
		{Host: "lt.test", Path: "/p0/item", Tail: true, Want: "u0"},
		{Host: "lt.test", Path: "/p1/item", Tail: true, Want: "u1"},
		{Host: "lt.test", Path: "/p1/deep/item", Tail: true, Want: "u2"},
		{Host: "lt.test", Path: "/p1/deep/exact/below", Tail: true, Want: "u2"},
		{Host: "lt.test", Path: "/hdr/x", Tail: true, Hdr: [][2]string{{"X-Env", "canary"}}, Want: "u3"},
		{Host: "lt.test", Path: "/hdr/x", Tail: true, Hdr: [][2]string{{"X-Env", "stable"}, {"Cookie", "id=1"}}, Want: "u4"},
		{Host: "lt.test", Path: "/qry/x?v=2", Tail: true, Want: "u5"},
		{Host: "lt.test", Path: "/qry/x?v=3&cb=1", Tail: true, Want: "u0"},
		{Host: "lt.test", Path: "/rw/a", Tail: true, Want: "u1"},
		{Host: "lt.test", Path: "/go/a", Tail: true, WantStatus: 302},
		{Host: "lt.test", Path: "/elsewhere", Tail: true, Want: "u5"},
		{Host: "b.test", Path: "/anything", Tail: true, Want: "u4"},
		{Host: "x.wild.test", Path: "/w/1", Tail: true, Want: "u2"},
	}
}

// Scenario 1b: ghostd killed -9 under a long-tail load (every request a
// new URL), restarted after a few seconds. Every request's decision scope
// was seen before the kill, so the memo serves all of them while ghostd
// is away: no request may fail. A request whose decision was never seen
// (a regex vhost's new path, an unknown host) gets 503 meanwhile, which
// proves ghostd was really gone.
func TestGhostdKilledLongTail(t *testing.T) {
	e, began, child := scenario(t, envOpts{config: longTailConfig})
	lo := defaultLoad()
	l := e.startLoad(longTailTargets(), lo)

	time.Sleep(pick(1500*time.Millisecond, 3*time.Second))
	killAt := time.Now()
	e.signalGhostd(syscall.SIGKILL)
	e.gd.Wait(5 * time.Second)
	time.Sleep(1200 * time.Millisecond) // the heartbeat is stale now
	var unseen []sample
	for i, tg := range []target{
		{Host: "a.test", Path: "/r/4242"}, // regex vhost: the whole path is the key
		{Host: "never.test", Path: "/"},
	} {
		s := e.do(tg)
		unseen = append(unseen, s)
		if s.status != 503 {
			t.Errorf("unseen decision %d (%s) while ghostd is down: status %d, want 503", i, tg, s.status)
		}
	}
	time.Sleep(pick(1800*time.Millisecond, 6*time.Second))
	e.startGhostd(nil)
	backAt := time.Now()
	time.Sleep(pick(1500*time.Millisecond, 4*time.Second))

	st := l.stop()
	logText := e.vl5xx.stop()
	if st.failed > 0 {
		t.Errorf("%d of %d long-tail requests failed (want 0: every scope was seen before the kill)", st.failed, st.sent)
		st.logSome(t, "failed", st.failures, 10)
	}
	if st.misrouted > 0 {
		t.Errorf("%d misrouted requests", st.misrouted)
	}
	e.checkChild(child)
	var during int
	for _, s := range st.samples {
		if s.start.After(killAt) && s.end.Before(backAt) {
			during++
		}
	}
	if during == 0 {
		t.Errorf("no request ran while ghostd was down")
	}
	e.summarize("1b ghostd kill -9 under long-tail load", st, began, fmt.Sprintf(
		"every request a new URL under %d scoped targets; down %.1f s; %d requests while down (all from the memo), %d failed (target 0); unseen decisions while down: %d/%d got 503; 5xx logged: %s",
		len(longTailTargets()), backAt.Sub(killAt).Seconds(), during, st.failed,
		count503(unseen), len(unseen), reasonCounts(logText, e.sock)))
}

func count503(ss []sample) int {
	n := 0
	for _, s := range ss {
		if s.status == 503 {
			n++
		}
	}
	return n
}

package route

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/varnish/ghost/route/ring"
)

// Bad load_balancer and session_persistence specs: one exact message
// naming vhost, route and field; the file is refused (the caller keeps
// the old table).
func TestAffinityErrors(t *testing.T) {
	const V = `ghost.json: vhost "api.example.com" route 2: `
	lb := func(s string) string { return route0(`{"load_balancer":` + s + `}`) }
	sp := func(s string) string { return route0(`{"session_persistence":` + s + `}`) }
	cases := []struct{ doc, want string }{
		{lb(`{}`), V + `load_balancer.type is required (consistent_hash or random)`},
		{lb(`{"type":"ring_hash","key":"url"}`), V + `load_balancer.type "ring_hash" must be consistent_hash or random`},
		{lb(`{"type":"consistent_hash"}`), V + `load_balancer.key is required for consistent_hash`},
		{lb(`{"type":"random","key":"url"}`), V + `load_balancer: key and fallback are only for type consistent_hash`},
		{lb(`{"type":"consistent_hash","key":"uri"}`), V + `load_balancer.key "uri" must be url, cache_key, source_ip, header:<name> or cookie:<name>`},
		{lb(`{"type":"consistent_hash","key":"query:id"}`), V + `load_balancer.key "query:id" must be url, cache_key, source_ip, header:<name> or cookie:<name>`},
		{lb(`{"type":"consistent_hash","key":"header:"}`), V + `load_balancer.key "header:": the header name is empty`},
		{lb(`{"type":"consistent_hash","key":"header:x y"}`), V + `load_balancer.key: header name "x y" is not an RFC 7230 token`},
		{lb(`{"type":"consistent_hash","key":"cookie:"}`), V + `load_balancer.key: the cookie name is empty`},
		{lb(`{"type":"consistent_hash","key":"url","fallback":["source_ip","cookie:"]}`), V + `load_balancer.fallback[1]: the cookie name is empty`},
		{lb(`{"type":"consistent_hash","key":"url","fallback":["cookie:a;b"]}`), V + `load_balancer.fallback[0]: cookie name "a;b" is not an RFC 6265 token`},
		{lb(`{"type":"consistent_hash","key":"header:X-User","fallback":["header:x-user"]}`), V + `load_balancer.fallback[0] "header:x-user" repeats an earlier key`},
		{lb(`{"type":"consistent_hash","key":"url","fallback":["source_ip","cache_key","header:a","header:b","header:c","cookie:d","cookie:e","cookie:f"]}`), V + `load_balancer: more than 8 keys (key and fallback)`},
		{lb(`{"type":"consistent_hash","key":7}`), V + `load_balancer.key: number is not a string (line 1 column 121)`},
		{sp(`{}`), V + `session_persistence.name is required`},
		{sp(`{"type":"url","name":"s"}`), V + `session_persistence.type "url" must be cookie or header`},
		{sp(`{"name":""}`), V + `session_persistence.name: the cookie name is empty`},
		{sp(`{"type":"header","name":""}`), V + `session_persistence.name: the header name is empty`},
		{sp(`{"type":"header","name":"x session"}`), V + `session_persistence.name: header name "x session" is not an RFC 7230 token`},
		{sp(`{"name":"s=1"}`), V + `session_persistence.name: cookie name "s=1" is not an RFC 6265 token`},
		{sp(`{"name":"s","absolute_timeout":"1d"}`), V + `session_persistence.absolute_timeout: "1d" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{sp(`{"name":"s","idle_timeout":"10"}`), V + `session_persistence.idle_timeout: "10" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{sp(`{"name":"s","idle_timeout":""}`), V + `session_persistence.idle_timeout: "" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{sp(`{"name":"s","idle_timeout":"1h1m1s1ms1ms"}`), V + `session_persistence.idle_timeout: "1h1m1s1ms1ms" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{sp(`{"name":"s","idle_timeout":"123456s"}`), V + `session_persistence.idle_timeout: "123456s" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{sp(`{"name":"s","idle_timeout":"-5s"}`), V + `session_persistence.idle_timeout: "-5s" is not a Gateway API duration (like "500ms", "10s", "1m")`},
		{sp(`{"name":"s","absolute_timeout":"0s"}`), V + `session_persistence.absolute_timeout: 0s is below the minimum 1ms`},
		{sp(`{"name":"s","absolute_timeout":"99999h"}`), V + `session_persistence.absolute_timeout: 99999h is above the maximum 8760h`},
	}
	parseErrors(t, cases)
}

func TestGatewayDuration(t *testing.T) {
	for in, want := range map[string]int64{"1s": 1, "1h30m": 5400, "500ms": 1, "1001ms": 2, "2h1m1s1ms": 7262, "99999s": 99999} {
		got, err := gatewayDuration("f", &in)
		if err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", in, got, err, want)
		}
	}
}

const affinityDoc = `{"version":2,"vhosts":{"shop.example":{"routes":[
 {"path_match":{"type":"PathPrefix","value":"/cart"},"route_name":"cart","rule_index":1,
  "backend_groups":[{"weight":50,"backends":[{"address":"10.0.0.1","port":80},{"address":"10.0.0.2","port":80}]},
                    {"weight":50,"backends":[{"address":"10.0.0.3","port":80}]}],
  "session_persistence":{"name":"ghost-s","absolute_timeout":"1h","idle_timeout":"10m"},
  "cache_policy":{"default_ttl_seconds":60}},
 {"path_match":{"type":"PathPrefix","value":"/img"},
  "backends":[{"address":"10.0.0.1","port":80},{"address":"10.0.0.2","port":80,"weight":2},{"address":"::1","port":80}],
  "load_balancer":{"type":"consistent_hash","key":"cookie:user","fallback":["header:X-User","source_ip"]}},
 {"path_match":{"type":"PathPrefix","value":"/img2"},
  "backends":[{"address":"10.0.0.1","port":80},{"address":"10.0.0.2","port":80,"weight":2},{"address":"::1","port":80}],
  "load_balancer":{"type":"consistent_hash","key":"url"}},
 {"path_match":{"type":"PathPrefix","value":"/r"},"backends":[{"address":"10.0.0.1","port":80}],
  "load_balancer":{"type":"random"}}]}}}`

// Decide carries the balancer and the session of the route it chose; a
// session route passes (never cached); equal endpoint sets share a ring.
func TestAffinityDecide(t *testing.T) {
	tb := mustParse(t, affinityDoc)
	d := decide(tb, req("shop.example", "GET", "/img/a.png"))
	lb := d.Balancer
	if lb == nil || d.Session != nil {
		t.Fatalf("img: balancer %v session %v", lb, d.Session)
	}
	want := []HashKey{{KeyCookie, "user"}, {KeyHeader, "x-user"}, {KeySourceIP, ""}}
	if len(lb.Keys) != 3 || lb.Keys[0] != want[0] || lb.Keys[1] != want[1] || lb.Keys[2] != want[2] {
		t.Fatalf("keys %v", lb.Keys)
	}
	if tb.Ring(lb.RingID) != lb.Ring || lb.Ring.ID() != lb.RingID {
		t.Fatal("Table.Ring does not find the decision's ring")
	}
	if m := lb.Ring.Members; len(m) != 3 || m[0].ID != "10.0.0.1:80" || m[2].ID != "[::1]:80" || m[1].Weight != 2 {
		t.Fatalf("members %+v", m)
	}
	d2 := decide(tb, req("shop.example", "GET", "/img2/a.png"))
	if d2.Balancer.Ring != lb.Ring || d2.Balancer.Keys[0] != (HashKey{KeyURL, ""}) {
		t.Fatal("routes with the same endpoints do not share their ring")
	}
	if d := decide(tb, req("shop.example", "GET", "/r")); d.Balancer != nil {
		t.Fatal("type random has a balancer")
	}
	// a reload of the same file: the same ring ID (the shim's cache of
	// rings and the owners of keys survive it)
	if mustParse(t, affinityDoc).Ring(lb.RingID) == nil {
		t.Fatal("the same file gives another ring ID")
	}

	d = decide(tb, req("shop.example", "GET", "/cart"))
	s := d.Session
	if s == nil || s.Type != SessionCookie || s.Name != "ghost-s" || s.Absolute != 3600 || s.Idle != 600 {
		t.Fatalf("session %+v", s)
	}
	if d.Cache != CachePass {
		t.Fatalf("a session route's cache mode is %v, want pass", d.Cache)
	}
	if len(s.Tokens) != 3 {
		t.Fatalf("tokens %v", s.Tokens)
	}
	seen := map[string]bool{}
	for _, tok := range s.Tokens {
		if len(tok) != TokenLen || strings.ContainsAny(tok, ";,= \"") || seen[tok] {
			t.Fatalf("token %q", tok)
		}
		seen[tok] = true
	}
	// the secret decides the tokens; the same secret on another node
	// (another parse) gives the same ones
	tb.SetSessionSecret([]byte("k1"))
	k1 := decide(tb, req("shop.example", "GET", "/cart")).Session.Tokens[0]
	if k1 == s.Tokens[0] && seen[k1] {
		t.Fatal("the secret does not change the token")
	}
	other := mustParse(t, affinityDoc)
	other.SetSessionSecret([]byte("k1"))
	if decide(other, req("shop.example", "GET", "/cart")).Session.Tokens[0] != k1 {
		t.Fatal("the same secret gives another token")
	}
	// the token covers the route's identity: another route_name, another token
	renamed := mustParse(t, strings.Replace(affinityDoc, `"route_name":"cart"`, `"route_name":"basket"`, 1))
	renamed.SetSessionSecret([]byte("k1"))
	if decide(renamed, req("shop.example", "GET", "/cart")).Session.Tokens[0] == k1 {
		t.Fatal("the token does not cover the route")
	}
}

// ringOwners maps n URL keys to their owners' IDs in the ring of a
// file's first route.
func ringOwners(t *testing.T, doc string, n int) []string {
	t.Helper()
	d := decide(mustParse(t, doc), req("h", "GET", "/"))
	if d.Balancer == nil {
		t.Fatal("no balancer")
	}
	r := d.Balancer.Ring
	o := make([]string, n)
	for i := range o {
		o[i] = r.Members[r.Lookup(ring.HashString("/item/"+strconv.Itoa(i)))].ID
	}
	return o
}

func hashRoute(backends string) string {
	return `{"version":2,"vhosts":{"h":{"routes":[{"backend_groups":` + backends + `,"load_balancer":{"type":"consistent_hash","key":"url"}}]}}}`
}

func group(w int, addrs ...string) string {
	var b []string
	for _, a := range addrs {
		b = append(b, `{"address":"`+a+`","port":80}`)
	}
	return `{"weight":` + strconv.Itoa(w) + `,"backends":[` + strings.Join(b, ",") + `]}`
}

// The properties of issue 13 over 100k keys, through ghost.json: the
// endpoints of a route keep their keys when one is added or removed
// (about 1/N move), a group's weight is shared by its endpoints, and
// endpoint order does not matter. Figures: go test -v -run TestAffinityProperties ./route
func TestAffinityProperties(t *testing.T) {
	const n = 100000
	four := hashRoute(`[` + group(1, "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4") + `]`)
	five := hashRoute(`[` + group(1, "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5") + `]`)
	shuffled := hashRoute(`[` + group(1, "10.0.0.4", "10.0.0.2", "10.0.0.1", "10.0.0.3") + `]`)
	a, b, c := ringOwners(t, four, n), ringOwners(t, five, n), ringOwners(t, shuffled, n)
	moved := 0
	for i := range a {
		if a[i] != c[i] {
			t.Fatalf("key %d: %s, %s with the endpoints in another order", i, a[i], c[i])
		}
		if a[i] != b[i] {
			moved++
			if b[i] != "10.0.0.5:80" {
				t.Fatalf("key %d moved from %s to %s, not to the new endpoint", i, a[i], b[i])
			}
		}
	}
	f := float64(moved) / n
	t.Logf("4 -> 5 endpoints: %.4f of keys remapped (1/5 = 0.2000)", f)
	if math.Abs(f-0.2) > 0.05 {
		t.Errorf("remap %.4f", f)
	}
	// weights: a weight-2 group of one endpoint against two weight-1
	// groups; a group of weight 2 with two endpoints: each is weight 1
	w := ringOwners(t, hashRoute(`[`+group(2, "10.0.0.1")+`,`+group(1, "10.0.0.2")+`,`+group(1, "10.0.0.3")+`]`), n)
	g := ringOwners(t, hashRoute(`[`+group(2, "10.0.0.1", "10.0.0.2")+`,`+group(1, "10.0.0.3")+`]`), n)
	cw, cg := map[string]int{}, map[string]int{}
	for i := range w {
		cw[w[i]]++
		cg[g[i]]++
	}
	t.Logf("weights 2:1:1: %.4f %.4f %.4f (0.5 0.25 0.25)", float64(cw["10.0.0.1:80"])/n, float64(cw["10.0.0.2:80"])/n, float64(cw["10.0.0.3:80"])/n)
	t.Logf("group weight 2 over 2 endpoints, 1 over 1: %.4f %.4f %.4f (1/3 each)", float64(cg["10.0.0.1:80"])/n, float64(cg["10.0.0.2:80"])/n, float64(cg["10.0.0.3:80"])/n)
	if r := float64(cw["10.0.0.1:80"]) / float64(cw["10.0.0.2:80"]); r < 1.6 || r > 2.4 {
		t.Errorf("weight 2 owns %.2f times weight 1", r)
	}
	for _, e := range []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"} {
		if s := float64(cg[e]) / n; math.Abs(s-1./3) > 0.06 {
			t.Errorf("%s owns %.4f", e, s)
		}
	}
}

// The examples of docs/configuration.md "load_balancer" and
// "session_persistence" load and mean what the page says.
func TestAffinityDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Skip("docs not present:", err)
	}
	for _, sec := range []string{"## load_balancer", "## session_persistence"} {
		m := regexp.MustCompile("(?s)" + sec + ".*?```json\n(.*?)```").FindSubmatch(doc)
		if m == nil {
			t.Fatalf("no example in docs/configuration.md %s", sec)
		}
		tb, err := Parse("ghost.json", []byte(`{"version":2,"vhosts":{"a":{`+string(m[1])+`}}}`))
		if err != nil {
			t.Fatalf("%s: %v", sec, err)
		}
		var d Decision
		tb.Decide(&Request{Host: "a", Method: "GET", URL: "/cart/x"}, &d)
		if sec == "## load_balancer" {
			if d.Balancer == nil || len(d.Balancer.Keys) != 3 || d.Balancer.Keys[0] != (HashKey{KeyCookie, "user"}) ||
				d.Balancer.Ring.Members[2].Weight != 2 {
				t.Fatalf("%s: %+v", sec, d.Balancer)
			}
			continue
		}
		tb.Decide(&Request{Host: "a", Method: "GET", URL: "/app/x"}, &d)
		if s := d.Session; s == nil || s.Name != "app-session" || s.Absolute != 12*3600 || s.Idle != 1800 ||
			len(s.Tokens) != 2 || d.Cache != CachePass {
			t.Fatalf("%s: %+v", sec, s)
		}
	}
}

// ghostd dump summarises a route's load balancer and session persistence.
func TestAffinityDump(t *testing.T) {
	tb := mustParse(t, affinityDoc)
	got := map[string]RouteDump{}
	for _, v := range tb.Dump() {
		for _, r := range v.Routes {
			got[r.PathValue] = r
		}
	}
	img := got["/img"]
	d := decide(tb, req("shop.example", "GET", "/img/a.png"))
	want := fmt.Sprintf("consistent_hash cookie:user, header:x-user, source_ip (ring %d: %d points over 3 endpoints)",
		d.Balancer.RingID, len(d.Balancer.Ring.Points))
	if img.LoadBalancer != want || img.SessionPersistence != "" {
		t.Errorf("img: %q %q, want %q", img.LoadBalancer, img.SessionPersistence, want)
	}
	if c := got["/cart"]; c.SessionPersistence != "cookie ghost-s, absolute 3600s, idle 600s" || c.LoadBalancer != "" {
		t.Errorf("cart: %q %q", c.LoadBalancer, c.SessionPersistence)
	}
}

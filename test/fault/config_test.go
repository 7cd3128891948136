package fault

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varnish/ghost/test/stack"
)

func churnUpstreams() map[string]int {
	u := baseUpstreams()
	u["c"] = 4
	u["d"] = 4
	return u
}

func churnTargets() []target {
	return append(baseTargets(),
		target{Host: "churn.test", Path: "/c/1", Want: "c"},
		target{Host: "churn.test", Path: "/d/1", Want: "d"},
		target{Host: "churn.test", Path: "/c/2", Want: "c"},
	)
}

// churnConfig is generation i of the churn: the base table with its
// routes shuffled (precedence must not depend on order), churn.test whose
// /c and /d routes move between equivalent endpoints (all ports of "c"
// answer as c) and change shape, plus a varying number of extra routes and
// vhosts nobody requests. final=true gives the settled table: only c[0]
// and d[0].
func churnConfig(u *stack.Upstreams, i int, rng *rand.Rand, final bool) map[string]any {
	cfg := baseConfig(u)
	vh := cfg["vhosts"].(map[string]any)
	if final {
		vh["churn.test"] = map[string]any{"routes": []any{
			rt(pm("PathPrefix", "/c"), u.Port("c", 0)),
			rt(pm("PathPrefix", "/d"), u.Port("d", 0)),
		}}
		return cfg
	}
	a := vh["a.test"].(map[string]any)
	routes := a["routes"].([]any)
	rng.Shuffle(len(routes), func(x, y int) { routes[x], routes[y] = routes[y], routes[x] })
	subset := func(name string) []any {
		ports := u.Ports[name]
		n := 1 + rng.Intn(len(ports))
		off := i % len(ports)
		var out []any
		for k := range n {
			b := be(ports[(off+k)%len(ports)])
			b["weight"] = 1 + rng.Intn(200)
			out = append(out, b)
		}
		return out
	}
	var cr []any
	switch i % 3 {
	case 0:
		cr = []any{
			map[string]any{"path_match": pm("PathPrefix", "/c"), "backends": subset("c")},
			map[string]any{"path_match": pm("PathPrefix", "/d"), "backends": subset("d")},
		}
	case 1:
		cr = []any{
			map[string]any{"path_match": pm("Exact", "/c/1"), "backends": subset("c"), "priority": rng.Intn(100)},
			map[string]any{"path_match": pm("RegularExpression", "^/c/"), "backend_groups": []any{
				map[string]any{"weight": 1 + rng.Intn(100), "backends": subset("c")},
				map[string]any{"weight": 1 + rng.Intn(100), "backends": subset("c")},
			}},
			map[string]any{"path_match": pm("RegularExpression", "^/d/"), "backends": subset("d")},
		}
	default:
		cr = []any{
			map[string]any{"path_match": pm("PathPrefix", "/c/1"), "backends": subset("c"), "rule_index": rng.Intn(5)},
			map[string]any{"path_match": pm("PathPrefix", "/c"), "backends": subset("c")},
			map[string]any{"path_match": pm("PathPrefix", "/d"), "backend_groups": []any{
				map[string]any{"backends": subset("d")},
			}},
		}
	}
	all := append(append([]int{}, u.Ports["c"]...), u.Ports["d"]...)
	for j := range rng.Intn(20) {
		cr = append(cr, rt(pm("PathPrefix", fmt.Sprintf("/extra/%d/%d", i, j)), all[rng.Intn(len(all))]))
	}
	rng.Shuffle(len(cr), func(x, y int) { cr[x], cr[y] = cr[y], cr[x] })
	vh["churn.test"] = map[string]any{"routes": cr}
	for j := range rng.Intn(30) {
		vh[fmt.Sprintf("v%d-%d.churn", i, j)] = map[string]any{"default_backends": []any{be(all[rng.Intn(len(all))])}}
	}
	return cfg
}

// backendsWithPorts returns the ports of the given list that appear in
// `varnishadm backend.list`; the shim names its backends
// "ghost.<addr>:<port>".
func (e *env) backendsWithPorts(ports []int) (string, []int) {
	out, _ := e.v.Adm("backend.list")
	var found []int
	for _, p := range ports {
		ps := strconv.Itoa(p)
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) > 0 && strings.HasSuffix(f[0], ":"+ps) {
				found = append(found, p)
				break
			}
		}
	}
	return out, found
}

// Scenario 4: routes and endpoints change every 50 ms while serving.
func TestConfigChurn(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	e := newEnv(t, envOpts{upstreams: churnUpstreams(), config: func(u *stack.Upstreams) map[string]any {
		return churnConfig(u, 0, rand.New(rand.NewSource(1)), false)
	}})
	e.start()
	began := time.Now()
	child := e.childState()
	st0, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	gen0 := st0.Gen
	l := e.startLoad(churnTargets(), defaultLoad())

	dur := pick(10*time.Second, 60*time.Second)
	stale := append(append([]int{}, e.ups.Ports["c"][1:]...), e.ups.Ports["d"][1:]...)
	end := time.Now().Add(dur)
	writes, seenStale := 0, 0
	for i := 1; i <= int(dur/(50*time.Millisecond))+1 && time.Now().Before(end); i++ {
		e.writeConfig(churnConfig(e.ups, i, rng, false))
		writes++
		if i%40 == 0 {
			_, found := e.backendsWithPorts(stale)
			seenStale = max(seenStale, len(found))
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.writeConfig(churnConfig(e.ups, 0, rng, true))
	if rl, err := stack.GhostdReload(e.sock, 5*time.Second); err != nil || !rl.OK {
		t.Errorf("reload of the final config: %v %+v", err, rl)
	}
	var gen1 uint64
	if st1, err := e.status(); err == nil {
		gen1 = st1.Gen
	}
	time.Sleep(1500 * time.Millisecond) // load keeps running on the final table
	st := l.stop()

	// Backends that are no longer in the config leave backend.list once a
	// request has seen the new generation.
	var list string
	var left []int
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, tg := range churnTargets() {
			e.do(tg)
		}
		list, left = e.backendsWithPorts(stale)
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("backends for ports %v are no longer in the config but still in backend.list:\n%s", left, list)
	}
	if st.failed > 0 {
		t.Errorf("%d failed requests during churn (want 0)", st.failed)
		st.logSome(t, "failed", st.failures, 10)
		e.explain5xx(5)
	}
	if st.misrouted > 0 {
		t.Errorf("%d misrouted requests during churn (want 0)", st.misrouted)
	}
	if gen1 <= gen0 {
		t.Errorf("generation did not move during churn (%d -> %d)", gen0, gen1)
	}
	e.checkChild(child)
	e.summarize("4 config churn", st, began, fmt.Sprintf(
		"%d config writes over %s (every 50 ms), %d reloads applied; up to %d retired-later backends seen in backend.list mid-churn, %d left after",
		writes, dur, gen1-gen0, seenStale, len(left)))
}

type badConfig struct {
	name     string
	inPlace  bool // write without rename (a truncated write as a watcher sees it)
	body     func(good []byte, u *stack.Upstreams) []byte
	keywords []string // the error must mention one of these (case-insensitive)
	names    string   // and this (vhost), when set
}

func badConfigs() []badConfig {
	mutate := func(f func(cfg map[string]any)) func([]byte, *stack.Upstreams) []byte {
		return func(good []byte, u *stack.Upstreams) []byte {
			var cfg map[string]any
			_ = json.Unmarshal(good, &cfg)
			f(cfg)
			b, _ := json.Marshal(cfg)
			return b
		}
	}
	route0 := func(cfg map[string]any, host string) map[string]any {
		return cfg["vhosts"].(map[string]any)[host].(map[string]any)["routes"].([]any)[0].(map[string]any)
	}
	return []badConfig{
		{name: "syntax error", body: func([]byte, *stack.Upstreams) []byte {
			return []byte(`{"version": 2, "vhosts": {"a.test": {"routes": [}}}`)
		}, keywords: []string{"json", "syntax", "invalid character", "parse"}},
		{name: "bad regex", body: mutate(func(cfg map[string]any) {
			route0(cfg, "a.test")["path_match"] = pm("RegularExpression", "([a-z")
		}), keywords: []string{"regex", "regular", "missing closing", "parse"}, names: "a.test"},
		{name: "bad address", body: mutate(func(cfg map[string]any) {
			route0(cfg, "b.test")["backends"] = []any{map[string]any{"address": "999.1.1.1", "port": 80}}
		}), keywords: []string{"address", "999.1.1.1"}, names: "b.test"},
		{name: "wrong version", body: mutate(func(cfg map[string]any) { cfg["version"] = 3 }),
			keywords: []string{"version"}},
		{name: "empty file", inPlace: true, body: func([]byte, *stack.Upstreams) []byte { return nil },
			keywords: []string{"empty", "eof", "end of", "unexpected end"}},
		{name: "truncated write", inPlace: true, body: func(good []byte, _ *stack.Upstreams) []byte { return good[:len(good)/2] },
			keywords: []string{"unexpected end", "eof", "end of", "json", "truncated"}},
	}
}

// reloadViaVarnish calls /.varnish-ghost/reload from loopback.
func (e *env) reloadViaVarnish() (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.v.addr+"/.varnish-ghost/reload", nil)
	req.Host = "a.test"
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Ghost-Error"), nil
}

func ghostdStatusCLI(sock string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(repoRoot, "build/ghostd"), "status", "-socket", sock).CombinedOutput()
	return string(out), err
}

func containsAny(s string, words []string) bool {
	s = strings.ToLower(s)
	for _, w := range words {
		if strings.Contains(s, strings.ToLower(w)) {
			return true
		}
	}
	return false
}

// Scenario 5: bad config written while serving.
func TestBadConfigWhileServing(t *testing.T) {
	e, began, child := scenario(t, envOpts{})
	good, err := os.ReadFile(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	st0, err := e.status()
	if err != nil {
		t.Fatal(err)
	}
	gen0 := st0.Gen
	l := e.startLoad(baseTargets(), defaultLoad())
	time.Sleep(500 * time.Millisecond)

	var lines []string
	for _, bc := range badConfigs() {
		body := bc.body(good, e.ups)
		if bc.inPlace {
			if err := os.WriteFile(e.cfg, body, 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			e.writeConfigBytes(body)
		}
		time.Sleep(pick(300*time.Millisecond, time.Second)) // the watcher sees it too
		code, msg, err := e.reloadViaVarnish()
		switch {
		case err != nil:
			t.Errorf("%s: /.varnish-ghost/reload: %v", bc.name, err)
		case code != 500:
			t.Errorf("%s: /.varnish-ghost/reload answered %d, want 500 (x-ghost-error %q)", bc.name, code, msg)
		case msg == "":
			t.Errorf("%s: /.varnish-ghost/reload answered 500 without x-ghost-error", bc.name)
		case !containsAny(msg, bc.keywords):
			t.Errorf("%s: x-ghost-error %q does not name the problem (want one of %q)", bc.name, msg, bc.keywords)
		case !strings.Contains(msg, "ghost.json"):
			t.Errorf("%s: x-ghost-error %q does not name the file", bc.name, msg)
		case bc.names != "" && !strings.Contains(msg, bc.names):
			t.Errorf("%s: x-ghost-error %q does not name the vhost %q", bc.name, msg, bc.names)
		}
		// status shows the error and exits 1 while the last reload failed.
		out, err := ghostdStatusCLI(e.sock)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !containsAny(out, []string{"last_error", "last error"}) {
			t.Errorf("%s: `ghostd status` does not show last_error and exit 1 (%v):\n%s", bc.name, err, out)
		}
		if s, err := e.status(); err != nil {
			t.Errorf("%s: status after the failed reload: %v", bc.name, err)
		} else if s.Gen != gen0 || s.LastError == "" {
			t.Errorf("%s: after the failed reload, status gen %d (want %d unchanged), last_error %q",
				bc.name, s.Gen, gen0, s.LastError)
		}
		lines = append(lines, fmt.Sprintf("%s → %d %q", bc.name, code, msg))
		t.Logf("%s: /.varnish-ghost/reload → %d, x-ghost-error: %s", bc.name, code, msg)
	}
	e.writeConfigBytes(good)
	code, msg, err := e.reloadViaVarnish()
	if err != nil || code != 200 {
		t.Errorf("reload of the good config: %d %q %v", code, msg, err)
	}
	time.Sleep(500 * time.Millisecond)
	st := l.stop()
	e.checkLoad(st, "while bad configs were written", child)
	e.summarize("5 bad config while serving", st, began, fmt.Sprintf(
		"%d bad files (syntax, regex, address, version, empty, truncated): reload 500 with x-ghost-error, old table kept", len(lines)))
}

// startSlowUpstream serves HTTP on a loopback port from this process,
// answering as name after delay (a fetch that stays in flight).
func startSlowUpstream(t *testing.T, name string, delay time.Duration) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Upstream", name)
		_, _ = io.WriteString(w, name+"\n")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// Scenario 4b: a backend retired while fetches through it are in flight.
func TestBackendRetiredInFlight(t *testing.T) {
	const delay = 4 * time.Second
	portA := startSlowUpstream(t, "slow", delay)
	portB := startSlowUpstream(t, "slow", delay)
	withSlow := func(port int) func(*stack.Upstreams) map[string]any {
		return func(u *stack.Upstreams) map[string]any {
			cfg := baseConfig(u)
			cfg["vhosts"].(map[string]any)["slow.test"] = map[string]any{"default_backends": []any{be(port)}}
			return cfg
		}
	}
	e, began, child := scenario(t, envOpts{config: withSlow(portA)})
	l := e.startLoad(baseTargets(), defaultLoad())

	slow := target{Host: "slow.test", Path: "/slow", Want: "slow"}
	n := 8
	res := make(chan sample, n)
	for i := range n {
		go func() { res <- e.do(target{Host: slow.Host, Path: fmt.Sprintf("/slow/%d", i), Want: "slow"}) }()
	}
	time.Sleep(500 * time.Millisecond)
	_, found := e.backendsWithPorts([]int{portA})
	if len(found) == 0 {
		t.Errorf("backend for port %d not in backend.list while fetches use it", portA)
	}
	e.writeConfig(withSlow(portB)(e.ups))
	if rl, err := stack.GhostdReload(e.sock, 5*time.Second); err != nil || !rl.OK {
		t.Errorf("reload: %v %+v", err, rl)
	}
	reloadAt := time.Now()
	var goneAt time.Time
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, found := e.backendsWithPorts([]int{portA}); len(found) == 0 {
			goneAt = time.Now()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if goneAt.IsZero() {
		list, _ := e.v.Adm("backend.list")
		t.Errorf("backend for port %d still in backend.list 10 s after it left the config:\n%s", portA, list)
	}
	bad := 0
	var lastEnd time.Time
	for range n {
		s := <-res
		if s.end.After(lastEnd) {
			lastEnd = s.end
		}
		if !s.ok(slow) {
			bad++
			t.Errorf("in-flight fetch through the retired backend: status %d upstream %q err %v after %s",
				s.status, s.upstream, s.err, s.end.Sub(s.start).Round(time.Millisecond))
		}
	}
	st := l.stop()
	if st.failed+st.misrouted > 0 {
		t.Errorf("background load: %d failed, %d misrouted", st.failed, st.misrouted)
		st.logSome(t, "failed", st.failures, 5)
	}
	e.checkChild(child)
	when := "after the in-flight fetches ended"
	if !goneAt.IsZero() && goneAt.Before(lastEnd) {
		when = fmt.Sprintf("%.1f s after the reload, while the fetches were in flight", goneAt.Sub(reloadAt).Seconds())
	}
	st.sent += n
	st.failed += bad
	e.summarize("4b backend retired in flight", st, began, fmt.Sprintf(
		"%d fetches of %s through the old backend, %d failed; the old backend left backend.list %s", n, delay, bad, when))
}

package fault

import (
	"bytes"
	"fmt"
	"math/rand"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varnish/ghost/test/stack/procfs"
)

type rawCase struct {
	name string
	req  []byte
	// ok lists the upstreams a 200 may come from; a 200 from anywhere else
	// (or any 200 when empty) is a misroute. Any non-200 answer, or a
	// closed connection, is acceptable: the bar is no crash and no
	// misroute.
	ok []string
}

func rawReq(method, target, proto string, hdrs ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s\r\n", method, target, proto)
	for _, h := range hdrs {
		b.WriteString(h)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func hostileCases() []rawCase {
	big := func(n int) string { return strings.Repeat("a", n) }
	many := func(n int, f func(i int) string) []string {
		out := []string{"Host: a.test"}
		for i := range n {
			out = append(out, f(i))
		}
		return out
	}
	return []rawCase{
		{"header 7.9 KB", rawReq("GET", "/a0", "HTTP/1.1", "Host: a.test", "X-Big: "+big(7900)), []string{"u0"}},
		{"4 headers 7 KB each (28 KB)", rawReq("GET", "/a0", "HTTP/1.1", append([]string{"Host: a.test"},
			"X-Big1: "+big(7000), "X-Big2: "+big(7000), "X-Big3: "+big(7000), "X-Big4: "+big(7000))...), []string{"u0"}},
		{"cookie 7 KB", rawReq("GET", "/a0", "HTTP/1.1", "Host: a.test", "Cookie: c="+big(7000)), []string{"u0"}},
		{"header over http_req_hdr_len", rawReq("GET", "/a0", "HTTP/1.1", "Host: a.test", "X-Big: "+big(9000)), []string{"u0"}},
		{"3000 headers", rawReq("GET", "/a0", "HTTP/1.1", many(3000, func(i int) string { return fmt.Sprintf("X-N%d: v", i) })...), []string{"u0"}},
		{"50 headers", rawReq("GET", "/a0", "HTTP/1.1", many(50, func(i int) string { return fmt.Sprintf("X-N%d: v", i) })...), []string{"u0"}},
		{"40 x X-Env: canary", rawReq("GET", "/h", "HTTP/1.1", many(40, func(int) string { return "X-Env: canary" })...), []string{"u4"}},
		{"invalid UTF-8 Host", rawReq("GET", "/a0", "HTTP/1.1", "Host: a.test\xff\xfe"), nil},
		{"invalid UTF-8 wildcard label", rawReq("GET", "/z", "HTTP/1.1", "Host: \xc3\x28.wild.test"), []string{"u1"}},
		{"invalid UTF-8 URL", rawReq("GET", "/a0/\xff\xfe\xc0\x80", "HTTP/1.1", "Host: a.test"), []string{"u0"}},
		{"invalid UTF-8 header value", rawReq("GET", "/h", "HTTP/1.1", "Host: a.test", "X-Env: \xff\xfecanary"), []string{"u4"}},
		{"invalid UTF-8 header name", rawReq("GET", "/a0", "HTTP/1.1", "Host: a.test", "X-\xff\xfe: v"), []string{"u0"}},
		{"control byte in header", rawReq("GET", "/h", "HTTP/1.1", "Host: a.test", "X-Env: canary\x01"), []string{"u4"}},
		{"URL 7 KB", rawReq("GET", "/a0/"+big(7000), "HTTP/1.1", "Host: a.test"), []string{"u0"}},
		{"URL *", rawReq("OPTIONS", "*", "HTTP/1.1", "Host: b.test"), []string{"u4", ""}}, // Go answers OPTIONS * itself
		{"URL without slash", rawReq("GET", "abc", "HTTP/1.1", "Host: b.test"), []string{"u4"}},
		{"URL dot-dot", rawReq("GET", "/../../etc/passwd", "HTTP/1.1", "Host: a.test"), []string{"u5"}},
		{"URL bad percent", rawReq("GET", "/a0%2F..%00%ZZ?%%%&&==&v=2", "HTTP/1.1", "Host: a.test"), []string{"u5"}},
		{"URL NUL byte", rawReq("GET", "/a0\x00x", "HTTP/1.1", "Host: a.test"), []string{"u0"}},
		{"absolute-form URL", rawReq("GET", "http://b.test/x", "HTTP/1.1", "Host: a.test"), []string{"u2", "u4", "u5"}},
		{"HTTP/1.0 without Host", rawReq("GET", "/a0", "HTTP/1.0"), nil},
		{"empty Host", rawReq("GET", "/a0", "HTTP/1.1", "Host: "), nil},
		{"Host with huge port", rawReq("GET", "/a0", "HTTP/1.1", "Host: a.test:99999999999999999999"), []string{"u0"}},
		{"Host IPv6 literal", rawReq("GET", "/a0", "HTTP/1.1", "Host: [::1]:80"), nil},
		{"Host trailing dot", rawReq("GET", "/a0", "HTTP/1.1", "Host: a.test."), []string{"u0"}},
		{"Host 4 KB", rawReq("GET", "/a0", "HTTP/1.1", "Host: "+big(4000)+".a.test"), nil},
		{"two Host headers", rawReq("GET", "/a0", "HTTP/1.1", "Host: nowhere.test", "Host: a.test"), []string{"u0"}},
	}
}

// spoofTargets: client-sent X-Ghost-* headers must not change a decision.
func spoofTargets() []target {
	return []target{
		{Host: "spoof.test", Path: "/s", Hdr: [][2]string{{"X-Ghost-Method", "POST"}}, Want: "u0"},
		{Host: "spoof.test", Path: "/s", Hdr: [][2]string{{"X-Ghost-Socket", "other"}}, Want: "u0"},
		{Host: "spoof.test", Path: "/s", Hdr: [][2]string{{"X-Ghost-Route", "u2"}}, Want: "u0"},
		{Host: "spoof.test", Path: "/s", Hdr: [][2]string{{"x-ghost-route", "u2"}, {"X-GHOST-METHOD", "POST"}}, Want: "u0"},
		{Method: "POST", Host: "spoof.test", Path: "/s", Hdr: [][2]string{{"X-Ghost-Method", "GET"}}, Want: "u5"},
		{Host: "a.test", Path: "/m", Hdr: [][2]string{{"X-Ghost-Method", "POST"}}, Want: "u0"},
		{Host: "a.test", Path: "/a0", Hdr: [][2]string{{"X-Ghost-Host", "b.test"}, {"X-Ghost-Url", "/x"},
			{"X-Ghost-Backend", "127.0.0.1:1"}, {"X-Ghost-Status", "404"}, {"X-Ghost-Https", "1"}, {"X-Ghost-Gen", "1"}}, Want: "u0"},
		{Host: "spoof.test", Path: "/s", Want: "u0"},
		{Method: "POST", Host: "spoof.test", Path: "/s", Want: "u5"},
	}
}

// runTargets sends every target n times with conc workers and returns the
// stats.
func (e *env) runTargets(targets []target, n, conc int) loadStats {
	total := n * len(targets)
	res := make([]sample, total)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				ti := i % len(targets)
				s := e.do(targets[ti])
				s.target = ti
				res[i] = s
			}
		}()
	}
	wg.Wait()
	st := loadStats{targets: targets, samples: res}
	for _, s := range res {
		st.sent++
		switch {
		case s.failed():
			st.failed++
			st.failures = append(st.failures, s)
		case !s.ok(targets[s.target]):
			st.misrouted++
			st.misroutes = append(st.misroutes, s)
		}
	}
	return st
}

// Scenario 6: hostile clients.
func TestHostileClients(t *testing.T) {
	e, began, child := scenario(t, envOpts{})
	rss0 := procfs.RSSKB(e.gd.Pid())
	l := e.startLoad(baseTargets(), defaultLoad())

	// Raw requests varnish or the shim may refuse; a 200 must be right.
	misroutedRaw := 0
	var outcomes []string
	for _, c := range hostileCases() {
		counts := map[string]int{}
		for range 5 {
			code, h, err := rawHTTP(e.v.addr, c.req, 10*time.Second)
			key := fmt.Sprint(code)
			if err != nil {
				key = "closed"
			}
			if code == 200 {
				up := h.Get("X-Upstream")
				okUp := false
				for _, w := range c.ok {
					okUp = okUp || up == w
				}
				if !okUp {
					misroutedRaw++
					t.Errorf("hostile %q: 200 from upstream %q, want one of %q", c.name, up, c.ok)
				}
				key = "200 " + up
			}
			counts[key]++
		}
		var parts []string
		for k, n := range counts {
			parts = append(parts, fmt.Sprintf("%s×%d", k, n))
		}
		sort.Strings(parts)
		outcomes = append(outcomes, fmt.Sprintf("%s: %s", c.name, strings.Join(parts, ",")))
		t.Logf("hostile %-32q → %s", c.name, strings.Join(parts, ", "))
	}

	// Spoofed X-Ghost-* headers, repeated so memoised decisions are hit too.
	sp := e.runTargets(spoofTargets(), 20, 4)
	for _, s := range append(sp.misroutes, sp.failures...) {
		t.Errorf("spoofed header influenced a decision: %s", sp.describe(s))
	}
	for _, s := range sp.samples {
		if s.leak != "" {
			t.Errorf("upstream received internal header %q for %s", s.leak, sp.targets[s.target])
		}
	}

	// Distinct hosts: half under *.wild.test, half matching no vhost.
	nHosts := pick(2000, 10000)
	var flood []target
	for i := range nHosts {
		if i%2 == 0 {
			flood = append(flood, target{Host: fmt.Sprintf("h%d.wild.test", i), Path: "/z", Want: "u1"})
		} else {
			flood = append(flood, target{Host: fmt.Sprintf("h%d.nowhere%d.test", i, i), Path: "/", WantStatus: 404})
		}
	}
	// As many distinct values of a header a.test routes on: together more
	// decisions than the shim's memo holds (16,384 by default) in the long form.
	for i := range nHosts {
		flood = append(flood, target{Host: "a.test", Path: "/h", Hdr: [][2]string{{"X-Env", fmt.Sprintf("v%d", i)}}, Want: "u4"})
	}
	fl := e.runTargets(flood, 1, 8)
	if fl.failed+fl.misrouted > 0 {
		t.Errorf("distinct-host flood: %d failed, %d misrouted of %d", fl.failed, fl.misrouted, fl.sent)
		fl.logSome(t, "flood failure", fl.failures, 5)
		fl.logSome(t, "flood misroute", fl.misroutes, 5)
	}
	time.Sleep(500 * time.Millisecond)
	st := l.stop()
	rss1 := procfs.RSSKB(e.gd.Pid())

	if e.gd.Exited() {
		t.Fatalf("ghostd died")
	}
	if _, err := e.status(); err != nil {
		t.Errorf("ghostd does not answer status: %v", err)
	}
	const rssBoundKB = 64 * 1024
	if rss0 <= 0 || rss1 <= 0 || rss1-rss0 > rssBoundKB {
		t.Errorf("ghostd VmRSS %d kB before, %d kB after (growth bound %d kB)", rss0, rss1, rssBoundKB)
	}
	e.checkLoad(st, "in the background load", child)
	st.sent += sp.sent + fl.sent
	st.failed += sp.failed + fl.failed
	st.misrouted += sp.misrouted + fl.misrouted + misroutedRaw
	e.summarize("6 hostile clients", st, began, fmt.Sprintf(
		"%d raw hostile requests (%d kinds ×5), %d spoofed-header requests, %d distinct hosts + %d distinct X-Env values; ghostd VmRSS %d→%d kB",
		5*len(hostileCases()), len(hostileCases()), sp.sent, nHosts, nHosts, rss0, rss1))
}

// closedWithin reports whether the peer closes c within d (reading and
// discarding whatever it sends first).
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return false
			}
			return true
		}
	}
}

func frameBytes(length uint32, body []byte) []byte {
	b := []byte{byte(length >> 24), byte(length >> 16), byte(length >> 8), byte(length)}
	return append(b, body...)
}

// Scenario 7: abuse of ghostd's socket while HTTP traffic flows.
func TestGhostdSocketAbuse(t *testing.T) {
	e, began, child := scenario(t, envOpts{})
	rss0 := procfs.RSSKB(e.gd.Pid())
	l := e.startLoad(baseTargets(), defaultLoad())
	rng := rand.New(rand.NewSource(42))
	dial := func() net.Conn {
		c, err := net.DialTimeout("unix", e.sock, 2*time.Second)
		if err != nil {
			t.Fatalf("dial ghostd: %v", err)
		}
		return c
	}
	expectClosed := func(what string, c net.Conn) {
		t.Helper()
		if !closedWithin(c, 3*time.Second) {
			t.Errorf("%s: ghostd did not close the connection within 3 s", what)
		}
		_ = c.Close()
	}

	// 2,000 idle connections, half of them after a hello.
	nIdle := 2000
	var idle []net.Conn
	for i := range nIdle {
		c, err := net.DialTimeout("unix", e.sock, 2*time.Second)
		if err != nil {
			t.Errorf("idle connection %d: %v", i, err)
			break
		}
		if i%2 == 1 {
			_ = writeFrame(c, map[string]any{"t": "hello", "v": 1, "client": "idle"})
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			_ = c.Close()
		}
	}()

	// Slow-loris: hello frames one byte at a time, and a header then nothing.
	var wg sync.WaitGroup
	var slowOK atomic.Int32
	nSlow := 20
	step := pick(100*time.Millisecond, 250*time.Millisecond)
	for range nSlow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("unix", e.sock, 2*time.Second)
			if err != nil {
				return
			}
			defer c.Close()
			var fb bytes.Buffer
			_ = writeFrame(&fb, map[string]any{"t": "hello", "v": 1, "client": "slow"})
			for _, by := range fb.Bytes() {
				if _, err := c.Write([]byte{by}); err != nil {
					return
				}
				time.Sleep(step)
			}
			_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
			if m, err := readFrame(c); err == nil && asString(m["t"]) == "hello" {
				slowOK.Add(1)
			}
		}()
	}
	stalled := dial()
	_, _ = stalled.Write([]byte{0, 0, 0, 100, 0x81})
	defer stalled.Close()

	// Garbage: random byte streams, then EOF.
	for i := range 50 {
		c := dial()
		g := make([]byte, 1+rng.Intn(4096))
		rng.Read(g)
		_, _ = c.Write(g)
		_ = c.(*net.UnixConn).CloseWrite()
		expectClosed(fmt.Sprintf("garbage stream %d", i), c)
	}
	// Well-framed garbage: a decode error closes the connection.
	for i := range 20 {
		c := dial()
		body := make([]byte, 1+rng.Intn(512))
		rng.Read(body)
		body[0] = 0xc1 // never-used msgpack byte: never a valid map
		_, _ = c.Write(frameBytes(uint32(len(body)), body))
		expectClosed(fmt.Sprintf("framed garbage %d", i), c)
	}
	// Truncated frames: header announces more than is sent, then EOF.
	for _, after := range []bool{false, true} {
		c := dial()
		if after {
			_ = writeFrame(c, map[string]any{"t": "hello", "v": 1, "client": "trunc"})
			_, _ = readFrame(c)
		}
		_, _ = c.Write(frameBytes(100, []byte{0x82, 0xa1, 't'}))
		_ = c.(*net.UnixConn).CloseWrite()
		expectClosed(fmt.Sprintf("truncated frame (after hello: %v)", after), c)
	}
	// Oversized and zero lengths: closed at once without the body.
	for _, n := range []uint32{1<<20 + 1, 0xffffffff, 0} {
		for _, after := range []bool{false, true} {
			c := dial()
			if after {
				_ = writeFrame(c, map[string]any{"t": "hello", "v": 1, "client": "big"})
				_, _ = readFrame(c)
			}
			_, _ = c.Write(frameBytes(n, []byte{0x80}))
			expectClosed(fmt.Sprintf("frame length %d (after hello: %v)", n, after), c)
		}
	}
	// A full 2 MiB frame body streamed anyway.
	{
		c := dial()
		_, _ = c.Write(frameBytes(2<<20, nil))
		go func() { _, _ = c.Write(make([]byte, 2<<20)) }()
		expectClosed("2 MiB frame", c)
	}
	// Protocol errors: wrong version, request before hello, unknown type.
	{
		c := dial()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		_ = writeFrame(c, map[string]any{"t": "hello", "v": 2, "client": "future"})
		m, err := readFrame(c)
		if err != nil || asString(m["code"]) != "version" || !strings.Contains(asString(m["msg"]), "mismatch") {
			t.Errorf("hello v2: got %v, %v; want error code version with a mismatch message", m, err)
		}
		expectClosed("version mismatch", c)

		c = dial()
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		_ = writeFrame(c, map[string]any{"t": "status"})
		m, err = readFrame(c)
		if err != nil || asString(m["code"]) != "hello" {
			t.Errorf("status before hello: got %v, %v; want error code hello", m, err)
		}
		expectClosed("request before hello", c)

		c, err = dialGhostd(e.sock, 3*time.Second)
		if err != nil {
			t.Fatalf("hello: %v", err)
		}
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		_ = writeFrame(c, map[string]any{"t": "no-such-type"})
		m, err = readFrame(c)
		if err != nil || asString(m["code"]) != "type" {
			t.Errorf("unknown type: got %v, %v; want error code type", m, err)
		}
		_ = writeFrame(c, map[string]any{"t": "status"})
		if m, err = readFrame(c); err != nil || asString(m["t"]) != "status" {
			t.Errorf("status after an unknown type on the same connection: %v, %v", m, err)
		}
		_ = c.Close()
	}
	wg.Wait()
	if int(slowOK.Load()) != nSlow {
		t.Errorf("slow-loris hellos answered: %d of %d", slowOK.Load(), nSlow)
	}
	// Still serving everyone: a fresh client, and the idle ones.
	if _, err := e.status(); err != nil {
		t.Errorf("fresh client status with %d idle connections open: %v", len(idle), err)
	}
	idleOK := 0
	for i := 1; i < len(idle) && i < 80; i += 4 {
		c := idle[i]
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		if m, err := readFrame(c); err != nil || asString(m["t"]) != "hello" {
			t.Errorf("idle connection %d: hello answer %v, %v", i, m, err)
			continue
		}
		if err := writeFrame(c, map[string]any{"t": "status"}); err != nil {
			t.Errorf("idle connection %d: %v", i, err)
			continue
		}
		if m, err := readFrame(c); err != nil || asString(m["t"]) != "status" {
			t.Errorf("idle connection %d: status answer %v, %v", i, m, err)
			continue
		}
		idleOK++
	}
	time.Sleep(500 * time.Millisecond)
	st := l.stop()
	rss1 := procfs.RSSKB(e.gd.Pid())
	if e.gd.Exited() {
		t.Fatalf("ghostd died")
	}
	e.checkLoad(st, "during socket abuse", child)
	e.summarize("7 socket abuse", st, began, fmt.Sprintf(
		"%d idle conns (%d of them questioned afterwards, all answered), %d slow-loris, 70 garbage, 2 truncated, 7 oversized/zero, 3 protocol errors; ghostd VmRSS %d→%d kB",
		len(idle), idleOK, nSlow, rss0, rss1))
}

// Scenario 8: a new VCL loaded and activated every second under load.
func TestVCLLifecycle(t *testing.T) {
	e, began, child := scenario(t, envOpts{})
	l := e.startLoad(baseTargets(), defaultLoad())
	vclPath := e.dir + "/main.vcl"

	dur := pick(8*time.Second, 30*time.Second)
	end := time.Now().Add(dur)
	active := "boot"
	var cold []string // set cold, not yet discarded, oldest first
	loads, discards := 0, 0
	discard := func(name string) bool {
		out, err := e.v.Adm("vcl.discard", name)
		if err != nil {
			t.Logf("vcl.discard %s: %v %s", name, err, strings.TrimSpace(out))
			return false
		}
		discards++
		return true
	}
	for i := 1; i <= int(dur/time.Second)+1 && time.Now().Before(end); i++ {
		tick := time.Now()
		name := fmt.Sprintf("f%d", i)
		if out, err := e.v.Adm("vcl.load", name, vclPath); err != nil {
			t.Errorf("vcl.load %s: %v\n%s", name, err, out)
			break
		}
		if out, err := e.v.Adm("vcl.use", name); err != nil {
			t.Errorf("vcl.use %s: %v\n%s", name, err, out)
			break
		}
		loads++
		if out, err := e.v.Adm("vcl.state", active, "cold"); err != nil {
			t.Errorf("vcl.state %s cold: %v\n%s", active, err, out)
		}
		cold = append(cold, active)
		active = name
		// discard the one set cold a round earlier
		if len(cold) >= 2 && discard(cold[0]) {
			cold = cold[1:]
		}
		if d := time.Second - time.Since(tick); d > 0 {
			time.Sleep(d)
		}
	}
	// The remaining cold ones go too (a VCL still cooling may need a moment).
	deadline := time.Now().Add(10 * time.Second)
	for len(cold) > 0 && time.Now().Before(deadline) {
		if discard(cold[0]) {
			cold = cold[1:]
		} else {
			time.Sleep(500 * time.Millisecond)
		}
	}
	if len(cold) > 0 {
		t.Errorf("could not discard %v", cold)
	}
	time.Sleep(time.Second)
	st := l.stop()
	// A discarded VCL stays listed ("discarded ... busy") until every
	// reference is gone; idle worker threads keep a cached reference to the
	// VCL they last ran for up to 60 s (cache_wrk.c), and a VCL that went
	// cold holding native backends is discarded only once ghost released
	// them, backend_idle_timeout + 1 s later (docs/operations.md "A VCL
	// that goes cold"). The long form waits that out, so the shim's
	// discard of every VCL is exercised.
	wait := pick(2*time.Second, 135*time.Second)
	var list string
	var avail, disc int
	for deadline := time.Now().Add(wait); ; {
		list, _ = e.v.Adm("vcl.list")
		avail, disc = 0, 0
		for _, ln := range strings.Split(list, "\n") {
			f := strings.Fields(ln)
			if len(f) < 5 {
				continue
			}
			switch f[0] {
			case "available":
				avail++
			case "discarded":
				disc++
			}
		}
		if disc == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if avail > 0 {
		t.Errorf("vcl.list still holds %d undiscarded inactive VCLs:\n%s", avail, list)
	}
	if longMode && disc > 0 {
		t.Errorf("%d discarded VCLs still referenced after %s:\n%s", disc, wait, list)
	}
	e.checkLoad(st, "during VCL churn", child)
	e.summarize("8 VCL lifecycle", st, began, fmt.Sprintf(
		"%d vcl.load+use over %s, each previous set cold, %d discarded (%d freed, %d still held by idle workers after %s); panic.show clean",
		loads, dur, discards, discards-disc, disc, wait))
}

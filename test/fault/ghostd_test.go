package fault

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varnish/ghost/test/stack/procfs"
)

// checkReasons verifies that every 503 request group captured by
// varnishlog names ghostd as the reason. It returns the number of groups.
func checkReasons(t *testing.T, logText string, clientFailures int) int {
	t.Helper()
	groups := logGroups(logText)
	n, missing := 0, 0
	var example string
	for _, g := range groups {
		if !strings.Contains(g, "RespStatus") {
			continue
		}
		n++
		if !strings.Contains(strings.ToLower(g), "ghostd") {
			missing++
			if example == "" {
				example = g
			}
		}
	}
	if clientFailures > 0 && n == 0 {
		t.Errorf("clients saw %d failures but varnishlog recorded no 503 request group", clientFailures)
	}
	if missing > 0 {
		t.Errorf("%d of %d 503 request groups in varnishlog do not name ghostd as the reason; first:\n%s", missing, n, example)
	}
	return n
}

// reasonCounts tallies the reasons the VMOD logged (its "ghost: ..."
// Error records; clients only see "Service Unavailable") of the logged
// 5xx groups, most frequent first, with the socket path shortened.
func reasonCounts(logText, sock string) string {
	n := map[string]int{}
	for _, g := range logGroups(logText) {
		for _, l := range strings.Split(g, "\n") {
			f := strings.Fields(l)
			if len(f) >= 3 && strings.Trim(f[0], "-") == "" && f[1] == "Error" && f[2] == "ghost:" {
				n[strings.ReplaceAll(strings.Join(f[3:], " "), sock, "g.sock")]++
				break
			}
		}
	}
	type kv struct {
		k string
		v int
	}
	var all []kv
	for k, v := range n {
		all = append(all, kv{k, v})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].v > all[j].v || all[i].v == all[j].v && all[i].k < all[j].k })
	var parts []string
	for _, e := range all {
		parts = append(parts, fmt.Sprintf("%q ×%d", e.k, e.v))
	}
	return strings.Join(parts, ", ")
}

// checkFailuresIn asserts every failure is a 503 that overlaps [from, to].
func checkFailuresIn(t *testing.T, st loadStats, from, to time.Time) (outside int) {
	t.Helper()
	var bad []sample
	for _, f := range st.failures {
		if f.err != nil || f.status != 503 || f.end.Before(from) || f.start.After(to) {
			bad = append(bad, f)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d failures are not 503s inside the fault window %s..%s", len(bad),
			from.Format("15:04:05.000"), to.Format("15:04:05.000"))
		st.logSome(t, "failure outside the window", bad, 10)
	}
	return len(bad)
}

// slowestStep finds, among the logged request groups, the client request
// whose "Timestamp <step>" came latest after its Start ("Waitinglist:":
// parked behind another fetch of the same object; "Resp:": the whole
// request inside varnishd) and returns that time with the group's
// timing and reason lines.
func slowestStep(logText, step string) (float64, string) {
	best, ex := 0.0, ""
	for _, g := range logGroups(logText) {
		for _, l := range strings.Split(g, "\n") {
			f := strings.Fields(l)
			if len(f) >= 5 && f[0] == "-" && f[1] == "Timestamp" && f[2] == step {
				var d float64
				if _, err := fmt.Sscanf(f[4], "%g", &d); err == nil && d > best {
					best = d
					var keep []string
					for _, gl := range strings.Split(g, "\n") {
						if strings.Contains(gl, "Timestamp") || strings.Contains(gl, "Reason") || strings.Contains(gl, "ReqURL") {
							keep = append(keep, "    "+strings.TrimSpace(gl))
						}
					}
					ex = strings.Join(keep, "\n")
				}
			}
		}
	}
	return best, ex
}

type childCheck struct {
	pid    int
	uptime int64
	at     time.Time
}

func (e *env) childState() childCheck {
	return childCheck{pid: e.v.ChildPID(), uptime: e.v.Stats("MAIN.uptime")["MAIN.uptime"], at: time.Now()}
}

// checkChild asserts the varnishd child was not restarted since c.
func (e *env) checkChild(c childCheck) {
	e.t.Helper()
	now := e.childState()
	if now.pid == 0 || now.pid != c.pid {
		e.t.Errorf("varnishd child changed: pid %d before, %d after", c.pid, now.pid)
	}
	if want := c.uptime + int64(time.Since(c.at).Seconds()) - 2; now.uptime < want {
		e.t.Errorf("MAIN.uptime went from %d to %d over %s: child restarted", c.uptime, now.uptime, time.Since(c.at).Round(time.Second))
	}
	if out, err := e.v.Adm("status"); err != nil || !strings.Contains(out, "running") {
		e.t.Errorf("varnishadm status: %v %q", err, out)
	}
	if out, _ := e.v.Adm("panic.show"); !strings.Contains(out, "has not panicked") {
		e.t.Errorf("varnishd panicked:\n%s", out)
	}
}

// signalGhostd sends sig to the current ghostd; a signal that cannot be
// sent (the process is gone) stops the scenario, which would otherwise
// test nothing.
func (e *env) signalGhostd(sig syscall.Signal) {
	e.t.Helper()
	if err := e.gd.Signal(sig); err != nil {
		e.t.Fatalf("%s to ghostd (pid %d): %v", sig, e.gd.Pid(), err)
	}
}

// stopGhostd sends SIGSTOP to ghostd and returns once every thread of it
// is stopped. kill() returns as soon as the signal is queued, and ghostd
// goes on answering until its threads take it (0.85 ms on average, up
// to 5.7 ms at load 7 on the 2-core VM): a decision asked in that window
// is seen, memoised, and rightly served for the whole hang.
func (e *env) stopGhostd() time.Time {
	e.t.Helper()
	e.signalGhostd(syscall.SIGSTOP)
	deadline := time.Now().Add(2 * time.Second)
	for {
		ok, states := procfs.Stopped(e.gd.Pid())
		if ok {
			return time.Now()
		}
		if time.Now().After(deadline) {
			e.signalGhostd(syscall.SIGCONT)
			e.t.Fatalf("ghostd (pid %d) not stopped 2 s after SIGSTOP; threads: %s", e.gd.Pid(), states)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// threadBound is how far MAIN.threads may grow over its idle value: one
// client and one backend thread per load worker, plus slack for the pool's
// own breathing room.
func threadBound(base int64, conc int) int64 { return base + int64(2*conc) + 16 }

// Scenario 1: ghostd killed -9, restarted by hand. The load's decisions
// were all seen before the kill, so the memo serves them while ghostd is
// away (issue 16); any failure must still be a 503 inside the down window.
// Decisions never seen are scenario 1b's probes and scenario 3's second
// load.
func TestGhostdKilled(t *testing.T) {
	e, began, child := scenario(t, envOpts{})
	thr0 := e.v.threads()
	lo := defaultLoad()
	ts := e.v.sampleThreads(250 * time.Millisecond)
	l := e.startLoad(baseTargets(), lo)

	time.Sleep(pick(time.Second, 3*time.Second))
	killAt := time.Now()
	e.signalGhostd(syscall.SIGKILL)
	e.gd.Wait(5 * time.Second)
	time.Sleep(pick(2500*time.Millisecond, 5*time.Second))
	e.startGhostd(nil)
	backAt := time.Now()
	time.Sleep(pick(2*time.Second, 5*time.Second))

	st := l.stop()
	maxThr := ts.stop()
	logText := e.vl5xx.stop()
	n503 := checkReasons(t, logText, st.failed)
	checkFailuresIn(t, st, killAt, backAt)
	if st.misrouted > 0 {
		t.Errorf("%d misrouted requests", st.misrouted)
	}
	e.checkChild(child)
	if maxThr > threadBound(thr0, lo.conc) {
		t.Errorf("MAIN.threads grew from %d to %d (bound %d)", thr0, maxThr, threadBound(thr0, lo.conc))
	}
	var after int
	for _, s := range st.samples {
		if s.start.After(backAt) {
			after++
		}
	}
	e.summarize("1 ghostd kill -9 + restart", st, began, fmt.Sprintf(
		"down %.1f s; failures must be 503s in the down window, %d logged, reasons: %s; %d requests after restart (must not fail); threads %d→max %d",
		backAt.Sub(killAt).Seconds(), n503, reasonCounts(logText, e.sock), after, thr0, maxThr))
}

func sockInode(path string) uint64 {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// Scenario 2: ghostd restarted under socket activation.
func TestGhostdSocketActivatedRestart(t *testing.T) {
	e := newEnv(t, envOpts{})
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(e.sock, 0o666); err != nil {
		t.Fatal(err)
	}
	lf, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lf.Close(); _ = ln.Close() })
	ino := sockInode(e.sock)
	e.startGhostd(lf)
	if got := sockInode(e.sock); got != ino {
		t.Fatalf("ghostd ignored LISTEN_FDS: socket inode %d replaced by %d", ino, got)
	}
	e.startVarnish()
	began := time.Now()
	child := e.childState()
	l := e.startLoad(baseTargets(), defaultLoad())

	restarts := pick(3, 8)
	var gaps []string
	for i := range restarts {
		time.Sleep(pick(1500*time.Millisecond, 3*time.Second))
		t0 := time.Now()
		old := e.gd
		// Every other restart is a crash (kill -9): the inherited socket
		// keeps queueing connections until the next ghostd accepts them.
		sig := syscall.SIGTERM
		if i%2 == 1 {
			sig = syscall.SIGKILL
		}
		e.signalGhostd(sig)
		old.Wait(10 * time.Second)
		if fi, err := os.Lstat(e.sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
			l.stop()
			t.Fatalf("after ghostd (pid %d) exited, the socket-activated socket path %s is gone (%v): ghostd must not unlink a socket it inherited", old.Pid(), e.sock, err)
		}
		e.startGhostd(lf)
		if got := sockInode(e.sock); got != ino {
			t.Fatalf("ghostd ignored LISTEN_FDS: socket inode %d replaced by %d", ino, got)
		}
		gaps = append(gaps, fmt.Sprintf("%.0f", time.Since(t0).Seconds()*1000))
	}
	time.Sleep(pick(1500*time.Millisecond, 3*time.Second))
	st := l.stop()
	e.checkLoad(st, "across socket-activated restarts", child)
	e.summarize("2 socket-activated restart", st, began, fmt.Sprintf(
		"%d restarts (SIGTERM and kill -9 alternately, then a new ghostd on the same inherited socket), stop-to-ready gaps %s ms", restarts, strings.Join(gaps, "/")))
}

// Scenario 3: ghostd hung with SIGSTOP. Hot URLs seen before the hang
// keep being served from the memo (0 failures); hot URLs never seen
// (whole-path decisions of the regex vhost, an unknown host), wanted by
// several clients at once from the moment every thread of ghostd is
// stopped, get 503 within the timeout: every one of them that starts and
// ends inside the hang.
func TestGhostdHung(t *testing.T) {
	e, began, child := scenario(t, envOpts{})
	thr0 := e.v.threads()
	// More workers than elsewhere, so that a pile-up of threads blocked on
	// ghostd would show in MAIN.threads.
	lo := defaultLoad()
	lo.conc, lo.interval = 24, 20*time.Millisecond
	ts := e.v.sampleThreads(250 * time.Millisecond)
	hot := []target{
		{Host: "a.test", Path: "/a0", Want: "u0"},
		{Host: "nowhere.test", Path: "/", WantStatus: 404},
		{Host: "a.test", Path: "/x", Hdr: [][2]string{{"X-Want-Cache-Control", "max-age=1, stale-while-revalidate=0"}}, Want: "u2"},
		{Host: "b.test", Path: "/anything", Want: "u4"},
	}
	// Unseen, each wanted by several clients at once: one whose no-store
	// answers leave a hit-for-miss marker, one cacheable for 1 s without
	// grace (misses coalesce), and two plain ones.
	unseen := []target{
		{Host: "a.test", Path: "/r/7001", Want: "u1"},
		{Host: "a.test", Path: "/r/7002", Hdr: [][2]string{{"X-Want-Cache-Control", "max-age=1, stale-while-revalidate=0"}}, Want: "u1"},
		{Host: "a.test", Path: "/r/7003", Want: "u1"},
		{Host: "never.test", Path: "/", WantStatus: 404},
	}
	l := e.startLoad(hot, lo)

	time.Sleep(pick(time.Second, 2*time.Second))
	hang := pick(3*time.Second, 5*time.Second)
	stopAt := time.Now()
	// The unseen load starts only once ghostd is really stopped: started
	// right after kill(), its first requests were sometimes decided by
	// ghostd before the stop reached its threads, and then (rightly)
	// served from the memo for the whole hang.
	stoppedAt := e.stopGhostd()
	lu := lo
	lu.conc = 12
	l2 := e.startLoad(unseen, lu)
	time.Sleep(hang)
	e.signalGhostd(syscall.SIGCONT)
	contAt := time.Now()
	time.Sleep(pick(2*time.Second, 4*time.Second))

	st2 := l2.stop()
	st := l.stop()
	maxThr := ts.stop()
	logText := e.vl5xx.stop()
	n503 := checkReasons(t, logText, st.failed+st2.failed)
	if st.failed > 0 {
		t.Errorf("%d of %d requests for decisions seen before the hang failed (want 0)", st.failed, st.sent)
		st.logSome(t, "failed", st.failures, 10)
	}
	slack := 500 * time.Millisecond
	checkFailuresIn(t, st2, stopAt, contAt.Add(shimTimeout+slack))
	var maxLat, sumLat time.Duration
	for _, f := range st2.failures {
		d := f.end.Sub(f.start)
		maxLat = max(maxLat, d)
		sumLat += d
	}
	if maxLat > shimTimeout+slack {
		// varnishd's own view tells where the time went: a slow Resp
		// inside varnishd is its threads waiting (the waiting list, or
		// the CPU); a fast one is time outside its request (the test
		// process, the connection), e.g. a starved machine.
		wl, _ := slowestStep(logText, "Waitinglist:")
		in, ex := slowestStep(logText, "Resp:")
		t.Errorf("slowest failed request took %s at the client; bound is the shim timeout %s + %s. Inside varnishd the slowest 503 took %.3f s from Start to Resp, the longest wait on its waiting list %.3f s; that request:\n%s",
			maxLat, shimTimeout, slack, in, wl, ex)
	}
	// Nothing can decide an unseen request while ghostd is stopped: each
	// one that started after the stop and ended before SIGCONT failed.
	inHang := make([]int, len(unseen))
	var answered []sample
	for _, s := range st2.samples {
		if s.start.Before(stoppedAt) || s.end.After(contAt) {
			continue
		}
		inHang[s.target]++
		if !s.failed() {
			answered = append(answered, s)
		}
	}
	if len(answered) > 0 {
		t.Errorf("%d requests for decisions never seen were answered while every thread of ghostd was stopped (want 503)", len(answered))
		st2.logSome(t, "answered while ghostd was stopped", answered, 10)
	}
	for i, n := range inHang {
		if n == 0 {
			t.Errorf("no request for %s started and ended inside the hang: the scenario did not test the hang", unseen[i])
		}
	}
	if st.misrouted+st2.misrouted > 0 {
		t.Errorf("%d misrouted requests", st.misrouted+st2.misrouted)
		st2.logSome(t, "misrouted", st2.misroutes, 10)
	}
	if bound := threadBound(thr0, lo.conc+lu.conc); maxThr > bound {
		t.Errorf("MAIN.threads grew from %d to %d while ghostd hung (bound %d)", thr0, maxThr, bound)
	}
	if _, err := e.status(); err != nil || e.gd.Exited() {
		t.Errorf("ghostd not answering after SIGCONT: %v", err)
	}
	e.checkChild(child)
	avg := time.Duration(0)
	if st2.failed > 0 {
		avg = sumLat / time.Duration(st2.failed)
	}
	all := st
	all.sent += st2.sent
	all.failed += st2.failed
	all.misrouted += st2.misrouted
	e.summarize("3 ghostd hung (SIGSTOP)", all, began, fmt.Sprintf(
		"hung %s (every thread stopped %s after SIGSTOP); 24 workers on 4 hot URLs seen before: %d sent, %d failed (want 0); 12 workers on 4 hot URLs never seen, from the stop on: %d sent, %d 503s, %v inside the hang per URL (all must fail); %d 503s logged, reasons: %s; failed latency avg %s max %s (timeout %s, bar %s); threads %d→max %d",
		hang, stoppedAt.Sub(stopAt).Round(10*time.Microsecond), st.sent, st.failed, st2.sent, st2.failed, inHang, n503, reasonCounts(logText, e.sock), avg.Round(time.Millisecond), maxLat.Round(time.Millisecond), shimTimeout, shimTimeout+slack, thr0, maxThr))
}

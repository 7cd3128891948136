package scale

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varnish/ghost/test/stack"
	"github.com/varnish/ghost/test/stack/procfs"
)

// The suite's settings (make scale; docs/benchmarks.md "Scale").
type settings struct {
	n, routes, conc int
	keepAlive       []bool
	initArgs        string
	nofile          uint64
	out             string
	releaseMax      time.Duration
	dropOld         bool
	params          []string // GHOST_SCALE_PARAMS: more varnishd -p name=value
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// load reads the settings; the suite skips unless GHOST_SCALE is set.
func load(t *testing.T) settings {
	if os.Getenv("GHOST_SCALE") == "" {
		t.Skip("the scale suite runs with make scale (GHOST_SCALE=1)")
	}
	s := settings{
		n:        envInt("GHOST_SCALE_N", 100000),
		routes:   envInt("GHOST_SCALE_ROUTES", 10),
		conc:     envInt("GHOST_SCALE_CONC", 8),
		initArgs: os.Getenv("GHOST_SCALE_INIT"),
		nofile:   uint64(envInt("GHOST_SCALE_NOFILE", 0)),
		out:      os.Getenv("GHOST_SCALE_OUT"),
	}
	s.dropOld = os.Getenv("GHOST_SCALE_DROP") == "old"
	s.params = strings.Fields(os.Getenv("GHOST_SCALE_PARAMS"))
	s.releaseMax = time.Duration(envInt("GHOST_SCALE_RELEASE", 0)) * time.Second
	switch os.Getenv("GHOST_SCALE_KEEPALIVE") {
	case "on":
		s.keepAlive = []bool{true}
	case "off":
		s.keepAlive = []bool{false}
	default:
		s.keepAlive = []bool{false, true}
	}
	if s.nofile > 0 {
		// For this process and what it starts (varnishd, ghostd) only.
		lim := syscall.Rlimit{Cur: s.nofile, Max: s.nofile}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatalf("RLIMIT_NOFILE %d: %v", s.nofile, err)
		}
	}
	return s
}

// report writes a figure to the log and to GHOST_SCALE_OUT.
func (s settings) report(t *testing.T, format string, args ...any) {
	t.Helper()
	line := fmt.Sprintf(format, args...)
	t.Log(line)
	if s.out != "" {
		f, err := os.OpenFile(s.out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			fmt.Fprintf(f, "%s %s: %s\n", time.Now().UTC().Format("15:04:05"), t.Name(), line)
			f.Close()
		}
	}
}

// ReleaseDelay is docs/operations.md's bound on the time from retirement
// to the final release of d backends (retired, and the old ones of
// replaced backends) whose releases walk past w segments of kept backends
// in all (the suite's varnishd keeps backend_idle_timeout at 60 s): the
// drain, 30 s, 2 ms per release and 0.4 µs per segment walked, on a
// 2-vCPU machine at load 30. The suite's w assumes no replacement (an
// upper bound).
func ReleaseDelay(d, w int64) time.Duration {
	return 65*time.Second + 30*time.Second + time.Duration(d)*2*time.Millisecond + time.Duration(w)*400*time.Nanosecond
}

// resetHWM resets pid's peak RSS (VmHWM) to its current RSS.
func resetHWM(pid int) { _ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0o644) }

// TestScale creates GHOST_SCALE_N endpoints (one vhost and one native
// backend each, GHOST_SCALE_ROUTES routes per vhost) through varnishd,
// ghostd and the shim, with and without upstream keep-alive; asserts that
// every request reached its endpoint and that the child never panicked;
// reloads the same table idle, then to half the endpoints under client
// load, and asserts that the dropped half is retired (backend.list,
// GHOST.be_live) and released (MAIN.n_backend, GHOST.be_retired) with no
// `live` error and no failed request. It reports time, RSS, maps and
// descriptors per backend, the retirement delay, the latency of warm
// requests before, during and after retirement, and reload times with
// ghostd's peak and settled RSS.
func TestScale(t *testing.T) {
	cfg := load(t)
	for _, ka := range cfg.keepAlive {
		name := "keepalive=off"
		if ka {
			name = "keepalive=on"
		}
		t.Run(name, func(t *testing.T) { scaleRun(t, cfg, ka) })
	}
}

func scaleRun(t *testing.T, cfg settings, keepAlive bool) {
	n := cfg.n
	s, err := StartStack(StackOpts{KeepAlive: keepAlive, InitArgs: cfg.initArgs, Params: cfg.params,
		Config: func(port int) []byte { return Config(n, cfg.routes, port, "a", nil) }})
	defer func() {
		if s != nil {
			if t.Failed() {
				t.Logf("logs kept in %s", s.Dir)
			}
			s.Stop(t.Failed())
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	maps, _ := os.ReadFile("/proc/sys/vm/max_map_count")
	cfg.report(t, "start: n=%d routes/vhost=%d conc=%d init=%q nofile=%d vm.max_map_count=%s load average %s",
		n, cfg.routes, cfg.conc, cfg.initArgs, lim.Cur, strings.TrimSpace(string(maps)), procfs.LoadAvg())
	child := s.V.ChildPID()
	// how long the child takes to answer the CLI, throughout
	watch := WatchCLI(s.V, 500*time.Millisecond)
	tStart := time.Now()
	defer func() {
		watch.Stop()
		cfg.report(t, "CLI over the whole run: %s", watch.Window(tStart, time.Now()))
		// every question answered 200 (not a timed check: a broken
		// connection or an error answer means the manager or the
		// child was in trouble)
		if n, first := watch.Errors(); n > 0 {
			t.Errorf("%d CLI questions failed, first: %s", n, first)
		}
	}()
	base := s.Measure()
	cfg.report(t, "before: %v", base)
	checkChild := func(when string) {
		t.Helper()
		if p := s.PanicShow(); p != "" {
			t.Fatalf("%s: the child panicked:\n%.2000s", when, p)
		}
		if pid := s.V.ChildPID(); pid != child {
			t.Fatalf("%s: child PID %d, was %d: varnishd restarted its child; its log:\n%s", when, pid, child, s.V.LogTail(30))
		}
	}

	// 1. One request per endpoint: n native backends created (or, under
	// the ceiling, created and the least recently used retired).
	ident := func(i int) int { return i }
	const chunks = 10
	var created []*Load
	t0 := time.Now()
	for c := range chunks {
		lo, hi := c*n/chunks, (c+1)*n/chunks
		l := s.Drive(cfg.conc, func(k int) int {
			if lo+k < hi {
				return lo + k
			}
			return -1
		}, ident, nil)
		created = append(created, l)
		r := s.Measure()
		cfg.report(t, "create %d-%d: %v; %v", lo, hi-1, l, r)
		// A 503 is a decision the shim counted as failed, with the
		// reason in VSL (the ceiling, or ghostd too slow on a loaded
		// machine); anything else is a bug.
		if l.Errors > l.Status503 {
			t.Errorf("create %d-%d: %d errors other than 503, first: %v", lo, hi-1, l.Errors-l.Status503, l.FirstErr)
		}
		checkChild(fmt.Sprintf("after %d endpoints", hi))
	}
	took := time.Since(t0)
	cfg.report(t, "CLI while creating: %s", watch.Window(t0, time.Now()))
	full := s.Measure()
	n503 := 0
	for _, l := range created {
		n503 += l.Status503
	}
	cfg.report(t, "503s while creating: %d; GHOST.dec_failed %d (GHOST.be_ceiling %d, GHOST.err_timeout %d)",
		n503, full.Counters["GHOST.dec_failed"], full.Counters["GHOST.be_ceiling"], full.Counters["GHOST.err_timeout"])
	if int64(n503) > full.Counters["GHOST.dec_failed"] {
		t.Errorf("%d answers 503 but only %d decisions counted as failed", n503, full.Counters["GHOST.dec_failed"])
	}
	live := full.Counters["GHOST.be_live"]
	cfg.report(t, "created %d endpoints in %v (%.2f ms each, %d workers); %d native backends live",
		n, took.Round(time.Millisecond), took.Seconds()*1e3/float64(n), cfg.conc, live)
	if live > 0 {
		cfg.report(t, "per live backend: child RSS %.1f KiB, %.2f maps, %.2f fds",
			float64(full.ChildRSSKB-base.ChildRSSKB)/float64(live), float64(full.Maps-base.Maps)/float64(live),
			float64(full.FDs-base.FDs)/float64(live))
	}

	// 2. A reload of a table of the same size and endpoints (another
	// path in every route but the first), idle: ghostd's reload time and
	// peak RSS; nothing to retire.
	// reload returns when ghostd's status showed the new generation
	reload := func(what string, conf []byte) time.Time {
		t.Helper()
		if err := os.WriteFile(s.Conf+".new", conf, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(s.Conf+".new", s.Conf); err != nil {
			t.Fatal(err)
		}
		gp := s.Ghostd.Pid()
		st0, err := stack.GhostdStatus(s.Sock, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		resetHWM(gp)
		rss0 := procfs.RSSKB(gp)
		t1 := time.Now()
		code, body, err := s.Reload()
		answered := time.Since(t1)
		if err != nil || (code != 200 && code != 202) {
			t.Fatalf("reload %s: HTTP %d %q %v", what, code, body, err)
		}
		// 202: ghostd was still loading when the shim's answer was due;
		// the new generation shows in its status when it is done.
		for deadline := time.Now().Add(180 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			st, err := stack.GhostdStatus(s.Sock, 10*time.Second)
			if err == nil && st.Gen > st0.Gen {
				break
			}
			if err == nil && st.LastError != "" || time.Now().After(deadline) {
				t.Fatalf("reload %s: no new generation: %+v %v", what, st, err)
			}
		}
		tGen := time.Now()
		rt := tGen.Sub(t1)
		hwm := procfs.RSSKB(gp, "VmHWM")
		// settled: ghostd returns the reload's garbage to the OS after
		// the swap (a full GC: seconds at 100k × 10 on a busy machine)
		settled := procfs.RSSKB(gp)
		for range 20 {
			time.Sleep(time.Second)
			settled = min(settled, procfs.RSSKB(gp))
		}
		cfg.report(t, "reload %s: new generation after %v (answered in %v: HTTP %d %q); ghostd RSS %d MiB before, peak %d MiB, settled %d MiB (peak/settled %.2f); load average %s",
			what, rt.Round(time.Millisecond), answered.Round(time.Millisecond), code, body, rss0>>10, hwm>>10, settled>>10,
			float64(hwm)/float64(max(settled, 1)), procfs.LoadAvg())
		return tGen
	}
	tIdle := time.Now()
	reload("idle, same endpoints", Config(n, cfg.routes, s.Up.Port, "b", nil))
	cfg.report(t, "CLI during the idle reload: %s", watch.Window(tIdle, time.Now()))

	// 3. Warm traffic on kept endpoints that have a backend, then a reload
	// to half the endpoints under that traffic: the odd ones dropped
	// (Half: retired and kept backends interleaved in creation order), or
	// with GHOST_SCALE_DROP=old the older half (OldHalf: every retired
	// backend older than every kept one, as when a set of endpoints is
	// replaced over time).
	half, dropped, what := Half, func(i int) bool { return i%2 == 1 }, "odd"
	if cfg.dropOld {
		half, dropped, what = OldHalf(n), func(i int) bool { return i < n/2 }, "older half"
	}
	held, err := s.GhostBackends()
	if err != nil {
		t.Fatal(err)
	}
	cfg.report(t, "backend.list: %d lines answered in %v", len(held), s.ListTook.Round(time.Millisecond))
	checkChild("after backend.list")
	var warm []int
	odd := 0
	for i := range held {
		if dropped(i) {
			odd++
		} else {
			warm = append(warm, i)
		}
	}
	slices.Sort(warm)
	// The release's cost model (docs/operations.md "Native backends"):
	// freeing a backend walks varnishd's VSM segments older than its own
	// that still exist; released oldest first (endpoints are created in
	// index order), that is the kept ones held before each dropped one.
	idx := make([]int, 0, len(held))
	for i := range held {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	var walk, even int64
	for _, i := range idx {
		if !dropped(i) {
			even++
		} else {
			walk += even
		}
	}
	if len(warm) > 2000 {
		warm = warm[len(warm)-2000:]
	}
	if len(warm) == 0 {
		t.Fatalf("backend.list holds no kept endpoint (%d entries)", len(held))
	}
	live = s.Counter("GHOST.be_live")
	cfg.report(t, "backend.list: %d ghost backends (%d %s, to retire); be_live %d; warm set %d", len(held), odd, what, live, len(warm))
	stop := make(chan struct{})
	done := make(chan *Load)
	go func() {
		done <- s.Drive(cfg.conc, func(k int) int { return warm[k%len(warm)] }, ident, stop)
	}()
	time.Sleep(5 * time.Second)
	target := live - int64(odd)
	settled := make(chan time.Time, 1)
	tReload := time.Now()
	go func() { // the first moment be_live is down to target
		for deadline := tReload.Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if v := s.Counter("GHOST.be_live"); v >= 0 && v <= target {
				settled <- time.Now()
				return
			}
		}
		settled <- time.Time{}
	}()
	tGen := reload("to half the endpoints, under load", Config(n, cfg.routes, s.Up.Port, "c", half))
	tSettled := <-settled
	if tSettled.IsZero() {
		close(stop)
		<-done
		t.Fatalf("be_live still above %d 120 s after the reload", target)
	}
	cfg.report(t, "retirement: be_live %d → ≤ %d in %v after the reload call, %v after ghostd's status showed the new generation",
		live, target, tSettled.Sub(tReload).Round(time.Millisecond), tSettled.Sub(tGen).Round(time.Millisecond))
	time.Sleep(5 * time.Second)
	heldAfter, err := s.GhostBackends()
	if err != nil {
		close(stop)
		<-done
		t.Fatal(err)
	}
	for i := range heldAfter {
		if dropped(i) {
			t.Errorf("backend.list still holds dropped endpoint %d (%v) after retirement", i, Endpoint(i))
			break
		}
	}
	if c, first := s.ErrorLines("ghost: live"); c > 0 {
		t.Errorf("%d `live` errors, first: %s", c, first)
	}
	checkChild("after retirement")
	mid := s.Measure()
	cfg.report(t, "after retirement: %v", mid)

	// 4. The release, under the same warm traffic: backend_idle_timeout
	// + 5 s (65 s) after retirement the reaper drops its reference to each
	// retired backend, oldest created first, and varnishd frees it (its
	// VSC segment and memory map). Within the documented delay
	// (docs/operations.md "Native backends"), the maps and descriptors
	// come back and MAIN.n_backend falls to be_live.
	deadline := ReleaseDelay(mid.Counters["GHOST.be_draining"], walk)
	if cfg.releaseMax > 0 {
		deadline = cfg.releaseMax
	}
	rel := s.WatchRelease(mid, tSettled, deadline)
	time.Sleep(5 * time.Second)
	close(stop)
	wl := <-done
	end := s.Measure()
	cfg.report(t, "release: %v", rel)
	if rel.Retired > 0 {
		cfg.report(t, "release model: %d releases walked past %.1f M segments of kept backends (%.0f per release); reaper CPU %v per release",
			rel.Retired, float64(walk)/1e6, float64(walk)/float64(rel.Retired), (rel.ReaperCPU / time.Duration(rel.Retired)).Round(time.Microsecond))
	}
	cfg.report(t, "after the release: %v", end)
	before := wl.Window(tReload.Add(-4*time.Second), tReload)
	cfg.report(t, "warm requests before the reload: %v", before)
	cfg.report(t, "warm requests from the reload to retirement: %v", wl.Window(tReload, tSettled))
	cfg.report(t, "warm requests after retirement: %v", wl.Window(tSettled, tSettled.Add(5*time.Second)))
	if !rel.Start.IsZero() && !rel.End.IsZero() {
		cfg.report(t, "warm requests from retirement to the release: %v", wl.Window(tSettled.Add(5*time.Second), rel.Start))
		cfg.report(t, "warm requests during the release: %v", wl.Window(rel.Start, rel.End))
		cfg.report(t, "warm requests after the release: %v", wl.Window(rel.End, rel.End.Add(5*time.Second)))
	}
	if wl.Errors > wl.Status503 {
		t.Errorf("warm traffic: %d errors other than 503, first: %v", wl.Errors-wl.Status503, wl.FirstErr)
	}
	if !rel.Done {
		t.Errorf("backends not released %v after retirement (the documented delay): MAIN.n_backend %d, GHOST.be_live %d, GHOST.be_draining %d",
			deadline, end.Counters["MAIN.n_backend"], end.Counters["GHOST.be_live"], end.Counters["GHOST.be_draining"])
	}
	if end.Counters["MAIN.n_backend"] > end.Counters["GHOST.be_live"]+1 { // +1: ghost.vcl's static backend
		t.Errorf("backends not released: MAIN.n_backend %d, GHOST.be_live %d", end.Counters["MAIN.n_backend"], end.Counters["GHOST.be_live"])
	}
	// The VSC segments share VSM clusters (88 a cluster): a cluster's map
	// goes with the last backend in it. Dropping the older half empties
	// every cluster of the dropped; dropping every other one empties none.
	if end.Maps > mid.Maps+16 {
		t.Errorf("memory maps: %d after retirement, %d after the release", mid.Maps, end.Maps)
	}
	if cfg.dropOld {
		if freed, want := int64(mid.Maps-end.Maps), mid.Counters["GHOST.be_draining"]/88-8; freed < want {
			t.Errorf("memory maps: %d → %d, the release of the %d older backends should have freed about one per 88 (%d)",
				mid.Maps, end.Maps, mid.Counters["GHOST.be_draining"], want)
		}
	}
	// The backends' memory goes back to the allocator, which returns
	// it to the system at its own pace (measured: 4-9 % less RSS at
	// 100k -> 50k); the child's RSS must not grow beyond what more worker
	// threads under the warm traffic take (2 % + 16 MiB).
	if end.ChildRSSKB > mid.ChildRSSKB+mid.ChildRSSKB/50+16<<10 {
		t.Errorf("child RSS: %d MiB after retirement, %d MiB after the release", mid.ChildRSSKB>>10, end.ChildRSSKB>>10)
	}
	if end.FDs > mid.FDs+16 {
		t.Errorf("descriptors: %d after retirement, %d after the release", mid.FDs, end.FDs)
	}
	if c, first := s.ErrorLines("ghost: backend ceiling"); c > 0 {
		cfg.report(t, "%d ceiling errors, first: %s", c, first)
	}
	cfg.report(t, "CLI from the reload to half to the end of the release: %s", watch.Window(tReload, time.Now()))
	checkChild("after the release")

	// 5. A VCL reload: a new VCL takes the warm endpoints, the old one,
	// holding every backend above, is set cold and discarded (ghost's
	// release of its backends must not hold the child's CLI thread).
	tSwitch := time.Now()
	vclSwitch(t, cfg, s, "boot", "v2", warm)
	cfg.report(t, "CLI during the VCL switch: %s", watch.Window(tSwitch, time.Now()))
	checkChild("at the end")
	cfg.report(t, "end: load average %s", procfs.LoadAvg())
}

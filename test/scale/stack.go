package scale

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varnish/ghost/test/stack"
	"github.com/varnish/ghost/test/stack/procfs"
)

// Stack is one ghost stack of the suite: the in-process upstream, ghostd
// and varnishd, with a client to varnishd's listener.
type Stack struct {
	Root, Dir, Sock, Conf string
	Up                    *Upstream
	Ghostd                *stack.Proc
	V                     *stack.Varnishd
	HTTP                  string // varnishd's listener
	client                *http.Client
	vlog                  *stack.Proc   // varnishlog -i Error
	ListTook              time.Duration // the last GhostBackends' backend.list
}

// StackOpts describe a stack to start.
type StackOpts struct {
	KeepAlive bool                  // upstream keep-alive
	InitArgs  string                // more ghost.init arguments (", max_backends = 0")
	Config    func(port int) []byte // ghost.json at start, for the upstream's port
	Params    []string              // more varnishd -p name=value
}

// StartStack starts the upstream, ghostd (on Config) and varnishd (the
// staged shim and vcl/ghost.vcl, cli_limit raised so that backend.list is
// whole), and varnishlog writing varnishd's Error records to a file.
func StartStack(o StackOpts) (*Stack, error) {
	root, err := stack.Root()
	if err != nil {
		return nil, err
	}
	if err := stack.NeedBuild(root, "build/ghostd", "build/libvmod_ghost.so"); err != nil {
		return nil, err
	}
	var dir string
	if tmp := os.Getenv("GHOST_SCALE_TMPDIR"); tmp != "" {
		// varnishd's working directory (its VSM files) on tmpfs, as
		// Varnish recommends: GHOST_SCALE_TMPDIR=/dev/shm
		if dir, err = os.MkdirTemp(tmp, "ghost-scale-"); err == nil {
			err = os.Chmod(dir, 0o755)
		}
	} else {
		dir, err = stack.StageDir("ghost-scale-")
	}
	if err != nil {
		return nil, err
	}
	s := &Stack{Root: root, Dir: dir, Sock: filepath.Join(dir, "g.sock"), Conf: filepath.Join(dir, "ghost.json")}
	if s.Up, err = StartUpstream(o.KeepAlive); err != nil {
		return s, err
	}
	if err := os.WriteFile(s.Conf, o.Config(s.Up.Port), 0o644); err != nil {
		return s, err
	}
	// not StartGhostd: loading 100k vhosts × 10 routes takes more than
	// its 10 s on a busy machine
	if s.Ghostd, err = stack.Start("ghostd", filepath.Join(dir, "ghostd.log"), stack.Opts{},
		stack.GhostdArgs(root, s.Conf, s.Sock, "", "info", "-watch=false")...); err != nil {
		return s, err
	}
	if err := stack.WaitGhostd(s.Sock, s.Ghostd, 5*time.Minute); err != nil {
		return s, fmt.Errorf("ghostd not ready: %w\n%s", err, s.Ghostd.LogTail(20))
	}
	vcl, err := stack.StageVCL(root, dir, "", s.Sock, o.InitArgs)
	if err != nil {
		return s, err
	}
	if so := os.Getenv("GHOST_SCALE_VMOD"); so != "" {
		// another build of the shim, for before/after runs
		if err := stack.CopyFile(filepath.Join(dir, "libvmod_ghost.so"), so, 0o644); err != nil {
			return s, err
		}
	}
	if s.V, err = stack.StartVarnishd(stack.VarnishdOpts{Dir: dir, VCL: vcl, Listen: []string{"http"},
		Params: append([]string{"cli_limit=99999999"}, o.Params...)}); err != nil {
		return s, err
	}
	s.HTTP = s.V.Listen["http"]
	s.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: 64, DisableCompression: true,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}}
	s.vlog, err = stack.Start("varnishlog", filepath.Join(dir, "errors.log"), stack.Opts{},
		"varnishlog", "-n", s.V.WorkDir, "-g", "raw", "-i", "Error")
	return s, err
}

// Stop stops every process by its PID; the staging directory stays when
// keep (logs for a failed run).
func (s *Stack) Stop(keep bool) {
	_ = s.vlog.Stop(5 * time.Second)
	if s.V != nil {
		_ = s.V.Stop(30 * time.Second)
	}
	_ = s.Ghostd.Stop(5 * time.Second)
	if s.Up != nil {
		_ = s.Up.Close()
	}
	if !keep {
		os.RemoveAll(s.Dir)
	}
}

// Get asks varnishd for /svc0/item of vhost i and checks that it reached
// Endpoint(ep): the error says what went wrong.
func (s *Stack) Get(i, ep int) error {
	req, _ := http.NewRequest("GET", "http://"+s.HTTP+"/svc0/item", nil)
	req.Host = Host(i)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return &StatusError{Vhost: i, Status: resp.StatusCode}
	}
	if got, want := resp.Header.Get("X-Upstream"), Endpoint(ep).String(); got != want {
		return fmt.Errorf("vhost %d: reached %q, want %s", i, got, want)
	}
	return nil
}

// StatusError is an answer other than 200.
type StatusError struct{ Vhost, Status int }

func (e *StatusError) Error() string { return fmt.Sprintf("vhost %d: status %d", e.Vhost, e.Status) }

// Reload calls /.varnish-ghost/reload through varnishd: status and body.
func (s *Stack) Reload() (int, string, error) {
	req, _ := http.NewRequest("GET", "http://"+s.HTTP+"/.varnish-ghost/reload", nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// Load is what a batch of requests saw.
type Load struct {
	N, Errors int
	Status503 int // of the errors, answers 503
	FirstErr  error
	Took      time.Duration
	Lat       []time.Duration // sorted
	Samples   []Sample        // in no order
}

// Sample is one request: when it started and how long it took.
type Sample struct {
	At    time.Time
	Lat   time.Duration
	Err   bool
	Is503 bool
}

// Window is the part of l whose requests started in [from, to).
func (l *Load) Window(from, to time.Time) *Load {
	w := &Load{Took: to.Sub(from)}
	for _, sm := range l.Samples {
		if !sm.At.Before(from) && sm.At.Before(to) {
			w.Lat = append(w.Lat, sm.Lat)
			if sm.Err {
				w.Errors++
			}
			if sm.Is503 {
				w.Status503++
			}
		}
	}
	w.N = len(w.Lat)
	sort.Slice(w.Lat, func(a, b int) bool { return w.Lat[a] < w.Lat[b] })
	return w
}

// Quantile of the latencies (q in 0..1).
func (l *Load) Quantile(q float64) time.Duration {
	if len(l.Lat) == 0 {
		return 0
	}
	return l.Lat[min(len(l.Lat)-1, int(q*float64(len(l.Lat))))]
}

func (l *Load) String() string {
	rate := 0.0
	if l.Took > 0 {
		rate = float64(l.N) / l.Took.Seconds()
	}
	return fmt.Sprintf("%d requests in %v (%.0f/s), %d errors (%d × 503), p50 %v p90 %v p99 %v max %v", l.N,
		l.Took.Round(time.Millisecond), rate, l.Errors, l.Status503, l.Quantile(.5).Round(time.Microsecond),
		l.Quantile(.9).Round(time.Microsecond), l.Quantile(.99).Round(time.Microsecond),
		l.Quantile(1).Round(time.Microsecond))
}

// Drive sends requests from conc workers: vhost next(k) for k = 0, 1, ...
// until next returns -1 or stop is closed, each checked to reach
// Endpoint(ep(vhost)).
func (s *Stack) Drive(conc int, next func(k int) int, ep func(int) int, stop <-chan struct{}) *Load {
	var k atomic.Int64
	var mu sync.Mutex
	l := &Load{}
	var wg sync.WaitGroup
	t0 := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sm []Sample
			errs, e503 := 0, 0
			var first error
			for {
				select {
				case <-stop:
					goto done
				default:
				}
				i := next(int(k.Add(1) - 1))
				if i < 0 {
					break
				}
				t := time.Now()
				err := s.Get(i, ep(i))
				se, is := err.(*StatusError)
				is503 := is && se.Status == 503
				sm = append(sm, Sample{At: t, Lat: time.Since(t), Err: err != nil, Is503: is503})
				if err != nil {
					errs++
					if is503 {
						e503++
					} else if first == nil {
						first = err
					}
				}
			}
		done:
			mu.Lock()
			l.Samples = append(l.Samples, sm...)
			l.Errors += errs
			l.Status503 += e503
			if l.FirstErr == nil {
				l.FirstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	l.Took = time.Since(t0)
	for _, x := range l.Samples {
		l.Lat = append(l.Lat, x.Lat)
	}
	l.N = len(l.Lat)
	sort.Slice(l.Lat, func(a, b int) bool { return l.Lat[a] < l.Lat[b] })
	return l
}

// Resources are what the child (and ghostd) hold at one moment.
type Resources struct {
	ChildPID, ChildRSSKB, Maps, FDs, GhostdRSSKB int
	Counters                                     map[string]int64
}

func (r Resources) String() string {
	return fmt.Sprintf("child %d: RSS %d MiB, %d maps, %d fds; ghostd RSS %d MiB; %v", r.ChildPID,
		r.ChildRSSKB>>10, r.Maps, r.FDs, r.GhostdRSSKB>>10, r.Counters)
}

// Counters the suite reads.
var Counters = []string{"GHOST.be_live", "GHOST.be_draining", "GHOST.be_created", "GHOST.be_retired",
	"GHOST.be_replaced", "GHOST.be_ceiling", "GHOST.dec_failed", "GHOST.err_timeout", "GHOST.reload_pending", "GHOST.ghostd_req", "GHOST.memo_hit", "MAIN.n_backend", "MAIN.child_panic"}

// Measure reads the child's RSS, memory maps and descriptors, ghostd's RSS
// and the suite's counters.
func (s *Stack) Measure() Resources {
	pid := s.V.ChildPID()
	r := Resources{ChildPID: pid, ChildRSSKB: procfs.RSSKB(pid), Maps: countLines(fmt.Sprintf("/proc/%d/maps", pid)),
		GhostdRSSKB: procfs.RSSKB(s.Ghostd.Pid()), Counters: s.Stats(Counters...)}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		r.FDs = len(ents)
	}
	return r
}

// Stats reads counters (varnishstat takes 5 s at 50,000 backends on a
// busy machine).
func (s *Stack) Stats(names ...string) map[string]int64 {
	return s.V.StatsWithin(2*time.Minute, names...)
}

// Counter reads one counter (-1 when it cannot be read).
func (s *Stack) Counter(name string) int64 {
	if v, ok := s.Stats(name)[name]; ok {
		return v
	}
	return -1
}

func countLines(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return -1
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
	}
	return n
}

// PanicShow is varnishadm panic.show ("" when the child never panicked).
func (s *Stack) PanicShow() string {
	out, _ := s.V.Adm("panic.show")
	out = strings.TrimSpace(out)
	if strings.Contains(out, "Child has not panicked") {
		return ""
	}
	return out
}

// GhostBackends lists the endpoint indexes of ghost's backends in
// backend.list (whole: cli_limit is raised), and whether the list was cut.
func (s *Stack) GhostBackends() (map[int]bool, error) {
	out, took, err := s.CLI(3*time.Minute, "backend.list")
	if err != nil {
		return nil, fmt.Errorf("backend.list: %v: %.200s", err, out)
	}
	s.ListTook = took
	set := map[int]bool{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		_, name, ok := strings.Cut(f[0], ".ghost.")
		if !ok {
			continue
		}
		host, _, _ := strings.Cut(name, ":")
		if i, ok := EndpointIndex(host); ok {
			set[i] = true
		}
	}
	return set, nil
}

// CLI sends one command on a CLI connection of its own (no varnishadm
// process, whose start is seconds on a loaded machine, and no varnishadm
// timeout: backend.list takes seconds at 100,000 backends) and returns
// the answer's body and how long it took; an answer other than 200 is an
// error.
func (s *Stack) CLI(timeout time.Duration, words ...string) (string, time.Duration, error) {
	c, err := s.V.DialCLI(10 * time.Second)
	if err != nil {
		return "", 0, err
	}
	defer c.Close()
	t := time.Now()
	st, body, err := c.Do(timeout, words...)
	took := time.Since(t)
	if err == nil && st != 200 {
		err = fmt.Errorf("%s: status %d", strings.Join(words, " "), st)
	}
	return body, took, err
}

// EndpointIndex inverts Endpoint.
func EndpointIndex(addr string) (int, bool) {
	p := strings.Split(addr, ".")
	if len(p) != 4 || p[0] != "127" {
		return 0, false
	}
	var b [3]int
	for k := range b {
		v, err := strconv.Atoi(p[k+1])
		if err != nil {
			return 0, false
		}
		b[k] = v
	}
	n := (b[0]-1)<<16 | b[1]<<8 | b[2]
	if b[2] == 0 || b[2] == 255 {
		return 0, false
	}
	return n/256*254 + n%256 - 1, true
}

// ErrorLines counts the lines of varnishd's Error records that contain
// substr.
func (s *Stack) ErrorLines(substr string) (int, string) {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "errors.log"))
	n, first := 0, ""
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			if n == 0 {
				first = l
			}
			n++
		}
	}
	return n, first
}

// Release is what WatchRelease saw of the final release of retired
// backends.
type Release struct {
	Retired    int64         // backends draining when the watch began
	From       time.Time     // retirement (the reference of Deadline)
	Start, End time.Time     // the first release seen; all released (End zero: not seen)
	Half       time.Time     // half of them released
	Done       bool          // MAIN.n_backend fell to GHOST.be_live + 1 by Deadline
	Deadline   time.Duration // from retirement
	Poll       time.Duration // between two looks at the counters
	MapsFrom   int           // maps when the watch began
	MapsTo     int           // maps at End (or at the deadline)
	ReaperCPU  time.Duration // CPU of the ghost-reaper thread(s), from the watch's start to End
}

func (r Release) String() string {
	if r.Start.IsZero() {
		return fmt.Sprintf("%d retired backends: none released within %v of retirement", r.Retired, r.Deadline)
	}
	end := r.End
	state := "released"
	if end.IsZero() {
		end, state = r.From.Add(r.Deadline), "NOT all released"
	}
	took := end.Sub(r.Start)
	half := "-"
	if !r.Half.IsZero() {
		half = r.Half.Sub(r.Start).Round(100 * time.Millisecond).String()
	}
	perRel := time.Duration(0)
	if r.Retired > 0 {
		perRel = r.ReaperCPU / time.Duration(r.Retired)
	}
	return fmt.Sprintf("%d retired backends %s: first seen released %v after retirement, half in %v, all in %v (%v after retirement; counters read every %v); maps %d → %d; reaper CPU %v (%v per backend)",
		r.Retired, state, r.Start.Sub(r.From).Round(100*time.Millisecond), half, took.Round(100*time.Millisecond),
		end.Sub(r.From).Round(100*time.Millisecond), r.Poll, r.MapsFrom, r.MapsTo, r.ReaperCPU.Round(10*time.Millisecond),
		perRel.Round(time.Microsecond))
}

// reaperCPU is the CPU time of the child's threads named ghost-reaper.
func reaperCPU(pid int) time.Duration {
	var sum time.Duration
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, e := range ents {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/comm", pid, e.Name()))
		if strings.TrimSpace(string(comm)) != "ghost-reaper" {
			continue
		}
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			if c, err := procfs.TaskCPU(pid, tid); err == nil {
				sum += c
			}
		}
	}
	return sum
}

// WatchRelease follows the final release of the retired backends counted
// in at (GHOST.be_draining), retired at from: the counters every second
// (the VSC segments share VSM clusters, so neither the child's maps nor its
// files follow single releases, and a varnishstat read no longer maps a
// file per backend), until MAIN.n_backend is back to GHOST.be_live + 1
// (ghost.vcl's static backend, if any) or deadline after from.
func (s *Stack) WatchRelease(at Resources, from time.Time, deadline time.Duration) Release {
	pid := at.ChildPID
	r := Release{Retired: at.Counters["GHOST.be_draining"], From: from, Deadline: deadline, Poll: time.Second,
		MapsFrom: at.Maps, MapsTo: at.Maps}
	cpu0 := reaperCPU(pid)
	for time.Now().Before(from.Add(deadline)) {
		time.Sleep(r.Poll)
		now := time.Now()
		m := countLines(fmt.Sprintf("/proc/%d/maps", pid))
		if m < 0 {
			break // the child is gone: the caller's checks say so
		}
		r.MapsTo = m
		c := s.Stats("MAIN.n_backend", "GHOST.be_live", "GHOST.be_draining")
		d, ok := c["GHOST.be_draining"]
		if !ok {
			continue
		}
		if r.Start.IsZero() && d < r.Retired {
			r.Start = now
		}
		if r.Half.IsZero() && d <= r.Retired/2 {
			r.Half = now
		}
		if nb, ok := c["MAIN.n_backend"]; ok && d == 0 && nb <= c["GHOST.be_live"]+1 {
			r.Done, r.End = true, now
			break
		}
	}
	if !r.Start.IsZero() {
		r.ReaperCPU = reaperCPU(pid) - cpu0
	}
	return r
}

package main

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varnish/ghost/protocol"
	"github.com/varnish/ghost/route"
)

// snapshot is one immutable routing table with what describes it. The live
// snapshot is swapped atomically; a decision uses the snapshot it loaded.
type snapshot struct {
	table  *route.Table
	gen    uint64
	stats  route.Stats
	hash   [sha256.Size]byte // of the file content; zero for the empty start table
	ident  uint64            // tableIdent(hash); 0 for the empty start table
	loaded time.Time         // zero when nothing was ever loaded from the file
	// cluster is what this node shards its cache over (nil: not
	// clustered); a change of members is a new generation.
	cluster *route.Cluster
}

// publish writes the snapshot's generation to the state file.
func (s *snapshot) publish(st *stateFile) {
	st.SetGen(s.gen, s.ident, s.table.CacheOriginOnly(), s.table.FetchPlain())
}

// loader owns the live table and reloads it from the config file.
type loader struct {
	path    string
	strict  bool   // unknown keys are errors
	name    string // the path as given, first word of every validation error
	log     *slog.Logger
	metrics *metrics
	state   *stateFile // nil until opened
	start   time.Time

	cur atomic.Pointer[snapshot]

	mu       sync.Mutex // serialises reloads
	lastErr  atomic.Pointer[string]
	reloads  atomic.Uint64
	failures atomic.Uint64

	releasing atomic.Bool    // a releaseMemory is under way
	released  sync.WaitGroup // the releaseMemory under way

	cachePass bool // -cache-default pass: routes without cache_policy pass
	// sessionSecret keys the session persistence tokens (-session-secret,
	// or random per start)
	sessionSecret []byte

	maxBackends int // -max-backends: warn when the table has more endpoints
}

// DefaultMaxBackends is -max-backends' default, -1: the VMOD's default
// max_backends for ghostd's own descriptor limit (AutoMaxBackends), which
// is varnishd's when both run with the same LimitNOFILE (the shipped
// units do, and so do a pod's containers).
const DefaultMaxBackends = -1

// AutoMaxBackends is the VMOD's default max_backends (ghost.init's
// max_backends = -1, vmod-shim/backend.c ghost_be_limits()) for a child
// whose descriptor limit is lim: (lim - max(1024, lim/8) - 1) * 16/17, at
// most 262,144; lim/2 when that reserve leaves less (docs/operations.md,
// "Native backends": 16,469 at 20,000, 107,940 at Debian's 131,072).
func AutoMaxBackends(lim uint64) int {
	const most = 262144
	if lim == 0 {
		return most
	}
	reserve := max(lim/8, 1024)
	n := lim / 2
	if lim > 2*reserve {
		n = (lim - reserve - 1) * 16 / 17
	}
	return int(max(min(n, most), 1))
}

// warnCeiling warns when the table has more distinct endpoints than the
// VMOD's ceiling on native backends (-max-backends): they cannot all have
// a backend at once, and past the ceiling requests for new ones get 503
// (docs/operations.md, "Native backends").
func (l *loader) warnCeiling(s *snapshot) {
	if l.maxBackends <= 0 || s.stats.Endpoints <= l.maxBackends {
		return
	}
	l.log.Warn("the table has more distinct endpoints than varnishd may hold native backends (-max-backends, "+
		"ghost.init max_backends): idle ones are retired least recently used first, and requests that need a new "+
		"one get 503 while the ceiling is full; raise max_backends with vm.max_map_count and LimitNOFILE "+
		"(docs/operations.md, Native backends)", "config", l.path, "gen", s.gen,
		"endpoints", s.stats.Endpoints, "max_backends", l.maxBackends)
}

func newLoader(path string, strict bool, log *slog.Logger, m *metrics, cachePass bool) *loader {
	l := &loader{path: path, strict: strict, name: path, log: log, metrics: m, start: time.Now(), cachePass: cachePass}
	empty := route.Empty()
	empty.SetCacheDefault(cachePass)
	l.cur.Store(&snapshot{table: empty, gen: uint64(time.Now().UnixNano()), stats: empty.Stats()})
	l.metrics.setTable(l.cur.Load())
	return l
}

// snapshot returns the live snapshot.
func (l *loader) snapshot() *snapshot { return l.cur.Load() }

// loadInitial loads the file at start. A missing or invalid file leaves the
// empty table in place (every request gets 404) and is reported in status;
// the watcher or a later reload picks the file up.
func (l *loader) loadInitial() {
	c, err := readConfig(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		l.log.Warn("config file missing; serving an empty table (404) until it appears", "config", l.path)
		msg := err.Error()
		l.lastErr.Store(&msg)
		l.metrics.reloadResult(false)
		return
	}
	size := 0
	if err == nil {
		var t *route.Table
		t0 := time.Now()
		restore := compileGC()
		size = len(c.data)
		t, err = l.parse(c, [sha256.Size]byte{})
		if err == nil {
			l.install(t, c.sum(), "start", time.Since(t0), false)
			l.releaseMemory(restore, forWarning(c, t))
			return
		}
		c.free()
		restore()
	}
	msg := err.Error()
	l.lastErr.Store(&msg)
	l.failures.Add(1)
	l.metrics.reloadFailures.Inc()
	l.metrics.reloadResult(false)
	l.log.Error("config not loaded; serving an empty table (404) until it is fixed", "config", l.path, "err", msg)
	l.releaseFailed(size, func() {})
}

// binaryID identifies this ghostd binary: its build information and the
// executable file's path, size and modification time, so that a rebuilt
// or reinstalled binary (which might route differently) never shares a
// generation with its predecessor. Not the inode: a container restarted
// from the same image may see the same file under another inode.
var binaryID = sync.OnceValue(func() string {
	var b strings.Builder
	if bi, ok := debug.ReadBuildInfo(); ok {
		b.WriteString(bi.String())
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Sprintf("unknown %d", time.Now().UnixNano()) // never matches
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return fmt.Sprintf("unknown %d", time.Now().UnixNano())
	}
	fmt.Fprintf(&b, "\n%s %d %d", exe, fi.Size(), fi.ModTime().UnixNano())
	return b.String()
})

// tableIdent identifies the table a file's content (hash) compiles to
// with this binary and cache default (-cache-default pass: cachePass) and,
// for a table with session persistence, this session secret (its answers
// carry tokens it keys); never 0.
func tableIdent(hash [sha256.Size]byte, cachePass bool, secret []byte) uint64 {
	h := sha256.New()
	h.Write([]byte(binaryID()))
	h.Write(hash[:])
	s := sha256.Sum256(secret)
	h.Write(s[:])
	if cachePass {
		// the same file decides otherwise under another default
		h.Write([]byte("\ncache-default pass"))
	}
	var sum [sha256.Size]byte
	v := binary.LittleEndian.Uint64(h.Sum(sum[:0]))
	return max(v, 1)
}

// install makes t live. Callers hold l.mu (or run before serving).
func (l *loader) install(t *route.Table, hash [sha256.Size]byte, trigger string, took time.Duration, bump bool) *snapshot {
	old := l.cur.Load()
	var secret []byte
	if t.HasSessions() {
		secret = l.sessionSecret
	}
	gen, ident := old.gen, clusterIdent(tableIdent(hash, l.cachePass, secret), old.cluster)
	if bump {
		gen++
	} else if st := l.state; st != nil && trigger == "start" {
		// The first table: the previous ghostd's generation when it
		// served the same file with the same binary (the table is the
		// same, so every decision the VMOD memoised stays valid and a
		// restart costs warm traffic nothing), else a newer one.
		if st.prevIdent == ident && st.prevGen != 0 {
			gen = st.prevGen
			l.log.Info("generation kept: same configuration and binary as the previous ghostd", "gen", gen)
		} else {
			gen = max(gen, st.prevGen+1)
		}
	}
	s := &snapshot{table: t, gen: gen, stats: t.Stats(), hash: hash, ident: ident, loaded: time.Now(), cluster: old.cluster}
	l.cur.Store(s)
	if l.state != nil {
		s.publish(l.state) // after the table is live
	}
	l.metrics.setTable(s)
	l.metrics.reloadResult(true)
	l.log.Info("config loaded", "trigger", trigger, "config", l.path, "gen", gen,
		"vhosts", s.stats.Vhosts, "routes", s.stats.Routes, "endpoints", s.stats.Endpoints,
		"duration", took.Round(time.Microsecond))
	l.clearError(gen)
	l.warnCeiling(s)
	notifyStatus(s)
	return s
}

// clearError forgets the last reload error, saying so at info level when
// there was one: the file is good again.
func (l *loader) clearError(gen uint64) {
	if prev := l.lastErr.Swap(nil); prev != nil {
		l.log.Info("config error cleared", "config", l.path, "gen", gen, "previous_err", *prev)
	}
}

// notifyStatus tells systemd (when it supervises us) what is serving.
func notifyStatus(s *snapshot) {
	_ = sdNotify(fmt.Sprintf("STATUS=serving generation %d: %d vhosts, %d routes, %d endpoints",
		s.gen, s.stats.Vhosts, s.stats.Routes, s.stats.Endpoints))
}

// reload re-reads the file and, when it changed and is valid, swaps in a
// new table with generation+1. A failed reload keeps the old table.
func (l *loader) reload(trigger string) protocol.ReloadResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	t0 := time.Now()
	old := l.cur.Load()
	// The previous load's release goes first: its garbage (and the
	// table before, until it is collected) would add to this load's
	// peak, from the file read on.
	if w := time.Now(); l.releasing.Load() {
		l.released.Wait()
		l.log.Info("reload waited for the previous load's release (memory returned, unknown-key scan)",
			"trigger", trigger, "config", l.path, "waited", time.Since(w).Round(time.Microsecond))
	}
	c, err := readConfig(l.path)
	if err != nil {
		return l.failed(old, trigger, err.Error())
	}
	restore := compileGC()
	size := len(c.data)
	t, err := l.parse(c, old.hash)
	if errors.Is(err, errUnchanged) {
		c.free()
		restore()
		l.metrics.reloadResult(true)
		l.clearError(old.gen)
		if trigger == "watch" {
			l.log.Debug("config unchanged", "trigger", trigger, "config", l.path, "gen", old.gen)
		} else {
			l.log.Info("config unchanged", "trigger", trigger, "config", l.path, "gen", old.gen)
		}
		return protocol.ReloadResult{Gen: old.gen, OK: true,
			Msg: fmt.Sprintf("unchanged %s: %d vhosts, %d routes", l.path, old.stats.Vhosts, old.stats.Routes)}
	}
	if err != nil {
		c.free()
		res := l.failed(old, trigger, err.Error())
		l.releaseFailed(size, restore)
		return res
	}
	// counted before the swap: a status that shows the new generation
	// counts its reload
	l.reloads.Add(1)
	l.metrics.reloads.Inc()
	s := l.install(t, c.sum(), trigger, time.Since(t0), true)
	// After the answer: scanning a 100k-vhost file for unknown keys takes
	// about as long as a third of its compile, and only logs.
	l.releaseMemory(restore, forWarning(c, t))
	return protocol.ReloadResult{Gen: s.gen, OK: true,
		Msg: fmt.Sprintf("loaded %s: %d vhosts, %d routes", l.path, s.stats.Vhosts, s.stats.Routes)}
}

// reloadWithin is reload that answers within wait (when > 0): a reload
// still running then goes on, and the answer says so (Pending, OK, the
// generation still serving) rather than letting the caller time out and
// report a failure that ghostd may not have. The VMOD asks with a wait
// below its own timeout; the outcome shows in status and in the log.
func (l *loader) reloadWithin(trigger string, wait time.Duration) protocol.ReloadResult {
	if wait <= 0 {
		return l.reload(trigger)
	}
	done := make(chan protocol.ReloadResult, 1)
	go func() { done <- l.reload(trigger) }()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-done:
		return r
	case <-timer.C:
	}
	gen := l.cur.Load().gen
	l.log.Warn("reload still running; answered pending", "trigger", trigger, "config", l.path,
		"gen", gen, "wait", wait)
	return protocol.ReloadResult{Gen: gen, OK: true, Pending: true,
		Msg: fmt.Sprintf("pending: %s still loading after %v; generation %d serves until it is done "+
			"(a valid file becomes generation %d; ghostd status or the log has the outcome)", l.path, wait, gen, gen+1)}
}

// releaseMemory, after the reply is sent, hands the garbage of the load
// (parsing a large file allocates more than the table it builds, and the
// old table is now unreferenced) and the file back to the OS, so that
// ghostd's RSS follows the live table instead of its largest reload,
// then calls restore (compileGC's): the collection it forces runs under
// the compile's GOGC, and the default one does not start another. Then it
// logs the unknown keys of the file just loaded (c; nil after a failed
// load, or when the compile knows it has none: forWarning), reading a
// large file again (its pages went during the compile) when it is still
// the file loaded. Reloads that come while one release
// runs share it. The next reload waits for it, so that its peak holds the
// live table only, not the file and garbage of the previous load (nor,
// when the release ran late, the table before).
func (l *loader) releaseMemory(restore func(), c *configData) {
	if !l.releasing.CompareAndSwap(false, true) {
		restore()
		if c != nil {
			go l.logUnknownKeys(c)
		}
		return
	}
	l.released.Add(1)
	go func() {
		defer l.released.Done()
		defer l.releasing.Store(false)
		if c != nil && c.mem != nil {
			c.free() // released as it compiled
		}
		time.Sleep(10 * time.Millisecond) // let in-flight decisions drop the old table
		debug.FreeOSMemory()
		restore()
		if c != nil {
			l.logUnknownKeys(c)
		}
	}()
}

// compileGCPercent is GOGC while a reload compiles. The default (100)
// starts a collection when the heap reaches twice the live table, in the
// middle of a reload the size of the live table: it marks both tables
// (a sixth to a quarter of a large reload's CPU) to free the little
// garbage the compile makes. 400 lets a reload of the live table's size run without
// a collection, and still collects early in a first load (a small live
// heap), while memory stays bounded by five times the live heap. The
// forced collection after the swap (releaseMemory) returns the garbage.
const compileGCPercent = 400

// compileGC raises GOGC to compileGCPercent (unless it is higher, or off)
// and returns the function that restores it.
func compileGC() (restore func()) {
	prev := debug.SetGCPercent(compileGCPercent)
	if prev < 0 || prev >= compileGCPercent {
		debug.SetGCPercent(prev)
		return func() {}
	}
	return func() { debug.SetGCPercent(prev) }
}

// releaseFailedMin is the size of a file whose failed parse is followed by
// a releaseMemory: a large file can fail late, after most of its table was
// built. Smaller ones leave little garbage, and a release is a full GC of
// the live table.
const releaseFailedMin = 1 << 20

// releaseFailed is releaseMemory after a failed parse of n bytes (restore
// as for releaseMemory).
func (l *loader) releaseFailed(n int, restore func()) {
	if n >= releaseFailedMin {
		l.releaseMemory(restore, nil)
		return
	}
	restore()
}

// forWarning returns the content c that compiled to t for logUnknownKeys,
// or nil (c freed) when the compile knows the file has no unknown key
// (route.Table.KnownKeysOnly, the usual case): then the file is not
// scanned, nor a large one read again.
func forWarning(c *configData, t *route.Table) *configData {
	if t.KnownKeysOnly() {
		c.free()
		return nil
	}
	return c
}

// logUnknownKeys warns, once per load and after the new table is live,
// about the keys of the file c that ghost does not know (a misspelt key
// silently changes routing). -strict refuses such a file instead. A
// large file is read again (configData.free): when it changed meanwhile,
// the load of the new content warns instead.
func (l *loader) logUnknownKeys(c *configData) {
	if c.mem != nil {
		c.free() // released as it compiled
	}
	if c.data == nil {
		again, err := readConfig(l.path)
		if err != nil {
			return
		}
		defer again.free()
		if again.id != c.id || again.sum() != c.sum() {
			return
		}
		c = again
	}
	keys := route.UnknownKeyPositions(c.data)
	c.free()
	if len(keys) == 0 {
		return
	}
	const most = 20 // one line per load, bounded
	list := make([]string, 0, min(len(keys), most))
	for _, k := range keys[:min(len(keys), most)] {
		list = append(list, k.String())
	}
	l.log.Warn("config has keys ghost ignores (-strict refuses them)", "config", l.path,
		"count", len(keys), "keys", strings.Join(list, "; "))
}

func (l *loader) failed(old *snapshot, trigger, msg string) protocol.ReloadResult {
	l.lastErr.Store(&msg)
	l.failures.Add(1)
	l.metrics.reloadFailures.Inc()
	l.metrics.reloadResult(false)
	l.log.Error("reload failed; keeping the current table", "trigger", trigger, "config", l.path,
		"gen", old.gen, "err", msg)
	return protocol.ReloadResult{Gen: old.gen, OK: false, Err: msg}
}

// parse compiles the file's content c with the daemon's cache default and
// session secret; errUnchanged when its hash is was (the live table's),
// which is known before anything compiles (route.Options.Start: a large
// file is hashed while the compile scans it). The vhosts the file has as
// the live table was compiled from are the live table's
// (route.Options.Prev): a file rewritten with a few changed routes
// compiles only those vhosts. A large file's pages go back to the OS as
// the compile goes (route.Options.Release); such a file that does not
// decode is read again, whole, for the error message (c is then that
// content, whose table parse returns if it was rewritten meanwhile into a
// valid file).
func (l *loader) parse(c *configData, was [sha256.Size]byte) (*route.Table, error) {
	o := route.Options{CachePass: l.cachePass, SessionSecret: l.sessionSecret, Prev: l.cur.Load().table,
		Release: c.releaser(), Start: func() error {
			if c.sum() == was {
				return errUnchanged
			}
			return nil
		}}
	t, err := parseConfig(l.name, c.data, l.strict, o)
	if !errors.Is(err, route.ErrReleased) {
		return t, err
	}
	c.free()
	l.log.Info("config does not decode; reading it again, whole, for the error message", "config", l.path)
	again, err := readHeap(l.path)
	if err != nil {
		return nil, err
	}
	*c = *again
	o.Release = nil
	return parseConfig(l.name, c.data, l.strict, o)
}

// errUnchanged is parse's error for a file whose content is the live
// table's.
var errUnchanged = errors.New("unchanged")

// parseConfig is route.ParseOptions that turns a panic in the compiler
// into an error, so that no file can bring the daemon down. With strict, a
// key ghost does not know is an error too (after a compile error: the
// keys are looked for before the compile, which may release the
// document, o.Release).
func parseConfig(name string, data []byte, strict bool, o route.Options) (t *route.Table, err error) {
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("%s: internal error while compiling the configuration: %v", name, p)
		}
	}()
	var unknown []string
	if strict {
		unknown = unknownKeys(name, data)
	}
	if t, err = route.ParseOptions(name, data, o); err != nil || len(unknown) == 0 {
		return t, err
	}
	more := ""
	if len(unknown) > 1 {
		more = fmt.Sprintf(", and %d more", len(unknown)-1)
	}
	return nil, fmt.Errorf("%s (strict: unknown keys are errors%s)", unknown[0], more)
}

// unknownKeys describes each key of data that ghost does not read, as
// "FILE: unknown key PATH (line L column C)".
func unknownKeys(name string, data []byte) []string {
	var out []string
	for _, k := range route.UnknownKeyPositions(data) {
		out = append(out, name+": "+k.String())
	}
	return out
}

// configWarnings lists what ghostd check warns about in a valid file:
// unknown keys, then the table's warnings (shadowed routes, routes without
// usable backends).
func configWarnings(name string, data []byte, t *route.Table) []string {
	out := unknownKeys(name, data)
	for _, w := range t.Warnings() {
		out = append(out, name+": warning: "+w)
	}
	return out
}

// status describes the daemon for the status request.
func (l *loader) status() protocol.Status {
	s := l.cur.Load()
	st := protocol.Status{
		Gen:            s.gen,
		Vhosts:         s.stats.Vhosts,
		Routes:         s.stats.Routes,
		Endpoints:      s.stats.Endpoints,
		Config:         l.path,
		Reloads:        l.reloads.Load(),
		ReloadFailures: l.failures.Load(),
		Uptime:         int64(time.Since(l.start).Seconds()),
		Server:         protocol.ServerName,
	}
	if !s.loaded.IsZero() {
		st.Loaded = s.loaded.Unix()
	}
	if e := l.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

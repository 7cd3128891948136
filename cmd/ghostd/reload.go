package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
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
	loaded time.Time         // zero when nothing was ever loaded from the file
}

// loader owns the live table and reloads it from the config file.
type loader struct {
	path    string
	name    string // file base name, first word of every validation error
	log     *slog.Logger
	metrics *metrics
	state   *stateFile // nil until opened
	start   time.Time

	cur atomic.Pointer[snapshot]

	mu       sync.Mutex // serialises reloads
	lastErr  atomic.Pointer[string]
	reloads  atomic.Uint64
	failures atomic.Uint64

	releasing atomic.Bool // a releaseMemory is under way
}

func newLoader(path string, log *slog.Logger, m *metrics) *loader {
	l := &loader{path: path, name: filepath.Base(path), log: log, metrics: m, start: time.Now()}
	empty := route.Empty()
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
	data, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		l.log.Warn("config file missing; serving an empty table (404) until it appears", "config", l.path)
		msg := err.Error()
		l.lastErr.Store(&msg)
		return
	}
	if err == nil {
		var t *route.Table
		t0 := time.Now()
		if t, err = parseConfig(l.name, data); err == nil {
			l.install(t, sha256.Sum256(data), "start", time.Since(t0), false)
			l.logUnknownKeys(data)
			return
		}
	}
	msg := err.Error()
	l.lastErr.Store(&msg)
	l.failures.Add(1)
	l.metrics.reloadFailures.Inc()
	l.log.Error("config not loaded; serving an empty table (404) until it is fixed", "config", l.path, "err", msg)
	l.releaseFailed(len(data))
}

// install makes t live. Callers hold l.mu (or run before serving).
func (l *loader) install(t *route.Table, hash [sha256.Size]byte, trigger string, took time.Duration, bump bool) *snapshot {
	old := l.cur.Load()
	gen := old.gen
	if bump {
		gen++
	}
	s := &snapshot{table: t, gen: gen, stats: t.Stats(), hash: hash, loaded: time.Now()}
	l.cur.Store(s)
	if l.state != nil {
		l.state.SetGen(gen) // after the table is live
	}
	l.lastErr.Store(nil)
	l.metrics.setTable(s)
	l.log.Info("config loaded", "trigger", trigger, "config", l.path, "gen", gen,
		"vhosts", s.stats.Vhosts, "routes", s.stats.Routes, "endpoints", s.stats.Endpoints,
		"duration", took.Round(time.Microsecond))
	return s
}

// reload re-reads the file and, when it changed and is valid, swaps in a
// new table with generation+1. A failed reload keeps the old table.
func (l *loader) reload(trigger string) protocol.ReloadResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	t0 := time.Now()
	old := l.cur.Load()
	data, err := os.ReadFile(l.path)
	if err != nil {
		return l.failed(old, trigger, err.Error())
	}
	hash := sha256.Sum256(data)
	if hash == old.hash {
		if l.lastErr.Load() != nil {
			l.lastErr.Store(nil)
		}
		if trigger == "watch" {
			l.log.Debug("config unchanged", "trigger", trigger, "config", l.path, "gen", old.gen)
		} else {
			l.log.Info("config unchanged", "trigger", trigger, "config", l.path, "gen", old.gen)
		}
		return protocol.ReloadResult{Gen: old.gen, OK: true,
			Msg: fmt.Sprintf("unchanged %s: %d vhosts, %d routes", l.path, old.stats.Vhosts, old.stats.Routes)}
	}
	t, err := parseConfig(l.name, data)
	if err != nil {
		res := l.failed(old, trigger, err.Error())
		l.releaseFailed(len(data))
		return res
	}
	s := l.install(t, hash, trigger, time.Since(t0), true)
	l.logUnknownKeys(data)
	l.releaseMemory()
	l.reloads.Add(1)
	l.metrics.reloads.Inc()
	return protocol.ReloadResult{Gen: s.gen, OK: true,
		Msg: fmt.Sprintf("loaded %s: %d vhosts, %d routes", l.path, s.stats.Vhosts, s.stats.Routes)}
}

// releaseMemory hands the garbage of a reload (parsing a large file
// allocates several times the size of the table it builds, and the old
// table is now unreferenced) back to the OS after the reply is sent, so
// ghostd's RSS follows the live table instead of its largest reload.
// Reloads that come while one release runs share it.
func (l *loader) releaseMemory() {
	if !l.releasing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer l.releasing.Store(false)
		time.Sleep(10 * time.Millisecond) // let in-flight decisions drop the old table
		debug.FreeOSMemory()
	}()
}

// releaseFailedMin is the size of a file whose failed parse is followed by
// a releaseMemory: a large file can fail late, after most of its table was
// built. Smaller ones leave little garbage, and a release is a full GC of
// the live table.
const releaseFailedMin = 1 << 20

// releaseFailed is releaseMemory after a failed parse of n bytes.
func (l *loader) releaseFailed(n int) {
	if n >= releaseFailedMin {
		l.releaseMemory()
	}
}

// logUnknownKeys logs, once per loaded file and only at debug level (the
// walk re-reads the JSON), the keys ghost.json had that ghost ignores.
func (l *loader) logUnknownKeys(data []byte) {
	if !l.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	if keys := route.UnknownKeys(data); len(keys) > 0 {
		l.log.Debug("config keys ignored", "config", l.path, "keys", strings.Join(keys, ", "))
	}
}

func (l *loader) failed(old *snapshot, trigger, msg string) protocol.ReloadResult {
	l.lastErr.Store(&msg)
	l.failures.Add(1)
	l.metrics.reloadFailures.Inc()
	l.log.Error("reload failed; keeping the current table", "trigger", trigger, "config", l.path,
		"gen", old.gen, "err", msg)
	return protocol.ReloadResult{Gen: old.gen, OK: false, Err: msg}
}

// parseConfig is route.Parse that turns a panic in the compiler into an
// error, so that no file can bring the daemon down.
func parseConfig(name string, data []byte) (t *route.Table, err error) {
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("%s: internal error while compiling the configuration: %v", name, p)
		}
	}()
	return route.Parse(name, data)
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

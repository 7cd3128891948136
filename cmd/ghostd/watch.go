package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// debounce is how long the watcher waits for a burst of events to end.
const debounce = 50 * time.Millisecond

// watchConfig reloads the config when its file changes. It watches the
// directory (so a write-then-rename and the Kubernetes ConfigMap "..data"
// symlink swap are seen) and, when the file is a symlink out of that
// directory, the target's directory too. Bursts are debounced; the loader
// skips reloads whose content did not change.
func watchConfig(ctx context.Context, path string, reload func(trigger string), log *slog.Logger) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Error("file watch disabled", "err", err)
		return
	}
	defer w.Close()
	dir, base := filepath.Dir(path), filepath.Base(path)
	watched := map[string]bool{}
	// relevant maps a watched directory to the name in it that matters
	// (names starting with ".." always matter: ConfigMap internals).
	relevant := map[string]string{dir: base}
	add := func(d string) bool {
		if watched[d] {
			return true
		}
		if err := w.Add(d); err != nil {
			return false
		}
		watched[d] = true
		return true
	}
	follow := func() {
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			return
		}
		td := filepath.Dir(target)
		if td == dir {
			return
		}
		if rel, err := filepath.Rel(dir, td); err == nil {
			first, _, _ := strings.Cut(rel, string(os.PathSeparator))
			if first != ".." && strings.HasPrefix(first, "..") {
				return // ConfigMap internals: the ..data swap shows up in dir
			}
		}
		if add(td) {
			relevant[td] = filepath.Base(target)
		}
	}
	if !add(dir) {
		// The directory does not exist (yet): retry, then load.
		log.Warn("cannot watch config directory; retrying every second", "dir", dir)
		for !add(dir) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}
	// Every watch goes in place first (the symlink target's directory
	// too), then one check catches a change made between the initial load
	// and the watches (and the file appearing while the directory was
	// missing); an unchanged file is a no-op, a still missing one is not an
	// event. The other order lost a change to the target made while the
	// check ran (TestWatchSymlinkToOtherDirectory, now and then).
	follow()
	if _, err := os.Stat(path); err == nil {
		reload("watch")
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			name := filepath.Base(ev.Name)
			want, ok := relevant[filepath.Dir(ev.Name)]
			if !ok || (name != want && !strings.HasPrefix(name, "..")) {
				continue
			}
			log.Debug("config change event", "event", ev.String())
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// An overflow may hide a change: check the file anyway.
			log.Error("file watch error; re-checking the file", "err", err)
			timer.Reset(debounce)
		case <-timer.C:
			reload("watch")
			follow()
		}
	}
}

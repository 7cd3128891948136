package main

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varnish/ghost/route"
)

// readConfig reads what os.ReadFile reads, into a mapping from mapMin
// bytes on, with the same errors; the releaser drops whole pages only.
func TestReadConfig(t *testing.T) {
	dir := t.TempDir()
	page := os.Getpagesize()
	for _, size := range []int{0, 1, page - 1, page, 3*page + 17} {
		path := filepath.Join(dir, fmt.Sprint(size))
		want := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, min := range []int64{0, 1 << 20} {
			defer func(m int64) { mapMin = m }(mapMin)
			mapMin = min
			c, err := readConfig(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.data, want) || c.sum() != sha256.Sum256(want) {
				t.Fatalf("size %d, mapMin %d: not the file's content", size, min)
			}
			if mapped := c.mem != nil; mapped != (int64(size) >= min) {
				t.Fatalf("size %d, mapMin %d: mapped %v", size, min, mapped)
			}
			if rel := c.releaser(); rel != nil && size > 0 {
				rel(1, size) // not the first page: it holds byte 0
				if c.data[0] != want[0] || size > 2*page && (c.data[page] != 0 || c.data[size-1] != want[size-1]) {
					t.Fatalf("size %d: released %q...%q", size, c.data[0], c.data[size-1])
				}
			}
			c.free()
			if c.data != nil || c.mem != nil {
				t.Fatal("free kept the content")
			}
		}
	}
	_, err := readConfig(filepath.Join(dir, "missing"))
	_, want := os.ReadFile(filepath.Join(dir, "missing"))
	if err == nil || err.Error() != want.Error() {
		t.Fatalf("missing file: %v, want %v", err, want)
	}
	c, err := readConfig("/proc/self/status") // size 0 in stat
	if err != nil || !bytes.Contains(c.data, []byte("VmRSS")) || c.mem != nil {
		t.Fatalf("procfs: %v %q", err, c.data)
	}
}

// A mapped file compiles to the table of the file on the heap; one that
// does not decode, after its pages went, gets the message of the whole
// file; -strict's message is the one it was; the unknown keys are logged
// after the load; a reload of the same content is "unchanged".
func TestLoaderMapped(t *testing.T) {
	defer func(m int64) { mapMin = m }(mapMin)
	mapMin = 0
	dir := t.TempDir()
	path := filepath.Join(dir, "ghost.json")
	doc := func(n int, tail string) []byte {
		var b strings.Builder
		b.WriteString("{\"version\": 2, \"vhosts\": {\n")
		for i := range n {
			fmt.Fprintf(&b, "%q: {\"routes\": [{\"path_match\": {\"type\": \"PathPrefix\", \"value\": \"/%d\"}, "+
				"\"backends\": [{\"address\": \"127.0.0.1\", \"port\": %d}]}]},\n", fmt.Sprintf("h%d.example.com", i), i, 1000+i)
		}
		b.WriteString(tail + "}}\n")
		return []byte(b.String())
	}
	good := doc(3000, `"last.example.com": {"routes": [{"colour": "red"}]}`)
	bad := doc(3000, `"last.example.com": {"routes": [{"priority": "high"}]}`)
	invalid := doc(3000, `"last.example.com": {"routes": [}`)
	var logs syncBuffer
	l := newLoader(path, false, slog.New(slog.NewTextHandler(&logs, nil)), newMetrics(0), false)
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	l.loadInitial()
	if e := l.lastErr.Load(); e != nil {
		t.Fatal(*e)
	}
	want, err := route.Parse(path, good)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.snapshot().table; fmt.Sprint(got.Stats(), got.Vhosts()) != fmt.Sprint(want.Stats(), want.Vhosts()) {
		t.Fatalf("mapped load: %v, want %v", got.Stats(), want.Stats())
	}
	// The release reads the file again for the warning, and skips it when
	// the file changed meanwhile: it must be done before the next write.
	l.released.Wait()
	if !strings.Contains(logs.String(), `"].routes[0].colour (line 3002 column 34)`) {
		t.Fatalf("unknown-key warning: %s", logs.String())
	}
	for _, d := range [][]byte{bad, invalid} {
		if err := os.WriteFile(path, d, 0o644); err != nil {
			t.Fatal(err)
		}
		_, want := route.Parse(path, d)
		if r := l.reload("test"); r.OK || r.Err != want.Error() {
			t.Fatalf("reload: %+v, want the error %q", r, want)
		}
	}
	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := l.reload("test"); !r.OK || !strings.HasPrefix(r.Msg, "unchanged") {
		t.Fatalf("reload: %+v, want unchanged", r)
	}
	l.released.Wait()
	l.strict = true
	if err := os.WriteFile(path, doc(2999, `"last.example.com": {"routes": [{"colour": "red"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := l.reload("test"); r.OK || !strings.HasSuffix(r.Err, "(line 3001 column 34) (strict: unknown keys are errors)") {
		t.Fatalf("strict reload: %+v", r)
	}
	l.released.Wait()
}

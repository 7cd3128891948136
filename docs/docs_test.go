// Package docs holds the checks that keep the documentation standing on
// its own: every link between the repository's Markdown files resolves,
// and no file cites a specification a clone does not contain.
package docs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// trackedFiles returns the repository's files as git lists them (tracked,
// plus untracked ones that are not ignored), relative to the root.
func trackedFiles(t *testing.T) (string, []string) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("git ls-files: %v (not a git checkout)", err)
	}
	var files []string
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if _, err := os.Stat(filepath.Join(root, f)); err == nil {
			files = append(files, f)
		}
	}
	return root, files
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading   = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*$`)
	notAnchor = regexp.MustCompile(`[^\p{L}\p{N} _-]`)
)

// anchor is the id GitHub gives a heading.
func anchor(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = notAnchor.ReplaceAllString(h, "")
	return strings.ReplaceAll(h, " ", "-")
}

// anchors returns the heading ids of a Markdown file.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		out[anchor(m[1])] = true
	}
	return out
}

// TestLinksResolve checks every relative link of every Markdown file: the
// target exists and, for a link into a Markdown file with "#fragment",
// the fragment names one of its headings.
func TestLinksResolve(t *testing.T) {
	root, files := trackedFiles(t)
	n := 0
	for _, f := range files {
		if !strings.HasSuffix(f, ".md") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			link := m[1]
			if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
				continue
			}
			n++
			path, frag, _ := strings.Cut(link, "#")
			target := filepath.Join(root, filepath.Dir(f), path)
			targetText := text
			if path != "" {
				tb, err := os.ReadFile(target)
				if err != nil {
					if fi, serr := os.Stat(target); serr == nil && fi.IsDir() {
						continue
					}
					t.Errorf("%s: link %q: %v", f, link, err)
					continue
				}
				targetText = string(tb)
			}
			if frag != "" && strings.HasSuffix(target, ".md") && !anchors(targetText)[frag] {
				t.Errorf("%s: link %q: no heading with id %q in %s", f, link, frag, path)
			}
		}
	}
	if n < 20 {
		t.Errorf("only %d relative links found: is the link pattern broken?", n)
	}
}

// TestNoOutsideCitations checks that no source or documentation file
// cites the design specification or the reference files the project was
// written from: they are not in the repository, and the rules they state
// belong in docs/ (docs/routing.md for routing).
func TestNoOutsideCitations(t *testing.T) {
	root, files := trackedFiles(t)
	// Built from parts so that this file does not match itself.
	banned := regexp.MustCompile(strings.Join([]string{
		`SPEC` + `(\.md)?\s*§`,
		`SPEC` + `\.md`,
		`gateway-api-rules` + `\.md`,
		`varnish71-vmod-facts` + `\.md`,
		`/work/` + `shared`,
	}, "|"))
	exts := []string{".go", ".c", ".h", ".vcl", ".vcc", ".sh", ".py", ".md", ".vtc", "Makefile"}
	for _, f := range files {
		ok := false
		for _, e := range exts {
			ok = ok || strings.HasSuffix(f, e)
		}
		if !ok {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if banned.MatchString(line) {
				t.Errorf("%s:%d cites a file outside the repository: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}

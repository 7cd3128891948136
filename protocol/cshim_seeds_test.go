package protocol

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/varnish/ghost/route"
)

// The seeds of the shim's C fuzz targets (test/cshim/fuzz_answer.c and
// fuzz_key.c, run briefly by make test through test/fuzz.sh) are made
// here from Go's own fuzz seeds: every request of route's FuzzDecide
// corpus and every route request of FuzzDecodeRequest's, decided on
// route's fuzz table (route/testdata/fuzz_table.json) and encoded as
// ghostd answers them; FuzzDecodeRequest's frames themselves (hostile
// msgpack: nesting, huge lengths, truncation) go in as answers too.
const (
	cshimCorpus = "../test/cshim/corpus"
	goCorpusDec = "../route/testdata/fuzz/FuzzDecide"
	goCorpusReq = "testdata/fuzz/FuzzDecodeRequest"
)

// goFuzzValues reads a "go test fuzz v1" file: its string, []byte and
// bool values in order (as strings; bools as "true"/"false").
func goFuzzValues(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) == 0 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a go test fuzz v1 file", path)
	}
	var vals []string
	for _, l := range lines[1:] {
		i := strings.IndexByte(l, '(')
		if i < 0 || !strings.HasSuffix(l, ")") {
			t.Fatalf("%s: bad line %q", path, l)
		}
		arg := l[i+1 : len(l)-1]
		switch l[:i] {
		case "string", "[]byte":
			s, err := strconv.Unquote(arg)
			if err != nil {
				t.Fatalf("%s: %q: %v", path, l, err)
			}
			vals = append(vals, s)
		case "bool":
			vals = append(vals, arg)
		default:
			t.Fatalf("%s: unsupported type in %q", path, l)
		}
	}
	return vals
}

func corpusFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("%s: no corpus (%v)", dir, err)
	}
	sort.Strings(names)
	return names
}

// keySeed frames an answer and the request it was decided for as
// fuzz_key.c reads them: a 2-byte big-endian answer length, the answer,
// then the request as lines: host ("\x00" for none), method, URL,
// listener ("\x00" for none), https (0/1), then "Name: value" lines.
func keySeed(answer []byte, r *route.Request) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.BigEndian, uint16(len(answer)))
	b.Write(answer)
	none := func(s string) string {
		if s == "" {
			return "\x00"
		}
		return s
	}
	https := "0"
	if r.HTTPS {
		https = "1"
	}
	fmt.Fprintf(&b, "%s\n%s\n%s\n%s\n%s\n", none(r.Host), r.Method, r.URL, none(r.Socket), https)
	for _, h := range r.Headers {
		fmt.Fprintf(&b, "%s: %s\n", h.Name, h.Value)
	}
	return b.Bytes()
}

// cshimSeeds computes every seed file: path under cshimCorpus → content.
func cshimSeeds(t *testing.T) map[string][]byte {
	table, err := os.ReadFile("../route/testdata/fuzz_table.json")
	if err != nil {
		t.Fatal(err)
	}
	tb, err := route.Parse("fuzz_table.json", table)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []route.Request
	for _, f := range corpusFiles(t, goCorpusDec) {
		v := goFuzzValues(t, f)
		if len(v) != 6 {
			t.Fatalf("%s: %d values, FuzzDecide takes 6", f, len(v))
		}
		hv := v[3]
		// the headers FuzzDecide sends
		reqs = append(reqs, route.Request{Host: v[0], Method: v[1], URL: v[2], Socket: v[4], HTTPS: v[5] == "true",
			Headers: []route.Header{{Name: "X", Value: hv}, {Name: "y", Value: hv}, {Name: "x", Value: strings.ToUpper(hv)}}})
	}
	out := map[string][]byte{}
	add := func(kind string, b []byte) {
		sum := sha256.Sum256(b)
		out[filepath.Join(kind, fmt.Sprintf("%x", sum[:8]))] = b
	}
	dec := newRequestDecoder()
	var req request
	for _, f := range corpusFiles(t, goCorpusReq) {
		data := []byte(goFuzzValues(t, f)[0])
		br := bufio.NewReader(bytes.NewReader(data))
		for {
			body, err := ReadFrame(br, nil)
			if err != nil {
				break
			}
			add("answer", append([]byte(nil), body...))
			if dec.Decode(body, &req) == nil && req.Type == TypeRoute {
				reqs = append(reqs, req.Route)
			}
		}
		if len(data) > 4 && binary.BigEndian.Uint32(data) != uint32(len(data)-4) {
			add("answer", data[4:]) // not one whole frame: its bytes as they are
		}
	}
	enc := newEncoder()
	for i := range reqs {
		var d route.Decision
		tb.Decide(&reqs[i], &d)
		frame, err := enc.RouteAnswer(1<<62+uint64(i), &d)
		if err != nil {
			t.Fatal(err)
		}
		answer := append([]byte(nil), frame[4:]...)
		add("answer", answer)
		add("key", keySeed(answer, &reqs[i]))
	}
	return out
}

// TestCShimSeeds: test/cshim/corpus is what cshimSeeds makes today;
// GHOST_UPDATE_VECTORS=1 rewrites it.
func TestCShimSeeds(t *testing.T) {
	want := cshimSeeds(t)
	if os.Getenv("GHOST_UPDATE_VECTORS") != "" {
		for _, kind := range []string{"answer", "key"} {
			dir := filepath.Join(cshimCorpus, kind)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, b := range want {
			if err := os.WriteFile(filepath.Join(cshimCorpus, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string][]byte{}
	for _, kind := range []string{"answer", "key"} {
		names, _ := filepath.Glob(filepath.Join(cshimCorpus, kind, "*"))
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(cshimCorpus, n)
			got[rel] = b
		}
	}
	for name := range want {
		if !bytes.Equal(got[name], want[name]) {
			t.Fatalf("%s/%s missing or stale: regenerate with GHOST_UPDATE_VECTORS=1 go test ./protocol -run TestCShimSeeds", cshimCorpus, name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Fatalf("%s/%s is not a generated seed: regenerate with GHOST_UPDATE_VECTORS=1 go test ./protocol -run TestCShimSeeds", cshimCorpus, name)
		}
	}
}

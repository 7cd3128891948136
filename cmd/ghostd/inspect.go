package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/varnish/ghost/route"
)

// tableDump is what ghostd dump prints: the table actually serving, with
// what identifies it.
type tableDump struct {
	Generation uint64            `json:"generation"`
	Config     string            `json:"config"`
	SHA256     string            `json:"sha256"`           // of the file content; "" for the empty start table
	Loaded     string            `json:"loaded,omitempty"` // RFC 3339; absent when nothing was loaded
	LastError  string            `json:"last_error,omitempty"`
	Vhosts     int               `json:"vhosts"`
	Routes     int               `json:"routes"`
	Endpoints  int               `json:"endpoints"`
	Table      []route.VhostDump `json:"table"`
}

// explainDoc is the answer to an explain request.
type explainDoc struct {
	Generation  uint64            `json:"generation"`
	Explanation route.Explanation `json:"explanation"`
}

// dumpOf describes a snapshot.
func dumpOf(s *snapshot, config, lastErr string) tableDump {
	d := tableDump{Generation: s.gen, Config: config, LastError: lastErr,
		Vhosts: s.stats.Vhosts, Routes: s.stats.Routes, Endpoints: s.stats.Endpoints, Table: s.table.Dump()}
	if d.Table == nil {
		d.Table = []route.VhostDump{}
	}
	if !s.loaded.IsZero() {
		d.SHA256 = hex.EncodeToString(s.hash[:])
		d.Loaded = s.loaded.UTC().Format(time.RFC3339)
	}
	return d
}

// Dump describes the live table (protocol.Inspector).
func (h *handler) Dump() (uint64, []byte) {
	s := h.l.snapshot()
	lastErr := ""
	if e := h.l.lastErr.Load(); e != nil {
		lastErr = *e
	}
	b, err := json.MarshalIndent(dumpOf(s, h.l.path, lastErr), "", "  ")
	if err != nil {
		b = fmt.Appendf(nil, `{"error":%q}`, err.Error())
	}
	return s.gen, b
}

// Explain says how the live table decides r (protocol.Inspector).
func (h *handler) Explain(r *route.Request) (uint64, []byte) {
	s := h.l.snapshot()
	b, err := json.Marshal(explainDoc{Generation: s.gen, Explanation: s.table.Explain(r)})
	if err != nil {
		b = fmt.Appendf(nil, `{"error":%q}`, err.Error())
	}
	return s.gen, b
}

func cmdDump(args []string) int {
	fs := subFlags("dump", "dump [-socket PATH | -config FILE]\n\n"+
		"Prints the table the running daemon serves (generation, file hash, every vhost and\n"+
		"its routes in precedence order with their rank) as JSON; with -config, the table\n"+
		"FILE would give.")
	sock := fs.String("socket", "/run/ghostd/ghostd.sock", "the daemon's socket")
	config := fs.String("config", "", "describe this file instead of asking the daemon")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 0 {
		return usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *config != "" {
		t, data, err := loadFile(*config, false)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		s := &snapshot{table: t, stats: t.Stats(), hash: sha256.Sum256(data), loaded: time.Now()}
		b, _ := json.MarshalIndent(dumpOf(s, *config, ""), "", "  ")
		os.Stdout.Write(append(b, '\n'))
		return 0
	}
	c, err := dial(*sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ghostd dump:", err)
		return 1
	}
	defer c.Close()
	_, doc, err := c.Dump()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ghostd dump:", err)
		return 1
	}
	os.Stdout.Write(append(doc, '\n'))
	return 0
}

// printExplanation writes why the decision was taken.
func printExplanation(w io.Writer, x *route.Explanation) {
	p := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-12s %s\n", label+":", fmt.Sprintf(format, a...))
	}
	p("vhost rule", "%s", x.VhostRule)
	ref := func(r route.RouteRef) string {
		s := fmt.Sprintf("rank %d ", r.Rank)
		if r.Index == route.RouteDefault {
			s += "default_backends"
		} else {
			s += fmt.Sprintf("route %d", r.Index)
		}
		if r.Name != "" {
			s += " (" + r.Name + ")"
		}
		if r.Failed != "" {
			s += ": " + r.Failed
		}
		return s
	}
	if x.Vhost == "" {
		return
	}
	var ms []string
	for _, m := range x.Matched {
		ms = append(ms, ref(m))
	}
	if len(ms) == 0 {
		ms = append(ms, "(none)")
	}
	p("matched", "%s", strings.Join(ms, "; "))
	p("decided by", "%s", x.DecidedBy)
	const maxRejected = 20
	for i, r := range x.Rejected {
		if i == maxRejected {
			p("not matched", "... %d more", len(x.Rejected)-maxRejected)
			break
		}
		p("not matched", "%s", ref(r))
	}
}

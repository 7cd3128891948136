package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/varnish/ghost/protocol"
	"github.com/varnish/ghost/route"
)

// clientTimeout bounds the reload and status subcommands (a reload of a
// large file takes well under a second).
const clientTimeout = 30 * time.Second

// subFlags makes a flag set for a subcommand; parse errors print the usage
// and give exit code 2.
func subFlags(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("ghostd "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ghostd %s\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs. -h prints the usage on stdout (exit 0);
// a bad flag prints one line on stderr (exit 2). ok is false when the
// command must exit with code.
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(os.Stdout)
		fs.Usage()
		return 0, false
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v (see %s -h)\n", fs.Name(), err, fs.Name())
		return 2, false
	}
	fs.SetOutput(os.Stderr)
	return 0, true
}

// usageError prints a one-line usage error and returns exit code 2.
func usageError(fs *flag.FlagSet, msg string) int {
	fmt.Fprintf(os.Stderr, "%s: %s (see %s -h)\n", fs.Name(), msg, fs.Name())
	return 2
}

func cmdCheck(args []string) int {
	fs := subFlags("check", "check [-strict] FILE\n\nValidates FILE; prints what it holds and any warnings, or the error (exit 1).")
	strict := fs.Bool("strict", false, "unknown keys are errors (exit 1), as ghostd -strict would refuse the file")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(fs, "need exactly one FILE")
	}
	path := fs.Arg(0)
	t, data, err := loadFile(path, *strict)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for _, w := range configWarnings(path, data, t) {
		fmt.Fprintln(os.Stderr, w)
	}
	st := t.Stats()
	fmt.Printf("%s: ok: %d vhosts, %d routes, %d endpoints\n", path, st.Vhosts, st.Routes, st.Endpoints)
	return 0
}

// loadFile reads and compiles a config file for a subcommand. Errors name
// the file by the path given.
func loadFile(path string, strict bool) (*route.Table, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	t, err := parseConfig(path, data, strict, route.Options{})
	if err != nil {
		return nil, nil, err
	}
	return t, data, nil
}

// headerFlag collects repeated -H 'name: value' flags.
type headerFlag []route.Header

// String shows the collected headers.
func (h *headerFlag) String() string { return fmt.Sprint(*h) }

// Set adds one 'name: value' header.
func (h *headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(name) == "" {
		return fmt.Errorf("want 'name: value', got %q", s)
	}
	*h = append(*h, route.Header{Name: strings.TrimSpace(name), Value: strings.TrimSpace(value)})
	return nil
}

func cmdRoute(args []string) int {
	fs := subFlags("route", "route [-config FILE | -socket PATH] -host H [-method M] [-H 'k: v']... [-socket-name N] [-https] URL\n\n"+
		"Prints the decision for one request and why: the routes that matched, in precedence\n"+
		"order, and the rule that chose the winner. With -socket, the running daemon decides\n"+
		"on its live table; otherwise FILE is read.")
	config := fs.String("config", "/etc/varnish/ghost.json", "configuration file")
	daemonSock := fs.String("socket", "", "ask the running daemon on this socket instead of reading -config")
	host := fs.String("host", "", "Host header (required; may include a port)")
	method := fs.String("method", "GET", "the client's request method")
	sock := fs.String("socket-name", "", "listener socket name (Varnish local.socket)")
	https := fs.Bool("https", false, "the request came over TLS via a trusted front")
	cacheDefault := fs.String("cache-default", "origin", "as ghostd's -cache-default: origin or pass")
	var hdrs headerFlag
	fs.Var(&hdrs, "H", "request header 'name: value' (repeatable)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 || *host == "" {
		return usageError(fs, "need -host and exactly one URL (path[?query])")
	}
	req := &route.Request{Host: *host, Method: strings.ToUpper(*method), URL: fs.Arg(0),
		Headers: hdrs, Socket: *sock, HTTPS: *https}
	if *daemonSock != "" {
		return routeLive(*daemonSock, req)
	}
	t, _, err := loadFile(*config, false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	t.SetCacheDefault(*cacheDefault == "pass")
	var d route.Decision
	t.Decide(req, &d)
	fmt.Printf("%-12s %s\n", "table:", *config)
	printDecision(os.Stdout, req, &d)
	x := t.Explain(req)
	printExplanation(os.Stdout, &x)
	return 0
}

// routeLive asks the daemon for its decision and the explanation, both
// from the same generation (retried when a reload comes in between).
func routeLive(sock string, req *route.Request) int {
	c, err := dial(sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ghostd route:", err)
		return 1
	}
	defer c.Close()
	for attempt := 0; ; attempt++ {
		a, err := c.Route(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ghostd route:", err)
			return 1
		}
		_, doc, err := c.Explain(req)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ghostd route:", err)
			return 1
		}
		var x explainDoc
		if err := json.Unmarshal(doc, &x); err != nil {
			fmt.Fprintln(os.Stderr, "ghostd route: bad explanation from the daemon:", err)
			return 1
		}
		if x.Generation != a.Gen && attempt < 3 {
			continue // a reload came in between
		}
		fmt.Printf("%-12s live, generation %d (%s)\n", "table:", a.Gen, sock)
		printDecision(os.Stdout, req, &a.Decision)
		printExplanation(os.Stdout, &x.Explanation)
		return 0
	}
}

var outcomeText = map[route.Outcome]string{
	route.OutcomeBackend:    "route to a backend",
	route.OutcomeNotFound:   "not found (no route)",
	route.OutcomeNoBackends: "no backends available",
	route.OutcomeRedirect:   "redirect",
}

func endpointString(e route.Endpoint) string {
	return net.JoinHostPort(e.Address, strconv.Itoa(int(e.Port)))
}

// printDecision writes a readable description of a decision.
func printDecision(w io.Writer, r *route.Request, d *route.Decision) {
	p := func(label, format string, a ...any) {
		fmt.Fprintf(w, "%-12s %s\n", label+":", fmt.Sprintf(format, a...))
	}
	https := "no"
	if r.HTTPS {
		https = "yes"
	}
	p("request", "%s %s  host %q  socket %q  https %s  (%d headers)", r.Method, r.URL, r.Host, r.Socket, https, len(r.Headers))
	if d.Vhost == "" {
		p("vhost", "(none matched)")
	} else {
		p("vhost", "%s", d.Vhost)
	}
	switch d.RouteIndex {
	case route.RouteNone:
		p("route", "(none)")
	case route.RouteDefault:
		p("route", "default_backends")
	default:
		if d.RouteName != "" {
			p("route", "%d (%s)", d.RouteIndex, d.RouteName)
		} else {
			p("route", "%d", d.RouteIndex)
		}
	}
	p("outcome", "%s, status %d", outcomeText[d.Outcome], d.Status)
	p("cache", "%s", d.Cache)
	if c := d.Policy; c != nil {
		p("policy", "%s", policyText(c))
	}
	if d.Timeouts != nil {
		p("timeouts", "%s", d.Timeouts)
	}
	if d.Retry != nil {
		p("retry", "%s", d.Retry)
	}
	if d.Health != nil {
		p("health", "%s", d.Health)
	}
	if d.Outlier != nil {
		p("outlier", "%s", d.Outlier)
	}
	if d.Health != nil || d.Outlier != nil {
		p("panic", "below %d%% healthy endpoints the pick ignores health (the shim knows which are healthy)", d.Panic)
	}
	if len(d.Groups) > 0 {
		fmt.Fprintln(w, "candidates:")
		for i, g := range d.Groups {
			eps := make([]string, len(g.Endpoints))
			for j, e := range g.Endpoints {
				eps[j] = endpointString(e)
			}
			fmt.Fprintf(w, "  group %d  weight %-8d %s\n", i, g.Weight, strings.Join(eps, ", "))
		}
		if gi, ei, ok := d.Pick(rand.Uint64()); ok { // as the shim picks, per request
			p("pick", "%s (group %d, endpoint %d; random, weighted)", endpointString(d.Groups[gi].Endpoints[ei]), gi, ei)
		} else {
			p("pick", "(nothing can be picked)")
		}
	}
	ops := func(label string, o *route.HeaderOps) {
		if o == nil {
			return
		}
		for _, h := range o.Set {
			p(label, "set %s: %s", h.Name, h.Value)
		}
		for _, h := range o.Add {
			p(label, "add %s: %s", h.Name, h.Value)
		}
		for _, n := range o.Remove {
			p(label, "remove %s", n)
		}
	}
	ops("request hdr", d.RequestHeaders)
	if d.NewPath != "" {
		p("rewrite", "path %s (query kept)", d.NewPath)
	}
	if d.NewHost != "" {
		p("rewrite", "Host %s", d.NewHost)
	}
	ops("response hdr", d.ResponseHeaders)
	if d.Outcome == route.OutcomeRedirect {
		p("location", "%s", d.Location())
	}
	p("depends on", "%s", strings.Join(d.Deps.Names(), ", "))
}

// dial connects to the daemon for a subcommand.
func dial(sock string) (*protocol.Client, error) {
	return protocol.Dial(sock, clientTimeout)
}

func dialFlags(name string, args []string, extra func(*flag.FlagSet)) (*protocol.Client, int) {
	fs := subFlags(name, name+" [-socket PATH]")
	sock := fs.String("socket", "/run/ghostd/ghostd.sock", "the daemon's socket")
	if extra != nil {
		extra(fs)
	}
	if code, ok := parseFlags(fs, args); !ok {
		return nil, code
	}
	if fs.NArg() != 0 {
		return nil, usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	c, err := dial(*sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ghostd "+name+":", err)
		return nil, 1
	}
	return c, 0
}

func cmdReload(args []string) int {
	c, rc := dialFlags("reload", args, nil)
	if c == nil {
		return rc
	}
	defer c.Close()
	r, err := c.Reload()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ghostd reload:", err)
		return 1
	}
	if !r.OK {
		fmt.Fprintln(os.Stderr, r.Err)
		return 1
	}
	fmt.Printf("%s (generation %d)\n", r.Msg, r.Gen)
	return 0
}

// statusJSON is ghostd status -json.
type statusJSON struct {
	Server         string `json:"server"`
	Config         string `json:"config"`
	Generation     uint64 `json:"generation"`
	Loaded         string `json:"loaded,omitempty"`
	Vhosts         int    `json:"vhosts"`
	Routes         int    `json:"routes"`
	Endpoints      int    `json:"endpoints"`
	Reloads        uint64 `json:"reloads"`
	ReloadFailures uint64 `json:"reload_failures"`
	LastError      string `json:"last_error,omitempty"`
	UptimeSeconds  int64  `json:"uptime_seconds"`
	Ready          bool   `json:"ready"`
}

func cmdStatus(args []string) int {
	asJSON := false
	c, rc := dialFlags("status", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print the status as JSON")
	})
	if c == nil {
		return rc
	}
	defer c.Close()
	s, err := c.Status()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ghostd status:", err)
		return 1
	}
	// Usable as a probe: exit 1 when no file was ever loaded or the last
	// reload failed (the previous table still serves).
	ready := s.Loaded > 0 && s.LastError == ""
	code := 0
	if !ready {
		code = 1
	}
	loaded := ""
	if s.Loaded > 0 {
		loaded = time.Unix(s.Loaded, 0).UTC().Format(time.RFC3339)
	}
	if asJSON {
		b, _ := json.MarshalIndent(statusJSON{Server: s.Server, Config: s.Config, Generation: s.Gen, Loaded: loaded,
			Vhosts: s.Vhosts, Routes: s.Routes, Endpoints: s.Endpoints, Reloads: s.Reloads, ReloadFailures: s.ReloadFailures,
			LastError: s.LastError, UptimeSeconds: s.Uptime, Ready: ready}, "", "  ")
		fmt.Println(string(b))
		return code
	}
	if loaded == "" {
		loaded = "never"
	}
	lastErr := "none"
	if s.LastError != "" {
		lastErr = s.LastError
	}
	fmt.Printf("server:          %s\n", s.Server)
	fmt.Printf("config:          %s\n", s.Config)
	fmt.Printf("generation:      %d\n", s.Gen)
	fmt.Printf("loaded:          %s\n", loaded)
	fmt.Printf("table:           %d vhosts, %d routes, %d endpoints\n", s.Vhosts, s.Routes, s.Endpoints)
	fmt.Printf("reloads:         %d ok, %d failed\n", s.Reloads, s.ReloadFailures)
	fmt.Printf("last error:      %s\n", lastErr)
	fmt.Printf("uptime:          %s\n", time.Duration(s.Uptime)*time.Second)
	return code
}

// policyText describes a cache_policy in one line.
func policyText(c *route.CachePolicy) string {
	var parts []string
	secs := func(name string, v int64) {
		if v >= 0 {
			parts = append(parts, fmt.Sprintf("%s %ds", name, v))
		}
	}
	if c.Forced {
		secs("forced ttl", c.TTL)
	} else {
		secs("default ttl", c.TTL)
	}
	secs("grace", c.Grace)
	secs("keep", c.Keep)
	if len(c.KeyHeaders) > 0 {
		parts = append(parts, "key headers "+strings.Join(c.KeyHeaders, ","))
	}
	if len(c.QueryInclude) > 0 {
		parts = append(parts, "key query only "+strings.Join(c.QueryInclude, ","))
	}
	if len(c.QueryExclude) > 0 {
		parts = append(parts, "key query without "+strings.Join(c.QueryExclude, ","))
	}
	if len(parts) == 0 {
		return "(all defaults)"
	}
	return strings.Join(parts, "; ")
}

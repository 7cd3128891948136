package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/varnish/ghost/protocol"
	"github.com/varnish/ghost/route"
)

const usageText = `ghostd — ghost's routing daemon for Varnish

Usage:
  ghostd [flags]                   run the daemon
  ghostd check [-strict] FILE       validate FILE; exit 0, or 1 with the error
  ghostd route [-config FILE | -socket PATH] -host H [-method M] [-H 'k: v']... URL
                                   print the decision for one request and why
  ghostd dump [-socket PATH | -config FILE]
                                   print the live table (JSON)
  ghostd reload [-socket PATH]     ask the running daemon to reload its config
  ghostd status [-socket PATH] [-json]
                                   print the running daemon's status (exit 1:
                                   nothing loaded or the last reload failed)
  ghostd version                   print the version
  ghostd help                      print this text

Daemon flags:
`

// heartbeatEvery is how often the state file's heartbeat is refreshed.
const heartbeatEvery = 250 * time.Millisecond

// modeFlag is an octal file mode flag.
type modeFlag os.FileMode

// String shows the mode in octal.
func (m *modeFlag) String() string { return fmt.Sprintf("%#o", uint32(*m)) }

// Set parses an octal mode.
func (m *modeFlag) Set(s string) error {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 {
		return fmt.Errorf("want an octal mode like 0660")
	}
	*m = modeFlag(v)
	return nil
}

// daemonConfig is the daemon's command line.
type daemonConfig struct {
	config       string
	socket       string
	socketMode   modeFlag
	socketGroup  string
	state        string
	metrics      string
	metricsVh    int
	maxBackends  int
	logLevel     string
	logFormat    string
	strict       bool
	showVersion  bool
	watch        bool
	idleTimeout  time.Duration
	frameTimeout time.Duration
	helloTimeout time.Duration
	maxConns     int
	cacheDefault string // "origin" or "pass"
	// sessionSecret: file with the key of session persistence tokens
	sessionSecret string
	cluster       clusterFlags
	clusterBase   route.ClusterConfig // from cluster, validated
}

// daemonFlags returns the daemon's flag set, writing into c.
func daemonFlags(c *daemonConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("ghostd", flag.ContinueOnError)
	fs.StringVar(&c.config, "config", "/etc/varnish/ghost.json", "routing configuration (ghost.json)")
	fs.StringVar(&c.socket, "socket", "/run/ghostd/ghostd.sock", "Unix socket to serve the protocol on (when socket-activated, only the base of the -state default)")
	fs.Var(&c.socketMode, "socket-mode", "permissions of the socket (octal)")
	fs.StringVar(&c.socketGroup, "socket-group", "", "group of the socket, name or gid (\"\" = keep ghostd's group)")
	fs.StringVar(&c.state, "state", "", "state file read by the VMOD (default: socket path + \".state\")")
	fs.StringVar(&c.metrics, "metrics", "127.0.0.1:9192", "address for Prometheus /metrics (\"\" disables)")
	fs.IntVar(&c.metricsVh, "metrics-vhosts", DefaultMetricsVhosts, "at most this many vhosts (and route names) get metric series of their own; the rest count as vhost=\"~other\" (0: none, every decision counts as ~other)")
	fs.IntVar(&c.maxBackends, "max-backends", DefaultMaxBackends, "warn at every load when the table has more distinct endpoints than this: ghost.init's max_backends (-1: the VMOD's default for ghostd's own descriptor limit, logged at start; 0: no warning)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text (logfmt) or json")
	fs.BoolVar(&c.strict, "strict", false, "reject a config with keys ghost does not know (default: load it and warn)")
	fs.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	fs.BoolVar(&c.watch, "watch", true, "reload when the config file changes")
	fs.StringVar(&c.cacheDefault, "cache-default", "origin", "routes without cache_policy: origin (Varnish caches as the origin's headers allow) or pass (never cached, as varnish/gateway does)")
	fs.StringVar(&c.sessionSecret, "session-secret", "", "file whose content keys the session_persistence tokens; give every node the same file so that any node accepts a session another started (default: a random key per start: sessions end when ghostd restarts)")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", protocol.DefaultIdleTimeout, "close connections idle this long")
	fs.DurationVar(&c.frameTimeout, "frame-timeout", protocol.DefaultFrameTimeout, "close connections that take longer to send a started frame or to read an answer")
	fs.DurationVar(&c.helloTimeout, "hello-timeout", protocol.DefaultHelloTimeout, "close new connections that have not said hello within this")
	fs.IntVar(&c.maxConns, "max-conns", protocol.DefaultMaxConns, "close new connections while this many are open")
	addClusterFlags(fs, &c.cluster)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	return fs
}

// printHelp writes the usage text and the daemon flags to stdout.
func printHelp() {
	fs := daemonFlags(&daemonConfig{socketMode: 0o660})
	fs.SetOutput(os.Stdout)
	fs.Usage()
}

// parseDaemonFlags parses the daemon's command line; ok is false when
// ghostd must exit with code (after -h or -version, or a usage error
// already printed).
func parseDaemonFlags(args []string) (c *daemonConfig, code int, ok bool) {
	c = &daemonConfig{socketMode: 0o660}
	fs := daemonFlags(c)
	if code, ok := parseFlags(fs, args); !ok {
		return nil, code, false
	}
	if c.showVersion {
		fmt.Println(readBuildInfo())
		return nil, 0, false
	}
	if fs.NArg() > 0 {
		return nil, usageError(fs, fmt.Sprintf("unexpected argument %q (subcommands: check, route, dump, reload, status, version, help)", fs.Arg(0))), false
	}
	if c.state == "" {
		c.state = c.socket + ".state"
	}
	if c.cacheDefault != "origin" && c.cacheDefault != "pass" {
		return nil, usageError(fs, fmt.Sprintf("bad -cache-default %q (want origin or pass)", c.cacheDefault)), false
	}
	if c.idleTimeout <= 0 || c.frameTimeout <= 0 || c.helloTimeout <= 0 {
		return nil, usageError(fs, "-idle-timeout, -frame-timeout and -hello-timeout must be positive"), false
	}
	if c.maxConns < 1 {
		return nil, usageError(fs, "-max-conns must be at least 1"), false
	}
	if c.metricsVh < 0 {
		return nil, usageError(fs, "-metrics-vhosts must not be negative"), false
	}
	if c.maxBackends < -1 {
		return nil, usageError(fs, "-max-backends must be -1 (auto), 0 (no warning) or a ceiling"), false
	}
	var err error
	if c.clusterBase, err = c.cluster.config(); err != nil {
		return nil, usageError(fs, err.Error()), false
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		return nil, usageError(fs, err.Error()), false
	}
	if c.logFormat != "text" && c.logFormat != "json" {
		return nil, usageError(fs, fmt.Sprintf("bad -log-format %q (want text or json)", c.logFormat)), false
	}
	return c, 0, true
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("bad -log-level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

// runDaemon runs ghostd until SIGTERM or SIGINT and returns the exit code.
func runDaemon(args []string) int {
	cfg, code, ok := parseDaemonFlags(args)
	if !ok {
		return code
	}
	level, _ := parseLevel(cfg.logLevel)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if cfg.logFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	log := slog.New(h)
	if err := serve(cfg, log); err != nil {
		fmt.Fprintln(os.Stderr, "ghostd:", err)
		return 1
	}
	return 0
}

// serve wires everything together and blocks until a stop signal.
func serve(cfg *daemonConfig, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	m := newMetrics(cfg.metricsVh)
	l := newLoader(cfg.config, cfg.strict, log, m, cfg.cacheDefault == "pass")
	l.maxBackends = cfg.maxBackends
	if l.maxBackends < 0 {
		var rl syscall.Rlimit
		lim := uint64(0)
		if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur != ^uint64(0) {
			lim = rl.Cur
		}
		l.maxBackends = AutoMaxBackends(lim)
		log.Info("-max-backends from the descriptor limit, as the VMOD's default max_backends (set it when varnishd's LimitNOFILE differs)",
			"max_backends", l.maxBackends, "limit", lim)
	}
	secret, err := sessionSecret(cfg.sessionSecret)
	if err != nil {
		return err
	}
	l.sessionSecret = secret

	// The socket first: a second ghostd on the same socket stops here.
	ln, err := activationListener()
	if err != nil {
		return err
	}
	if ln != nil {
		log.Info("using the socket-activated listener", "addr", ln.Addr().String())
	} else {
		if ln, err = listenSocket(cfg.socket, os.FileMode(cfg.socketMode), cfg.socketGroup); err != nil {
			return err
		}
		log.Info("listening", "socket", cfg.socket, "mode", cfg.socketMode.String(), "group", cfg.socketGroup)
		if cfg.socketMode&0o002 != 0 {
			log.Warn("the socket is world-writable: any local user can reload the config and ask for decisions", "mode", cfg.socketMode.String())
		}
	}
	defer ln.Close() // unlinks the socket only if we created it

	state, err := openState(cfg.state)
	if err != nil {
		return err
	}
	defer state.Close()
	l.state = state

	if cfg.metrics != "" {
		stop, err := serveMetrics(ctx, cfg.metrics, m, l, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	if cfg.cluster.on() {
		if err := startCluster(ctx, &cfg.cluster, cfg.clusterBase, l, m, log); err != nil {
			return err
		}
	}
	l.loadInitial()
	l.snapshot().publish(state) // the first table is live
	state.Heartbeat(time.Now().UnixMilli())
	// The heartbeat also feeds systemd's watchdog (WatchdogSec=): a ghostd
	// whose heartbeat stops is restarted.
	wd := watchdogInterval()
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		var lastPing time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				state.Heartbeat(now.UnixMilli())
				if wd > 0 && now.Sub(lastPing) >= wd/2 {
					_ = sdNotify("WATCHDOG=1")
					lastPing = now
				}
			}
		}
	}()

	srv := &protocol.Server{
		Handler:      &handler{l: l, m: m, heavy: newLane()},
		Logger:       log,
		IdleTimeout:  cfg.idleTimeout,
		FrameTimeout: cfg.frameTimeout,
		HelloTimeout: cfg.helloTimeout,
		MaxConns:     cfg.maxConns,
		OnConn: func(d int) {
			m.connsOpen.Add(float64(d))
			if d > 0 {
				m.connsTotal.Inc()
			}
		},
		OnError:   func(code string) { m.protoErrors.WithLabelValues(code).Inc() },
		OnRefused: func() { m.protoErrors.WithLabelValues("max_conns").Inc() },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	if cfg.watch {
		go watchConfig(ctx, cfg.config, func(trigger string) { l.reload(trigger) }, log)
	}
	if err := sdNotify("READY=1"); err != nil {
		log.Error("systemd notify failed", "err", err)
	}
	s := l.snapshot()
	log.Info("ghostd ready", "gen", s.gen, "vhosts", s.stats.Vhosts, "routes", s.stats.Routes,
		"endpoints", s.stats.Endpoints, "pid", os.Getpid())

	var result error
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				go l.reload("sighup")
				continue
			}
			log.Info("stopping", "signal", sig.String())
			break loop
		case err := <-serveErr:
			result = fmt.Errorf("serving %s: %w", cfg.socket, err)
			break loop
		}
	}
	_ = sdNotify("STOPPING=1")
	cancel()
	<-hbDone
	state.Heartbeat(0) // tell the VMOD ghostd is gone (it keeps what it memoised until a ghostd is back)
	sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
	}
	// Wait for a reload still running (SIGHUP, watcher) and keep later ones
	// away from the state file, which is unmapped on return.
	l.mu.Lock()
	l.state = nil
	l.mu.Unlock()
	return result
}

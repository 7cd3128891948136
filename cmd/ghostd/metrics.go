package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/puzpuzpuz/xsync/v3"

	"github.com/varnish/ghost/route"
)

// outcomeNames are the "outcome" label values, indexed by route.Outcome.
var outcomeNames = [...]string{
	route.OutcomeBackend:    route.OutcomeName(route.OutcomeBackend),
	route.OutcomeNotFound:   route.OutcomeName(route.OutcomeNotFound),
	route.OutcomeNoBackends: route.OutcomeName(route.OutcomeNoBackends),
	route.OutcomeRedirect:   route.OutcomeName(route.OutcomeRedirect),
}

// vhostCounters caches one vhost's decision counters so that the hot path
// does no label lookup.
type vhostCounters [len(outcomeNames)]prometheus.Counter

// OtherLabel is the vhost and route_name label value that counts the
// decisions of every vhost (route name) past the -metrics-vhosts cap. A
// vhost key never contains "~" (hostnames), so it cannot collide there.
const OtherLabel = "~other"

// DefaultMetricsVhosts is the default of -metrics-vhosts: at most this
// many vhost (and route_name) label values, so that /metrics stays well
// under 1 MB at any table size (4 series per vhost, ~80 bytes each).
const DefaultMetricsVhosts = 1000

// metrics holds every ghostd metric.
type metrics struct {
	reg            *prometheus.Registry
	decisions      *prometheus.CounterVec
	byVhost        *xsync.MapOf[string, *vhostCounters]
	maxLabels      int64        // label values per label before OtherLabel
	nVhost, nRoute atomic.Int64 // label values in use (approximate)
	latency        prometheus.Histogram
	reloads        prometheus.Counter
	reloadFailures prometheus.Counter
	byRoute        *xsync.MapOf[string, prometheus.Counter]
	routeDecisions *prometheus.CounterVec
	generation     prometheus.Gauge
	lastReloadOK   prometheus.Gauge
	lastReloadTime prometheus.Gauge
	buildInfo      *prometheus.GaugeVec
	vhosts         prometheus.Gauge
	routes         prometheus.Gauge
	endpoints      prometheus.Gauge
	connsOpen      prometheus.Gauge
	connsTotal     prometheus.Counter
	protoErrors    *prometheus.CounterVec
	// clustering (cluster.go)
	clusterMembers       prometheus.Gauge
	clusterSelf          prometheus.Gauge
	clusterChanges       prometheus.Counter
	clusterResolveErrors prometheus.Counter
}

// newMetrics returns the registry with every metric; maxLabels caps the
// distinct vhost and route_name label values (0: every decision counts
// under OtherLabel).
func newMetrics(maxLabels int) *metrics {
	m := &metrics{
		maxLabels: int64(maxLabels),
		reg:       prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghost_decisions_total",
			Help: "Routing decisions by selected vhost (\"\" = none) and outcome.",
		}, []string{"vhost", "outcome"}),
		byVhost: xsync.NewMapOf[string, *vhostCounters](),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ghost_decision_duration_seconds",
			Help:    "Time to compute one routing decision (table lookup only, no I/O).",
			Buckets: []float64{250e-9, 500e-9, 1e-6, 2e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 1e-3, 10e-3},
		}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ghost_reloads_total",
			Help: "Successful reloads that installed a new table.",
		}),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ghost_reload_failures_total",
			Help: "Failed loads and reloads (the previous table was kept).",
		}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ghost_config_generation",
			Help: "Config generation of the live table (float64: the last digits are rounded; ghostd status and ghostd dump show it exactly).",
		}),
		byRoute: xsync.NewMapOf[string, prometheus.Counter](),
		routeDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghost_route_decisions_total",
			Help: "Decisions that selected a route with a route_name, by route_name (the HTTPRoute; bounded by the config, dropped when it leaves the config).",
		}, []string{"route_name"}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ghost_config_last_reload_successful",
			Help: "1 when the last load or reload of the config succeeded (or found it unchanged), 0 when it failed and an older table (or none) serves.",
		}),
		lastReloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ghost_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful load or reload (0 = none yet).",
		}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ghost_build_info",
			Help: "Always 1; labels describe the ghostd binary.",
		}, []string{"version", "revision", "goversion"}),
		vhosts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ghost_table_vhosts", Help: "Vhosts in the live table.",
		}),
		routes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ghost_table_routes", Help: "Routes in the live table.",
		}),
		endpoints: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ghost_table_endpoints", Help: "Distinct endpoints in the live table.",
		}),
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ghost_connections_open", Help: "Open protocol connections.",
		}),
		connsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ghost_connections_total", Help: "Protocol connections accepted.",
		}),
		protoErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ghost_protocol_errors_total",
			Help: "Protocol errors by code (frame covers bad lengths, truncated and stalled frames).",
		}, []string{"code"}),
		clusterMembers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ghost_cluster_members", Help: "Members of the cluster this node shards its cache over (0: not clustered).",
		}),
		clusterSelf: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ghost_cluster_self_member", Help: "1 when this node is one of the cluster's members (it owns a share of the keys), else 0.",
		}),
		clusterChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ghost_cluster_changes_total", Help: "Changes of the cluster's members (each is a new generation).",
		}),
		clusterResolveErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ghost_cluster_resolve_errors_total", Help: "Failed resolutions of -cluster-dns (the members stay as they were).",
		}),
	}
	bi := readBuildInfo()
	m.buildInfo.WithLabelValues(bi.Version, bi.Revision, bi.GoVersion).Set(1)
	m.reg.MustRegister(m.decisions, m.latency, m.reloads, m.reloadFailures, m.generation,
		m.routeDecisions, m.lastReloadOK, m.lastReloadTime, m.buildInfo, m.vhosts, m.routes, m.endpoints, m.connsOpen, m.connsTotal,
		m.protoErrors, m.clusterMembers, m.clusterSelf, m.clusterChanges, m.clusterResolveErrors,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// decided counts one decision. The first maxLabels vhosts (route names)
// seen since they entered the table get series of their own, the rest
// count under OtherLabel; a reload that removes some frees their places.
func (m *metrics) decided(vhost, routeName string, o route.Outcome, took time.Duration) {
	cs, ok := m.byVhost.Load(vhost)
	if !ok {
		if vhost != "" && m.nVhost.Load() >= m.maxLabels {
			vhost = OtherLabel
		}
		cs, _ = m.byVhost.LoadOrCompute(vhost, func() *vhostCounters {
			if vhost != "" && vhost != OtherLabel {
				m.nVhost.Add(1)
			}
			var c vhostCounters
			for i, name := range outcomeNames {
				c[i] = m.decisions.WithLabelValues(vhost, name)
			}
			return &c
		})
	}
	if int(o) < len(cs) {
		cs[o].Inc()
	}
	if routeName != "" {
		c, ok := m.byRoute.Load(routeName)
		if !ok {
			if m.nRoute.Load() >= m.maxLabels {
				routeName = OtherLabel
			}
			c, _ = m.byRoute.LoadOrCompute(routeName, func() prometheus.Counter {
				if routeName != OtherLabel {
					m.nRoute.Add(1)
				}
				return m.routeDecisions.WithLabelValues(routeName)
			})
		}
		c.Inc()
	}
	m.latency.Observe(took.Seconds())
}

// reloadResult records whether the last load or reload worked.
func (m *metrics) reloadResult(ok bool) {
	if ok {
		m.lastReloadOK.Set(1)
		m.lastReloadTime.Set(float64(time.Now().UnixNano()) / 1e9)
	} else {
		m.lastReloadOK.Set(0)
	}
}

// forget drops the decision series of vhosts and route names the new
// table no longer has, so that a removed vhost does not leave frozen
// series behind. The "" vhost (no match) stays.
//
// It runs while the old table is still in memory beside the new one (a
// reload's peak): it allocates nothing in proportion to the table.
func (m *metrics) forget(t *route.Table) {
	m.byVhost.Range(func(v string, _ *vhostCounters) bool {
		if v != "" && v != OtherLabel && !t.HasVhost(v) {
			m.byVhost.Delete(v)
			m.nVhost.Add(-1)
			for _, name := range outcomeNames {
				m.decisions.DeleteLabelValues(v, name)
			}
		}
		return true
	})
	if m.nRoute.Load() <= 0 {
		return // no route series (the names are a walk of every route)
	}
	names := map[string]bool{OtherLabel: true}
	for _, n := range t.RouteNames() {
		names[n] = true
	}
	m.byRoute.Range(func(n string, _ prometheus.Counter) bool {
		if !names[n] {
			m.byRoute.Delete(n)
			m.nRoute.Add(-1)
			m.routeDecisions.DeleteLabelValues(n)
		}
		return true
	})
}

// setTable publishes the live table's generation and size.
func (m *metrics) setTable(s *snapshot) {
	m.generation.Set(float64(s.gen))
	m.forget(s.table)
	m.vhosts.Set(float64(s.stats.Vhosts))
	m.routes.Set(float64(s.stats.Routes))
	m.endpoints.Set(float64(s.stats.Endpoints))
}

// setCluster publishes the cluster's size.
func (m *metrics) setCluster(cl *route.Cluster) {
	m.clusterChanges.Inc()
	m.clusterMembers.Set(float64(len(cl.Members)))
	if cl.Self >= 0 {
		m.clusterSelf.Set(1)
	} else {
		m.clusterSelf.Set(0)
	}
}

// serveMetrics listens on addr and serves /metrics, /healthz (alive) and
// /readyz (a table loaded from the file serves) until ctx is done.
func serveMetrics(ctx context.Context, addr string, m *metrics, l *loader, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		s := l.snapshot()
		if s.loaded.IsZero() {
			w.WriteHeader(http.StatusServiceUnavailable)
			msg := "no config loaded yet"
			if e := l.lastErr.Load(); e != nil {
				msg += ": " + *e
			}
			fmt.Fprintln(w, msg)
			return
		}
		fmt.Fprintf(w, "ok: generation %d, %d vhosts\n", s.gen, s.stats.Vhosts)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return func() {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_ = srv.Shutdown(c)
	}, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/puzpuzpuz/xsync/v3"

	"github.com/varnish/ghost/route"
)

// outcomeNames are the "outcome" label values, indexed by route.Outcome.
var outcomeNames = [...]string{
	route.OutcomeBackend:    "backend",
	route.OutcomeNotFound:   "not_found",
	route.OutcomeNoBackends: "no_backends",
	route.OutcomeRedirect:   "redirect",
}

// vhostCounters caches one vhost's decision counters so that the hot path
// does no label lookup.
type vhostCounters [len(outcomeNames)]prometheus.Counter

// metrics holds every ghostd metric.
type metrics struct {
	reg            *prometheus.Registry
	decisions      *prometheus.CounterVec
	byVhost        *xsync.MapOf[string, *vhostCounters]
	latency        prometheus.Histogram
	reloads        prometheus.Counter
	reloadFailures prometheus.Counter
	generation     prometheus.Gauge
	configInfo     *prometheus.GaugeVec
	lastLoad       prometheus.Gauge
	vhosts         prometheus.Gauge
	routes         prometheus.Gauge
	endpoints      prometheus.Gauge
	connsOpen      prometheus.Gauge
	connsTotal     prometheus.Counter
	protoErrors    *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
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
			Help: "Config generation of the live table (float64: the last digits are rounded; ghost_config_info has it exactly).",
		}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ghost_config_info",
			Help: "Always 1; the generation label is the live table's exact generation.",
		}, []string{"generation"}),
		lastLoad: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ghost_config_last_load_timestamp_seconds",
			Help: "Unix time the live table was loaded (0 = nothing loaded from the file yet).",
		}),
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
	}
	m.reg.MustRegister(m.decisions, m.latency, m.reloads, m.reloadFailures, m.generation,
		m.configInfo, m.lastLoad, m.vhosts, m.routes, m.endpoints, m.connsOpen, m.connsTotal,
		m.protoErrors,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// decided counts one decision.
func (m *metrics) decided(vhost string, o route.Outcome, took time.Duration) {
	cs, ok := m.byVhost.Load(vhost)
	if !ok {
		cs, _ = m.byVhost.LoadOrCompute(vhost, func() *vhostCounters {
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
	m.latency.Observe(took.Seconds())
}

// setTable publishes the live table's generation and size.
func (m *metrics) setTable(s *snapshot) {
	m.generation.Set(float64(s.gen))
	m.configInfo.Reset()
	m.configInfo.WithLabelValues(strconv.FormatUint(s.gen, 10)).Set(1)
	if !s.loaded.IsZero() {
		m.lastLoad.Set(float64(s.loaded.UnixNano()) / 1e9)
	}
	m.vhosts.Set(float64(s.stats.Vhosts))
	m.routes.Set(float64(s.stats.Routes))
	m.endpoints.Set(float64(s.stats.Endpoints))
}

// serveMetrics listens on addr and serves /metrics until ctx is done.
func serveMetrics(ctx context.Context, addr string, m *metrics, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
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

package route

// Endpoint health: the active probe ("health"), passive ejection
// ("outlier") and the panic rule ("panic_threshold") of a route, or of a
// vhost for the routes that do not set their own and for its
// default_backends. route/ validates and compiles them; ghostd sends
// them with every answer (hp, ol, pn: docs/protocol.md); the shim builds
// Varnish probes from hp and keeps the outlier state per native backend,
// where the pick happens (docs/configuration.md, "Endpoint health").

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Bounds of the health keys (docs/configuration.md).
const (
	// MinProbeInterval is the floor of health.interval: every endpoint
	// of a route with a probe is polled by every warm VCL, so 1000
	// endpoints at the floor already cost 2000 probe requests a second.
	MinProbeInterval = 500 * time.Millisecond
	MaxProbeInterval = time.Hour
	MinProbeTimeout  = 10 * time.Millisecond
	// MaxProbeWindow is Varnish's: a probe keeps 64 results.
	MaxProbeWindow  = 64
	MaxProbePathLen = 1024

	MaxConsecutiveFailures = 1000
	MinEjectionTime        = 100 * time.Millisecond
	MaxEjectionTime        = 24 * time.Hour

	// DefaultPanicThreshold is Envoy's healthy_panic_threshold default.
	DefaultPanicThreshold = 50
)

// HealthCheck is an active probe, run by Varnish on the native backend of
// every endpoint it applies to (a struct vrt_backend_probe).
type HealthCheck struct {
	// ID identifies the probe's settings: the shim keys native backends
	// on endpoint and ID, so an endpoint keeps its backend (and the
	// probe's history) across reloads as long as ID does not change.
	// Never 0 (0 is "no probe").
	ID             uint32
	Path           string
	Host           string // the probe's Host header; "" = the endpoint's address
	Interval       time.Duration
	Timeout        time.Duration
	Window         uint
	Threshold      uint
	Initial        uint // good results a new backend starts with (= Threshold: healthy)
	ExpectedStatus int
}

// Outlier is passive ejection: an endpoint that fails ConsecutiveFailures
// fetches in a row (a 5xx response or no response at all) is left out for
// BaseEjection × the number of times it was ejected (at most
// MaxEjection), unless MaxEjectionPercent of the route's endpoints are
// ejected already (one may always be).
type Outlier struct {
	ConsecutiveFailures uint
	BaseEjection        time.Duration
	MaxEjection         time.Duration
	MaxEjectionPercent  uint
}

// healthJSON is "health".
type healthJSON struct {
	Path           *string `json:"path"`
	Host           *string `json:"host"`
	Interval       *string `json:"interval"`
	Timeout        *string `json:"timeout"`
	Window         *int64  `json:"window"`
	Threshold      *int64  `json:"threshold"`
	ExpectedStatus *int64  `json:"expected_status"`
}

// outlierJSON is "outlier".
type outlierJSON struct {
	ConsecutiveFailures *int64  `json:"consecutive_failures"`
	BaseEjectionTime    *string `json:"base_ejection_time"`
	MaxEjectionTime     *string `json:"max_ejection_time"`
	MaxEjectionPercent  *int64  `json:"max_ejection_percent"`
}

// healthRules is what a route (or a vhost, as defaults) says about
// endpoint health; set tells which of the three it set.
type healthRules struct {
	health   *HealthCheck
	outlier  *Outlier
	panic    int
	hasPanic bool
}

// inherit fills what r does not set from the vhost's defaults.
func (r *healthRules) inherit(def *healthRules) {
	if r.health == nil {
		r.health = def.health
	}
	if r.outlier == nil {
		r.outlier = def.outlier
	}
	if !r.hasPanic {
		r.panic, r.hasPanic = def.panic, def.hasPanic
	}
}

// compileHealth validates the three keys; errors name the field.
func compileHealth(hj *healthJSON, oj *outlierJSON, pj *int64) (healthRules, error) {
	var r healthRules
	var err error
	if hj != nil {
		if r.health, err = healthCheck(hj); err != nil {
			return r, err
		}
	}
	if oj != nil {
		if r.outlier, err = outlier(oj); err != nil {
			return r, err
		}
	}
	if pj != nil {
		if *pj < 0 || *pj > 100 {
			return r, fmt.Errorf("panic_threshold: %d out of range 0-100", *pj)
		}
		r.panic, r.hasPanic = int(*pj), true
	}
	return r, nil
}

func intField(field string, v *int64, def, lo, hi int64) (int64, error) {
	if v == nil {
		return def, nil
	}
	if *v < lo || *v > hi {
		return 0, fmt.Errorf("%s: %d out of range %d-%d", field, *v, lo, hi)
	}
	return *v, nil
}

func healthCheck(hj *healthJSON) (*HealthCheck, error) {
	h := &HealthCheck{Path: "/"}
	if hj.Path != nil {
		p := *hj.Path
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("health.path %q must start with \"/\"", p)
		}
		if len(p) > MaxProbePathLen {
			return nil, fmt.Errorf("health.path longer than %d bytes", MaxProbePathLen)
		}
		for i := 0; i < len(p); i++ {
			if p[i] <= ' ' || p[i] >= 0x7f {
				return nil, fmt.Errorf("health.path %q: byte %d is a space, a control character or not ASCII", p, i)
			}
		}
		h.Path = p
	}
	if hj.Host != nil {
		if why := checkHostname(*hj.Host); why != "" {
			return nil, fmt.Errorf("health.host %q %s", *hj.Host, why)
		}
		h.Host = *hj.Host
	}
	var err error
	if h.Interval, err = durationField("health.interval", hj.Interval, 5*time.Second, MinProbeInterval, MaxProbeInterval); err != nil {
		return nil, err
	}
	def := 2 * time.Second
	if def > h.Interval {
		def = h.Interval
	}
	if h.Timeout, err = durationField("health.timeout", hj.Timeout, def, MinProbeTimeout, MaxProbeInterval); err != nil {
		return nil, err
	}
	if h.Timeout > h.Interval {
		return nil, fmt.Errorf("health.timeout %s is longer than health.interval %s", fmtDuration(h.Timeout), fmtDuration(h.Interval))
	}
	w, err := intField("health.window", hj.Window, 8, 1, MaxProbeWindow)
	if err != nil {
		return nil, err
	}
	th, err := intField("health.threshold", hj.Threshold, min(3, w), 1, MaxProbeWindow)
	if err != nil {
		return nil, err
	}
	if th > w {
		return nil, fmt.Errorf("health.threshold %d is more than health.window %d", th, w)
	}
	x, err := intField("health.expected_status", hj.ExpectedStatus, 200, 100, 599)
	if err != nil {
		return nil, err
	}
	h.Window, h.Threshold, h.Initial, h.ExpectedStatus = uint(w), uint(th), uint(th), int(x)
	h.ID = h.id()
	return h, nil
}

// id hashes the probe's settings (FNV-1a, 32 bits, never 0).
func (h *HealthCheck) id() uint32 {
	f := fnv.New32a()
	fmt.Fprintf(f, "%s\x00%d\x00%d\x00%d\x00%d\x00%d\x00%d", h.Path,
		h.Interval.Milliseconds(), h.Timeout.Milliseconds(), h.Window,
		h.Threshold, h.Initial, h.ExpectedStatus)
	if h.Host != "" {
		fmt.Fprintf(f, "\x00%s", h.Host)
	}
	if v := f.Sum32(); v != 0 {
		return v
	}
	return 1
}

// IDString is the probe's ID as the shim shows it in backend names
// (ghost.<addr>:<port>~<id>): 8 hex digits.
func (h *HealthCheck) IDString() string {
	s := strconv.FormatUint(uint64(h.ID), 16)
	return strings.Repeat("0", 8-len(s)) + s
}

func outlier(oj *outlierJSON) (*Outlier, error) {
	n, err := intField("outlier.consecutive_failures", oj.ConsecutiveFailures, 5, 1, MaxConsecutiveFailures)
	if err != nil {
		return nil, err
	}
	o := &Outlier{ConsecutiveFailures: uint(n)}
	if o.BaseEjection, err = durationField("outlier.base_ejection_time", oj.BaseEjectionTime, 30*time.Second, MinEjectionTime, MaxEjectionTime); err != nil {
		return nil, err
	}
	def := max(300*time.Second, o.BaseEjection)
	if o.MaxEjection, err = durationField("outlier.max_ejection_time", oj.MaxEjectionTime, def, MinEjectionTime, MaxEjectionTime); err != nil {
		return nil, err
	}
	if o.MaxEjection < o.BaseEjection {
		return nil, fmt.Errorf("outlier.max_ejection_time %s is shorter than outlier.base_ejection_time %s", fmtDuration(o.MaxEjection), fmtDuration(o.BaseEjection))
	}
	p, err := intField("outlier.max_ejection_percent", oj.MaxEjectionPercent, 10, 0, 100)
	if err != nil {
		return nil, err
	}
	o.MaxEjectionPercent = uint(p)
	return o, nil
}

// String summarises the probe for operators (ghostd dump): "GET /healthz
// every 2s, timeout 1s, healthy with 3 of 5 answering 200 (id 0b371450)".
func (h *HealthCheck) String() string {
	host := ""
	if h.Host != "" {
		host = " Host " + h.Host
	}
	return fmt.Sprintf("GET %s%s every %s, timeout %s, healthy with %d of %d answering %d (id %s)",
		h.Path, host, fmtDuration(h.Interval), fmtDuration(h.Timeout), h.Threshold, h.Window,
		h.ExpectedStatus, h.IDString())
}

// String summarises the ejection rule: "5 failures in a row eject for
// 30s x n (at most 5m), at most 10% of the endpoints".
func (o *Outlier) String() string {
	return fmt.Sprintf("%d failures in a row eject for %s x n (at most %s), at most %d%% of the endpoints",
		o.ConsecutiveFailures, fmtDuration(o.BaseEjection), fmtDuration(o.MaxEjection), o.MaxEjectionPercent)
}

// probeRef is an endpoint under a probe: one native backend in the shim.
type probeRef struct {
	ap netip.AddrPort
	id uint32
}

// noteProbes records that groups' endpoints are probed by h.
func (b *builder) noteProbes(h *HealthCheck, groups []Group) {
	if h == nil {
		return
	}
	if b.probes == nil {
		b.probes = map[probeRef]struct{}{}
	}
	for _, g := range groups {
		for _, e := range g.Endpoints {
			a, _ := netip.ParseAddr(e.Address)
			b.probes[probeRef{netip.AddrPortFrom(a, e.Port), h.ID}] = struct{}{}
		}
	}
}

// ReferencesProbe reports whether a route of the table uses the endpoint
// under the probe id (0: without a probe, which the shim also uses for
// an endpoint a probe calls sick when the panic rule sends traffic to it:
// true whenever the endpoint is referenced at all).
func (t *Table) ReferencesProbe(e Endpoint, id uint32) bool {
	if id == 0 {
		return t.References(e)
	}
	if t == nil {
		return false
	}
	a, err := netip.ParseAddr(e.Address)
	if err != nil {
		return false
	}
	_, ok := t.probes[probeRef{netip.AddrPortFrom(a, e.Port), id}]
	return ok
}

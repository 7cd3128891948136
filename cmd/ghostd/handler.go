package main

import (
	"time"

	"github.com/varnish/ghost/protocol"
	"github.com/varnish/ghost/route"
	"github.com/varnish/ghost/route/ring"
)

// handler answers protocol requests from the live table.
type handler struct {
	l     *loader
	m     *metrics
	heavy *lane
}

var (
	_ protocol.Handler   = (*handler)(nil)
	_ protocol.Admitter  = (*handler)(nil)
	_ protocol.Ringer    = (*handler)(nil)
	_ protocol.Clusterer = (*handler)(nil)
)

// Ring returns the live table's consistent-hash ring of that ID.
func (h *handler) Ring(id uint64) (uint64, *ring.Ring) {
	s := h.l.snapshot()
	return s.gen, s.table.Ring(id)
}

// Cluster returns the live generation and cluster (nil: not clustered).
func (h *handler) Cluster() (uint64, *route.Cluster) {
	s := h.l.snapshot()
	return s.gen, s.cluster
}

// Generation returns the live table's generation.
func (h *handler) Generation() uint64 { return h.l.snapshot().gen }

// Route decides on the live table; the decision finishes on the table it
// started with even if a reload swaps in a new one meanwhile.
func (h *handler) Route(r *route.Request, d *route.Decision) uint64 {
	s := h.l.snapshot()
	t0 := time.Now()
	s.table.Decide(r, d)
	if s.cluster != nil {
		d.Shard = s.cluster.Version // on every answer: the shim learns it is clustered
	}
	h.m.decided(d.Vhost, d.RouteName, d.Outcome, time.Since(t0))
	return s.gen
}

// Admit runs expensive decisions (route.ScanCost above route.HeavyScan)
// in the heavy lane, shedding those that wait too long for it.
func (h *handler) Admit(r *route.Request) (held, ok bool) {
	if h.heavy == nil {
		return false, true
	}
	return h.heavy.admit(h.l.snapshot().table, r)
}

// Done ends an admitted expensive decision.
func (h *handler) Done() { h.heavy.done() }

// Reload reloads the config file, answering within wait when it is > 0.
func (h *handler) Reload(wait time.Duration) protocol.ReloadResult {
	return h.l.reloadWithin("socket", wait)
}

// Status describes the daemon.
func (h *handler) Status() protocol.Status { return h.l.status() }

// Live reports which of eps the live table no longer references (under
// their probe ids).
func (h *handler) Live(eps []route.Endpoint, probes []uint32, dead []int) ([]int, uint64) {
	s := h.l.snapshot()
	for i, e := range eps {
		if !s.table.ReferencesProbe(e, probes[i]) && !(s.cluster.Has(e) && (probes[i] == 0 || probes[i] == s.cluster.ProbeID())) {
			dead = append(dead, i)
		}
	}
	return dead, s.gen
}

package main

import (
	"runtime"
	"time"

	"github.com/varnish/ghost/route"
)

// heavyWait is how long an expensive decision waits for the heavy lane
// before it is shed (answered "busy", a 503 for that request): below the
// shim's default timeout (100 ms), so that the shim gets an answer rather
// than a timeout and ghostd never computes a decision nobody waits for.
const heavyWait = 50 * time.Millisecond

// lane admits decisions whose route.ScanCost is above route.HeavyScan
// (long inputs against regex routes) at most cap at a time; the others
// never wait. With cap = half the CPUs, however many expensive requests
// arrive, the rest of the CPUs stay for ordinary decisions: one vhost's
// regex traffic cannot starve decisions for the others.
type lane struct {
	tokens chan struct{}
}

func newLane() *lane {
	return &lane{tokens: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))}
}

// admit reports whether r is heavy (then Done must follow) and whether it
// may run.
func (ln *lane) admit(t *route.Table, r *route.Request) (held, ok bool) {
	if t.ScanCost(r) <= route.HeavyScan {
		return false, true
	}
	select {
	case ln.tokens <- struct{}{}:
		return true, true
	default:
	}
	tm := time.NewTimer(heavyWait)
	defer tm.Stop()
	select {
	case ln.tokens <- struct{}{}:
		return true, true
	case <-tm.C:
		return false, false
	}
}

func (ln *lane) done() { <-ln.tokens }

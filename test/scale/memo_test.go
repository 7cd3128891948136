package scale

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestMemo measures the memo at many distinct vhosts (docs/benchmarks.md,
// "Scale"): GHOST_SCALE_N vhosts all routed to one endpoint (one native
// backend, so that only the memo is measured), each asked once to fill the
// memo and then once more; the second pass's ghostd round trips per
// request is the miss ratio of a working set of N vhosts. Run for each
// memo size in GHOST_SCALE_MEMO (comma-separated, default "65536,524288").
func TestMemo(t *testing.T) {
	cfg := load(t)
	sizes := os.Getenv("GHOST_SCALE_MEMO")
	if sizes == "" {
		sizes = "65536,524288"
	}
	for _, f := range strings.Split(sizes, ",") {
		memo, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("GHOST_SCALE_MEMO: %v", err)
		}
		t.Run(fmt.Sprintf("memo=%d", memo), func(t *testing.T) { memoRun(t, cfg, memo) })
	}
}

func memoRun(t *testing.T, cfg settings, memo int) {
	n := cfg.n
	one := func(int) int { return 0 }
	s, err := StartStack(StackOpts{KeepAlive: true, InitArgs: fmt.Sprintf(", memo = %d", memo),
		Config: func(port int) []byte { return Config(n, 1, port, "", one) }})
	defer func() {
		if s != nil {
			s.Stop(t.Failed())
		}
	}()
	if err != nil {
		t.Fatal(err)
	}
	pass := func() (*Load, int64) {
		before := s.Counter("GHOST.ghostd_req")
		l := s.Drive(cfg.conc, func(k int) int {
			if k < n {
				return k
			}
			return -1
		}, one, nil)
		return l, s.Counter("GHOST.ghostd_req") - before
	}
	cold, coldReq := pass()
	warm, warmReq := pass()
	cfg.report(t, "memo %d slots, %d vhosts: cold pass %d ghostd calls (%v); warm pass %d ghostd calls = %.1f %% of requests (%v)",
		memo, n, coldReq, cold, warmReq, 100*float64(warmReq)/float64(max(warm.N, 1)), warm)
	// 503s are ghostd timeouts on a saturated machine (counted, reason
	// in VSL); anything else is a bug
	if cold.Errors > cold.Status503 || warm.Errors > warm.Status503 {
		t.Errorf("errors other than 503: cold %d (first %v), warm %d (first %v)",
			cold.Errors-cold.Status503, cold.FirstErr, warm.Errors-warm.Status503, warm.FirstErr)
	}
}

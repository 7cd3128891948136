package route

// Table is a compiled, immutable routing table. It is safe for concurrent
// use; a reload builds a new Table and swaps it in.
//
// PLACEHOLDER: the route-engine work replaces this file.
type Table struct{}

// Stats counts what a table holds.
type Stats struct {
	Vhosts    int
	Routes    int
	Endpoints int // distinct endpoints
}

// Parse parses, validates and compiles a ghost.json document. name (usually
// the file's base name) starts every error message.
func Parse(name string, data []byte) (*Table, error) { return &Table{}, nil }

// Empty returns a table with no vhosts: every request gets 404.
func Empty() *Table { return &Table{} }

// Stats returns the table's size.
func (t *Table) Stats() Stats { return Stats{} }

// References reports whether any route of the table uses the endpoint.
func (t *Table) References(e Endpoint) bool { return false }

// Decide computes the routing decision for r into d. d is overwritten; it
// may be reused between calls to avoid allocations.
func (t *Table) Decide(r *Request, d *Decision) {
	*d = Decision{Outcome: OutcomeNotFound, Status: 404, RouteIndex: RouteNone}
}

// Pick makes the weighted choice among d.Groups from u, a uniformly random
// 64-bit number: a group by weight (64-bit sums, weight 0 never chosen),
// then an endpoint uniformly inside it. ok is false when nothing can be
// picked.
func (d *Decision) Pick(u uint64) (group, endpoint int, ok bool) { return 0, 0, false }

package route

import (
	"crypto/sha256"
	"errors"
	"net/netip"
	"sort"

	"github.com/varnish/ghost/route/ring"
)

// Table is a compiled, immutable routing table. It is safe for concurrent
// use; a reload builds a new Table and swaps it in.
type Table struct {
	exact    *hostTable                    // lower-case hostname → vhost
	wild     *hostTable                    // ".suffix" (a "*.suffix" key without the "*") → vhost
	catchAll *vhost                        // the "*" key
	vhosts   []*vhost                      // sorted by key, in the host tables' slots
	refs     map[netip.AddrPort][]Endpoint // every referenced endpoint
	probes   map[probeRef]struct{}         // every endpoint under each of its probes
	stats    Stats

	passDefault bool // SetCacheDefault(true): routes without cache_policy pass
	policies    int  // routes with a cache_policy

	rings map[uint64]*ring.Ring // the routes' consistent-hash rings by ID

	secret []byte // the session tokens' key (Options.SessionSecret)
	shared bool   // some vhosts are the previous table's (Options.Prev)
	known  bool   // the document has no key Parse ignores (KnownKeysOnly)
}

// Stats counts what a table holds.
type Stats struct {
	Vhosts    int
	Routes    int
	Endpoints int // distinct endpoints
}

// vhost is one compiled vhost. Its routes are stored by value in one
// array, grouped into buckets: the Exact routes of one path, the PathPrefix
// routes of one prefix, the regex routes, the "/" routes. Each bucket is in
// precedence order, so the first route of a bucket whose conditions hold
// is that bucket's winner. Decide visits only buckets whose path can match,
// in precedence order, and touches few cache lines and pages: the vhost's
// lookup key, bucket keys, bucket records and matcher strings share one
// string, small vhosts are scanned linearly, and only vhosts with many
// paths use hash maps.
type vhost struct {
	norm string // lookup key: lower-case hostname, ".suffix" or "*"
	hash uint64 // hash of norm in its hostTable
	key  string // the key as written in the file

	routes []croute // every route of the file, grouped by bucket
	// arena holds norm, the bucket keys, the matcher strings and, from
	// recBase, one 16-byte record per bucket: nExact Exact buckets, then
	// nPrefix PathPrefix buckets, longest key first (see ent).
	arena           string
	recBase         int32
	nExact, nPrefix int32
	// known: its value has no key Parse ignores (vhostDecoder's fast
	// path took it, which knows only keys Parse reads)
	known       bool
	exactM      map[string]int32 // large vhosts: key → bucket number
	prefM       map[string]int32 // large vhosts: key → bucket number
	maxPrefix   int
	regex, rest span    // RegularExpression routes; PathPrefix "/" and no-path routes
	def         *croute // default_backends, nil when absent

	ordered []*croute // every route (default last) in precedence order
	deps    Deps
	scope   scopeIndex

	// unpicked are the endpoints the vhost lists with weight 0 (no
	// group holds them), nil when none: the table references them too.
	unpicked []Endpoint
	// src is the SHA-256 of the vhost's value in the file it was
	// compiled from (zero when not known): a later generation whose value
	// is the same adopts this vhost (see reuse.go).
	src [sha256.Size]byte

	// for ScanCost: header names read by RegularExpression header
	// matchers (one entry per matcher), and the number of
	// RegularExpression query matchers
	rxHeaders []string
	rxQueries int
}

// ent returns bucket i: its key (the Exact value, or the PathPrefix value
// without one trailing "/") and its routes[lo:hi].
func (vh *vhost) ent(i int32) (key string, lo, hi int32) {
	a, p := vh.arena, int(vh.recBase)+16*int(i)
	off, n := le32(a, p), le32(a, p+4)
	return a[off : off+n], int32(le32(a, p+8)), int32(le32(a, p+12))
}

// entKeyLen returns the key length of bucket i without touching the key.
func (vh *vhost) entKeyLen(i int32) int {
	return int(le32(vh.arena, int(vh.recBase)+16*int(i)+4))
}

func le32(s string, p int) uint32 {
	_ = s[p+3]
	return uint32(s[p]) | uint32(s[p+1])<<8 | uint32(s[p+2])<<16 | uint32(s[p+3])<<24
}

// span is a range of vhost.routes.
type span struct{ lo, hi int32 }

// smallVhost is the largest number of Exact (or PathPrefix) buckets that
// are scanned linearly rather than looked up in a map.
const smallVhost = 32

// pathKind is the class of a route's path condition, in precedence order.
type pathKind uint8

const (
	pathExact pathKind = iota
	pathPrefix
	pathRegex
	pathAll // PathPrefix "/" or no path_match
)

// croute is one compiled route.
type croute struct {
	index int // position in the vhost's routes list, or RouteDefault
	name  string

	kind   pathKind
	value  string // configured path value (Exact, PathPrefix, regex source)
	prefix string // PathPrefix: value without one trailing "/" ("/" → "")
	re     *regex

	method    string
	headers   []headerMatch // first entry per name only
	query     []queryMatch  // first entry per name only
	listeners []string

	priority  int64
	ruleIndex int64

	groups []Group // weight-0 and empty groups left out; empty = 500

	reqOps   *HeaderOps
	respOps  *HeaderOps
	rewrite  *urlRewrite
	redirect *redirect
	cors     *corsFilter // nil: no cors filter

	uncacheable string       // why a fetched response must not be cached
	cache       *CachePolicy // nil: no cache_policy
	health      healthRules  // with the vhost's defaults filled in

	balancer *Balancer // nil: weighted random
	session  *Session  // nil: no session persistence
	timeouts *Timeouts // nil: none
	retry    *Retry    // nil: none
}

type headerMatch struct {
	name  string // lower case
	value string
	re    *regex // nil for Exact
}

type queryMatch struct {
	name  string
	value string
	re    *regex // nil for Exact
}

type pathModKind uint8

const (
	modNone pathModKind = iota
	modFull
	modPrefix
)

type urlRewrite struct {
	hostname string
	mod      pathModKind
	value    string
	edit     *PathEdit // modPrefix: how the new path derives from the request's
}

type redirect struct {
	scheme   string // "" = the request's
	hostname string // "" = the request's
	port     int    // 0 = per docs/routing.md, "Redirects"
	mod      pathModKind
	value    string
	status   int
	edit     *PathEdit // modNone, modPrefix: how the path derives from the request's
}

// Parse parses, validates and compiles a ghost.json document. name (usually
// the file's base name) starts every error message. It is ParseOptions
// with the zero Options.
//
// A document of the usual shape is decoded one vhost at a time (see
// parseStream), so that a large reload holds the file, the new table and
// one decoded vhost rather than the decoded form of the whole file; any
// other document is decoded whole first. Both give the same table or the
// same error.
//
// An error message is at most MaxErrorLen bytes (see clipError).
func Parse(name string, data []byte) (*Table, error) {
	return ParseOptions(name, data, Options{})
}

// Options are the settings a table is compiled under besides the file.
type Options struct {
	// CachePass: routes without cache_policy pass (SetCacheDefault).
	CachePass bool
	// SessionSecret keys the session tokens (SetSessionSecret).
	SessionSecret []byte
	// Prev, when not nil, is the table the new one replaces. A vhost
	// whose key and value (byte for byte) are those Prev's vhost was
	// compiled from, under the same SessionSecret, is not compiled
	// again: the new table shares Prev's compiled vhost, which is the
	// one it would compile (reuse.go). Prev is not changed.
	Prev *Table
	// Release, when not nil, is called while a document of the usual
	// shape compiles (see Parse), from several goroutines at once, with
	// stretches [lo, hi) of the document that the compile will not read
	// again: the caller may then drop their content (ghostd hands a
	// large file's pages back to the OS behind the compile, so that the
	// file and the new table are not both in memory). Such a document
	// that does not decode is not read again for the error message: the
	// error is then ErrReleased, and the caller parses the document again,
	// without Release, for the message.
	Release func(lo, hi int)
	// Start, when not nil, is called once before anything compiles: for a
	// document of the usual shape, after the scan that finds where its
	// vhosts lie (so that the caller can do something else meanwhile:
	// ghostd hashes the file). An error it returns is ParseOptions' error,
	// and nothing is compiled. Release is not called before Start returns.
	Start func() error

	begun bool // begin was called: Start, and Release may have been
}

// begin is called before anything compiles; it calls o.Start, once.
func (o *Options) begin() error {
	if o.begun {
		return nil
	}
	o.begun = true
	if o.Start == nil {
		return nil
	}
	return o.Start()
}

// ErrReleased is ParseOptions' error for a document that does not decode
// when Options.Release may have been called: the document is no longer
// whole, and its error message needs all of it (Options.Release).
var ErrReleased = errors.New("the document does not decode; parse it again without Options.Release for the message")

// ParseOptions is Parse under o.
func ParseOptions(name string, data []byte, o Options) (*Table, error) {
	t, err := parse(name, data, &o)
	return t, clipError(err)
}

func parse(name string, data []byte, o *Options) (*Table, error) {
	t, res, err := parseStream(name, data, o)
	if res == streamDone {
		return t, err
	}
	if res == streamInvalid && o.Release != nil && o.begun {
		return nil, ErrReleased
	}
	if err := o.begin(); err != nil {
		return nil, err
	}
	f, err := decodeFile(name, data, res == streamInvalid)
	if err != nil {
		return nil, err
	}
	return compile(name, f, o)
}

// KnownKeysOnly reports whether the document t was compiled from is known
// to have no key that Parse ignores, so that UnknownKeyPositions would
// find none: the streamed compile knows it of most files (every vhost
// decoded by its fast path, which reads known keys only, and no other
// top-level key than "version", "vhosts" and "default"). False means
// that the document may have such keys.
func (t *Table) KnownKeysOnly() bool { return t.known }

// Empty returns a table with no vhosts: every request gets 404.
func Empty() *Table {
	return &Table{exact: newHostTable(0), wild: newHostTable(0), refs: map[netip.AddrPort][]Endpoint{}}
}

// Stats returns the table's size.
func (t *Table) Stats() Stats {
	if t == nil {
		return Stats{}
	}
	return t.stats
}

// References reports whether any route of the table uses the endpoint.
// Addresses are compared as IP addresses ("::1" and "0::1" are the same).
func (t *Table) References(e Endpoint) bool {
	if t == nil {
		return false
	}
	a, err := netip.ParseAddr(e.Address)
	if err != nil {
		return false
	}
	_, ok := t.refs[netip.AddrPortFrom(a, e.Port)]
	return ok
}

// Vhosts returns the table's vhost keys as written in the file, sorted.
func (t *Table) Vhosts() []string {
	if t == nil {
		return nil
	}
	out := make([]string, len(t.vhosts))
	for i, v := range t.vhosts {
		out[i] = v.key
	}
	return out
}

// HasVhost reports whether the table has a vhost of key (as written in
// the file), without Vhosts' copy of every key.
func (t *Table) HasVhost(key string) bool {
	if t == nil {
		return false
	}
	i := sort.Search(len(t.vhosts), func(i int) bool { return t.vhosts[i].key >= key })
	return i < len(t.vhosts) && t.vhosts[i].key == key
}

// RouteNames returns the distinct non-empty route_name values of the
// table, sorted.
func (t *Table) RouteNames() []string {
	if t == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, vh := range t.vhosts {
		for i := range vh.routes {
			if n := vh.routes[i].name; n != "" && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	sort.Strings(out)
	return out
}

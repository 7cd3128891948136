// Package route holds everything ghostd knows about routing: the ghost.json
// (version 2) schema, its validation, the compiled immutable routing table,
// Gateway API HTTPRoute matching and precedence, weighted selection and the
// filter decisions. It is pure Go and does no I/O.
package route

// Request is what a routing decision is computed from.
type Request struct {
	Host    string   // raw Host header value ("" when absent)
	Method  string   // the client's method (HEAD stays HEAD)
	URL     string   // raw request target: path plus optional "?query"
	Headers []Header // every request header line, in order
	Socket  string   // listener socket name (Varnish local.socket), "" if unknown
	HTTPS   bool     // the request came over TLS (per a trusted front)
}

// Header is one request header line.
type Header struct {
	Name  string
	Value string
}

// Outcome is what a decision tells the data plane to do.
type Outcome uint8

// Outcomes of a decision.
const (
	OutcomeBackend    Outcome = iota // fetch from one of Decision.Groups
	OutcomeNotFound                  // 404 "no route"
	OutcomeNoBackends                // 500 "no backends available"
	OutcomeRedirect                  // Decision.Status with Location
)

// Route index values that do not name a route of the file.
const (
	RouteDefault = -1 // the vhost's default_backends
	RouteNone    = -2 // no route matched (or no vhost)
)

// Endpoint is one upstream address (an IP literal) and port.
type Endpoint struct {
	Address string
	Port    uint16
}

// Group is a weighted set of equivalent endpoints. A route written with
// per-endpoint "backends" compiles to one group per endpoint.
type Group struct {
	Weight    uint64
	Endpoints []Endpoint
}

// HeaderOps is a RequestHeaderModifier or ResponseHeaderModifier.
type HeaderOps struct {
	Set    []Header
	Add    []Header
	Remove []string
}

// Deps says which request inputs a decision depended on (besides the raw
// Host header), so that a data plane may reuse it for requests that agree
// on exactly those inputs under the same table generation.
type Deps struct {
	Path    bool
	Method  bool
	Query   bool
	Socket  bool
	HTTPS   bool
	Headers []string // lower-case header names routes match on
	// HeaderValues, when not nil, is parallel to Headers: the values a
	// header's Exact matches compare with (the lines of a name joined
	// with ","), so that the decision depends on the header only through
	// which one it equals, if any; nil for a header a RegularExpression
	// match reads (its raw value is the input).
	HeaderValues [][]string
	// QueryValues, when Query is true and every query match of the vhost
	// is Exact: the parameters and values they compare with (the first
	// "name=value" pair of a name counts), so that the decision depends
	// on the query only through which value each parameter has, if any.
	QueryValues []ParamValues
	// ScopeLens are the scope lengths decisions of this vhost may declare
	// (Decision.Scope), ascending; nil when every decision is for its
	// own path only (RegularExpression path routes).
	ScopeLens []int
	// CacheHeaders are the other request headers the cache decision
	// (Decision.Cache) reads: Authorization and bypass_headers names.
	// They key reuse like Headers, but are not routed on (no Vary).
	CacheHeaders []string
}

// Decision is the result of Table.Decide. Slices and pointers in it are
// shared with the table and must be treated as read-only.
type Decision struct {
	Outcome    Outcome
	Status     int    // 200, 404, 500 or the redirect status
	Vhost      string // selected vhost key, "" when none
	RouteIndex int    // index in the vhost's routes list, RouteDefault or RouteNone
	RouteName  string

	Groups []Group // candidates, weight-0 groups left out

	RequestHeaders  *HeaderOps // nil when none
	ResponseHeaders *HeaderOps // nil when none
	NewPath         string     // URLRewrite: new path ("" = unchanged); query kept by the applier
	NewHost         string     // URLRewrite: new Host header ("" = unchanged)

	RedirectBase string // redirect: scheme://host[:port]path, without the query
	Query        string // the request's raw query including the leading "?", "" when none

	// Scope: every request whose path starts with the first Scope bytes
	// of this one, and that agrees on the other inputs in Deps, gets this
	// decision (with NewPath and RedirectBase's path recomputed by
	// PathEdit); ScopeExact: only requests with this very path.
	Scope int
	// PathEdit, when not nil, is how NewPath (a URLRewrite) or the path at
	// the end of RedirectBase was computed from the request's path.
	PathEdit *PathEdit

	// Reason is the reason phrase of Status ("OK", "no route", "no
	// backends available", the redirect's standard phrase); Body the body
	// of the response a data plane makes itself for a decision that is
	// not a fetch ("" for redirects and fetches).
	Reason string
	Body   string
	// Uncacheable says why a fetched response must not be cached ("" when
	// routing does not forbid it): see uncacheable.
	Uncacheable string

	Deps Deps

	// Cache is what the data plane does before the cache lookup, and
	// Policy the route's cache_policy (nil when it has none). Both are set
	// for every outcome; only OutcomeBackend requests reach a backend.
	Cache  CacheMode
	Policy *CachePolicy

	// Endpoint health (OutcomeBackend only; route/health.go): the probe
	// and the ejection rule of the route's endpoints (nil when none),
	// and, when either is set, the panic threshold in percent: below
	// that share of healthy endpoints the pick ignores health (Select).
	Health  *HealthCheck
	Outlier *Outlier
	Panic   int
	// Balancer, when not nil, chooses the endpoint among Groups by
	// consistent hashing instead of weight alone; Session, when not
	// nil, keeps a client on the endpoint its session token names.
	// Both are set for OutcomeBackend only.
	Balancer *Balancer
	Session  *Session
	// Timeouts and Retry are the route's "timeouts" and "retry" (nil when
	// it has none), set only for OutcomeBackend: the data plane bounds
	// and retries the fetch with them.
	Timeouts *Timeouts
	Retry    *Retry
	// Shard, when not 0, is the version of the cluster (Cluster.Version)
	// the node shards its cache over: the owner of a CacheLookup
	// request's key serves it. Set by ghostd (on every decision of a
	// clustered node), not by Decide.
	Shard uint64

	// CORS is the route's cors filter (nil when it has none), for every
	// outcome: a preflight is answered whatever the route would do.
	CORS *CORS
}

// CacheMode is the decision made before the cache lookup (vcl_recv).
type CacheMode uint8

// Cache modes.
const (
	// CacheOrigin: the route has no cache_policy and ghostd runs with
	// -cache-default origin: Varnish's own rules decide (the builtin VCL
	// and the origin's Cache-Control), as without ghost.
	CacheOrigin CacheMode = iota
	// CachePass: never served from nor stored in the cache (a bypass
	// header matched, a method other than GET/HEAD, a request with
	// Authorization, or no cache_policy under -cache-default pass).
	CachePass
	// CacheLookup: look the request up under the policy's cache key and
	// store the response with its TTLs. The builtin VCL's "Cookie or
	// Authorization → pass" rule does not apply: the policy's
	// bypass_headers say what is passed (Authorization always is).
	CacheLookup
)

// String returns "origin", "pass" or "lookup".
func (m CacheMode) String() string {
	switch m {
	case CachePass:
		return "pass"
	case CacheLookup:
		return "lookup"
	}
	return "origin"
}

// CachePolicy is a route's compiled cache_policy. Durations are whole
// seconds; -1 means "not set".
type CachePolicy struct {
	TTL    int64 // default_ttl_seconds or forced_ttl_seconds, -1 when neither
	Forced bool  // TTL is forced_ttl_seconds: it overrides the origin
	Grace  int64 // beresp.grace, -1 = Varnish's default_grace
	Keep   int64 // beresp.keep, -1 = Varnish's default_keep

	// KeyHeaders are request headers (lower case) whose values join the
	// cache key; an absent header differs from an empty one.
	KeyHeaders []string
	// QueryInclude (allowlist) or QueryExclude (denylist) normalise the
	// query in the cache key (see CacheURL); at most one is set.
	QueryInclude []string
	QueryExclude []string

	bypass []bypassMatch
}

type bypassMatch struct {
	name string // lower case
	re   *regex // nil: presence is enough
}

// Location returns the complete redirect Location header value.
func (d *Decision) Location() string { return d.RedirectBase + d.Query }

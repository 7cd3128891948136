package route

// The ghost.json (version 2) schema as the varnish/gateway chaperone writes
// it. Every field is optional at the JSON level: JSON null and absence are
// the same (pointers and slices stay nil), unknown keys are ignored, and
// the validate*.go files decide what is required. These types are the one
// statement of the schema: UnknownKeys derives the keys it knows from their
// json tags.

type fileJSON struct {
	Version *int64               `json:"version"`
	Vhosts  map[string]vhostJSON `json:"vhosts"`
	// "default" (written by some chaperones) is deliberately not decoded.
}

type vhostJSON struct {
	Routes          []routeJSON   `json:"routes"`
	DefaultBackends []backendJSON `json:"default_backends"`
	// Endpoint health for the routes that do not set their own and for
	// default_backends (route/health.go).
	Health         *healthJSON  `json:"health"`
	Outlier        *outlierJSON `json:"outlier"`
	PanicThreshold *int64       `json:"panic_threshold"`
}

type routeJSON struct {
	PathMatch     *pathMatchJSON   `json:"path_match"`
	Method        *string          `json:"method"`
	Headers       []matchJSON      `json:"headers"`
	QueryParams   []matchJSON      `json:"query_params"`
	Filters       *filtersJSON     `json:"filters"`
	Backends      []backendJSON    `json:"backends"`
	BackendGroups []groupJSON      `json:"backend_groups"`
	Priority      int64            `json:"priority"`
	RuleIndex     int64            `json:"rule_index"`
	Listeners     []string         `json:"listeners"`
	RouteName     string           `json:"route_name"`
	CachePolicy   *cachePolicyJSON `json:"cache_policy"`
	// Endpoint health of the route's backends (route/health.go).
	Health         *healthJSON  `json:"health"`
	Outlier        *outlierJSON `json:"outlier"`
	PanicThreshold *int64       `json:"panic_threshold"`

	LoadBalancer       *loadBalancerJSON `json:"load_balancer"`
	SessionPersistence *sessionJSON      `json:"session_persistence"`
	Timeouts           *timeoutsJSON     `json:"timeouts"` // ghost's own (resilience.go)
	Retry              *retryJSON        `json:"retry"`    // ghost's own (resilience.go)
}

// loadBalancerJSON is a route's "load_balancer" (ghost's own key): how
// an endpoint is chosen among the route's backends.
type loadBalancerJSON struct {
	Type     *string  `json:"type"`
	Key      *string  `json:"key"`
	Fallback []string `json:"fallback"`
}

// sessionJSON is a route's "session_persistence" (Gateway API GEP-1619).
type sessionJSON struct {
	Type            *string `json:"type"`
	Name            *string `json:"name"`
	AbsoluteTimeout *string `json:"absolute_timeout"`
	IdleTimeout     *string `json:"idle_timeout"`
}

// cachePolicyJSON is a route's "cache_policy" as the varnish/gateway
// chaperone (v0.23) writes it from a VarnishCachePolicy.
type cachePolicyJSON struct {
	DefaultTTLSeconds *int64        `json:"default_ttl_seconds"`
	ForcedTTLSeconds  *int64        `json:"forced_ttl_seconds"`
	GraceSeconds      *int64        `json:"grace_seconds"`
	KeepSeconds       *int64        `json:"keep_seconds"`
	CacheKey          *cacheKeyJSON `json:"cache_key"`
	BypassHeaders     []bypassJSON  `json:"bypass_headers"`
}

type cacheKeyJSON struct {
	Headers            []string `json:"headers"`
	QueryParamsInclude []string `json:"query_params_include"`
	QueryParamsExclude []string `json:"query_params_exclude"`
}

type bypassJSON struct {
	Name       *string `json:"name"`
	ValueRegex *string `json:"value_regex"`
}

type pathMatchJSON struct {
	Type  *string `json:"type"`
	Value *string `json:"value"`
}

type matchJSON struct {
	Name  *string `json:"name"`
	Value *string `json:"value"`
	Type  *string `json:"type"`
}

type filtersJSON struct {
	RequestHeaderModifier  *headerModJSON  `json:"request_header_modifier"`
	ResponseHeaderModifier *headerModJSON  `json:"response_header_modifier"`
	URLRewrite             *urlRewriteJSON `json:"url_rewrite"`
	RequestRedirect        *redirectJSON   `json:"request_redirect"`
	CORS                   *corsJSON       `json:"cors"`
}

// corsJSON is a route's "filters.cors": the Gateway API HTTPCORSFilter
// (v1.5) with ghost.json's snake_case names.
type corsJSON struct {
	AllowOrigins     []string `json:"allow_origins"`
	AllowMethods     []string `json:"allow_methods"`
	AllowHeaders     []string `json:"allow_headers"`
	ExposeHeaders    []string `json:"expose_headers"`
	MaxAge           *int64   `json:"max_age"`
	AllowCredentials *bool    `json:"allow_credentials"`
}

type headerKVJSON struct {
	Name  *string `json:"name"`
	Value *string `json:"value"`
}

type headerModJSON struct {
	Set    []headerKVJSON `json:"set"`
	Add    []headerKVJSON `json:"add"`
	Remove []string       `json:"remove"`
}

// pathModJSON is what url_rewrite and request_redirect share: a new
// hostname and a path modifier. Embedded, its fields are read as fields of
// the object that embeds it.
type pathModJSON struct {
	Hostname           *string `json:"hostname"`
	PathType           *string `json:"path_type"`
	ReplaceFullPath    *string `json:"replace_full_path"`
	ReplacePrefixMatch *string `json:"replace_prefix_match"`
}

type urlRewriteJSON struct {
	pathModJSON
}

type redirectJSON struct {
	pathModJSON
	Scheme     *string `json:"scheme"`
	Port       *int64  `json:"port"`
	StatusCode *int64  `json:"status_code"`
}

// backendJSON is one entry of "backends" or "default_backends". An entry of
// "default_backends" may instead be a group (it then has "backends").
type backendJSON struct {
	Address  string         `json:"address"`
	Port     *int64         `json:"port"` // required for an endpoint entry
	Weight   *int64         `json:"weight"`
	Backends []endpointJSON `json:"backends"` // group shape (default_backends only)
}

// groupJSON is one entry of "backend_groups".
type groupJSON struct {
	Weight   *int64         `json:"weight"`
	Backends []endpointJSON `json:"backends"`
}

// endpointJSON is one endpoint inside a group. Its weight is validated but
// not used: endpoints inside a group are equal.
type endpointJSON struct {
	Address string `json:"address"`
	Port    *int64 `json:"port"`
	Weight  *int64 `json:"weight"`
}

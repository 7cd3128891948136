package route

import (
	"slices"
	"strings"
)

// Path scopes: how much of the path a decision depends on.
//
// In a vhost without RegularExpression path matches, the path decides which
// route wins only through which Exact values it equals and which PathPrefix
// values it matches. Call the strings a path is compared with the vhost's
// scope keys: every Exact value E, and every PathPrefix key K (the value
// without one trailing "/") as T = K+"/" (a path matches K iff it equals K
// or starts with T). For a path P and a prefix S of P, every path that
// starts with S agrees with P on a key when
//
//   - the key is a PathPrefix T that S starts with (every such path
//     matches), or
//   - S and the key differ somewhere in their common length (none equals or
//     extends the key), or S starts with the key and is longer (for an
//     Exact key: none equals it).
//
// That is: len(S) ≥ lcp(P,T)+1 for every key that is not a PathPrefix
// prefix of P, and len(S) ≥ len(T) for every PathPrefix key that is; and
// when P itself is a prefix of a key (lcp = len(P)) without being that
// PathPrefix key, no proper scope exists and the decision is for P alone.
// The route, its filters and the path operation a rewrite or redirect
// applies (see PathEdit) are then the same for every path in the scope,
// whatever the other inputs are.
//
// A data plane looks a scope up by trying lengths, so each vhost declares
// the few lengths its scopes can have (Deps.ScopeLens, at most
// MaxScopeLens): the lengths of its PathPrefix keys T, the length+1 of its
// Exact keys and of the common prefix of neighbouring keys (where paths
// branch off), and 1. A needed length is rounded up to the next declared
// one (a longer scope is always valid) as long as it fits in the path, and
// otherwise the decision is for P alone (ScopeExact).
//
// A vhost with a RegularExpression path match decides every path alone.

// ScopeExact is Decision.Scope for a decision that holds for its own path
// only.
const ScopeExact = -1

// MaxScopeLens bounds the scope lengths a vhost declares, and so the memo
// probes a data plane makes for a request.
const MaxScopeLens = 16

// PathEdit is a path operation: the new path is With followed by the
// request path after its first Cut bytes, or "/" when that is empty.
type PathEdit struct {
	Cut  int
	With string
}

// Apply returns the edited path.
func (e *PathEdit) Apply(path string) string {
	out := e.With + path[min(e.Cut, len(path)):]
	if out == "" {
		return "/"
	}
	return out
}

// keepPath is the PathEdit of a redirect that keeps the request's path.
var keepPath = &PathEdit{}

// scopeKey is one string a vhost compares paths with.
type scopeKey struct {
	s      string
	exact  bool // some Exact route has the value s
	prefix bool // some PathPrefix route has the key s without its last "/"
}

// scopeIndex holds what a vhost needs to compute scopes.
type scopeIndex struct {
	whole bool       // RegularExpression path routes: every path alone
	keys  []scopeKey // sorted by s, one entry per string
	lens  []int      // declared scope lengths, ascending
}

// newScopeIndex builds the scope index of a vhost from its routes.
func newScopeIndex(routes []*croute, scr *scratch) scopeIndex {
	x := scopeIndex{keys: make([]scopeKey, 0, len(routes))}
	for _, r := range routes {
		switch r.kind {
		case pathRegex:
			return scopeIndex{whole: true}
		case pathExact:
			x.keys = append(x.keys, scopeKey{s: r.value, exact: true})
		case pathPrefix:
			x.keys = append(x.keys, scopeKey{s: r.prefix + "/", prefix: true})
		}
	}
	slices.SortFunc(x.keys, func(a, b scopeKey) int { return strings.Compare(a.s, b.s) })
	keys := x.keys[:0]
	for _, k := range x.keys {
		if n := len(keys); n > 0 && keys[n-1].s == k.s {
			keys[n-1].exact = keys[n-1].exact || k.exact
			keys[n-1].prefix = keys[n-1].prefix || k.prefix
			continue
		}
		keys = append(keys, k)
	}
	x.keys = slices.Clip(keys)
	x.lens = scopeLens(x.keys, scr)
	return x
}

// scopeLens chooses the declared lengths: every PathPrefix key length
// first (what traffic under a routed prefix needs), then Exact lengths+1
// and branch points+1, shortest first, then 1; at most MaxScopeLens.
func scopeLens(keys []scopeKey, scr *scratch) []int {
	if len(keys) == 0 {
		return []int{0}
	}
	first, second := scr.first[:0], scr.second[:0]
	defer func() { scr.first, scr.second = first[:0], second[:0] }()
	for i, k := range keys {
		if k.prefix {
			first = append(first, len(k.s))
		}
		if k.exact {
			second = append(second, len(k.s)+1)
		}
		if i+1 < len(keys) {
			second = append(second, lcp(k.s, keys[i+1].s)+1)
		}
	}
	second = append(second, 1)
	slices.Sort(first)
	slices.Sort(second)
	out := make([]int, 0, min(MaxScopeLens, len(first)+len(second)))
	for _, list := range [2][]int{first, second} {
		for _, l := range list {
			if len(out) == MaxScopeLens {
				break
			}
			if !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	slices.Sort(out)
	return out
}

// setPathEdits gives each rewrite and redirect the PathEdit that computes
// its path from the request's (nil when the path is fixed).
func setPathEdits(routes []*croute) {
	for _, r := range routes {
		if rw := r.rewrite; rw != nil && rw.mod == modPrefix {
			rw.edit = &PathEdit{Cut: len(r.prefix), With: strings.TrimSuffix(rw.value, "/")}
		}
		if x := r.redirect; x != nil {
			switch x.mod {
			case modNone:
				x.edit = keepPath
			case modPrefix:
				x.edit = &PathEdit{Cut: len(r.prefix), With: strings.TrimSuffix(x.value, "/")}
			}
		}
	}
}

// lcp returns the length of the longest common prefix of a and b.
func lcp(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// need returns the shortest scope length of path with respect to key k,
// or ScopeExact when no proper scope exists.
func (k *scopeKey) need(path string) int {
	c := lcp(path, k.s)
	if k.prefix && !k.exact && c == len(k.s) {
		return c // path starts with T: every extension matches
	}
	if c == len(path) {
		return ScopeExact // path is a prefix of the key (or equals an Exact)
	}
	return c + 1
}

// of returns the scope of path: a declared length L such that every path
// starting with path[:L] decides like path, or ScopeExact.
//
// Only the keys next to path in sorted order need to be looked at: among
// the keys below path, the greatest has the longest common prefix with it
// (and a shorter key that is a prefix of path is a prefix of that one
// too); among the keys from path on, the first has, unless it is path
// itself, in which case the one after it may extend path.
func (x *scopeIndex) of(path string) int {
	if x.whole {
		return ScopeExact
	}
	keys := x.keys
	lo, hi := 0, len(keys)
	for lo < hi { // first key >= path
		m := int(uint(lo+hi) >> 1)
		if keys[m].s < path {
			lo = m + 1
		} else {
			hi = m
		}
	}
	need := 0
	try := func(i int) bool {
		if i < 0 || i >= len(keys) {
			return true
		}
		n := keys[i].need(path)
		if n == ScopeExact {
			return false
		}
		need = max(need, n)
		return true
	}
	if !try(lo-1) || !try(lo) {
		return ScopeExact
	}
	if lo < len(keys) && keys[lo].s == path && !try(lo+1) {
		return ScopeExact
	}
	for _, l := range x.lens {
		if l >= need {
			if l > len(path) {
				break
			}
			return l
		}
	}
	return ScopeExact
}

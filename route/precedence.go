package route

// comparePrecedence orders the routes of a vhost by Gateway API HTTPRoute
// precedence (docs/routing.md, "Precedence"): the route that wins when
// several match comes first. In order, a route wins by
//
//  1. its path kind: Exact, then PathPrefix, then RegularExpression, then
//     no path condition (or PathPrefix "/");
//  2. for two PathPrefix routes, the longer prefix;
//  3. having a method condition;
//  4. more header conditions;
//  5. more query parameter conditions;
//  6. a higher priority (the controller encodes the Gateway API's
//     oldest-route and name tie-breaks in it);
//  7. a lower rule_index (the earlier rule of the same HTTPRoute);
//  8. its position in the file.
//
// The order is total: a file whose routes are listed in any order routes
// identically.
func comparePrecedence(a, b *croute) int {
	if a.kind != b.kind {
		return int(a.kind) - int(b.kind)
	}
	if a.kind == pathPrefix && len(a.value) != len(b.value) {
		return len(b.value) - len(a.value)
	}
	if (a.method != "") != (b.method != "") {
		if a.method != "" {
			return -1
		}
		return 1
	}
	if len(a.headers) != len(b.headers) {
		return len(b.headers) - len(a.headers)
	}
	if len(a.query) != len(b.query) {
		return len(b.query) - len(a.query)
	}
	if a.priority != b.priority {
		if a.priority > b.priority {
			return -1
		}
		return 1
	}
	if a.ruleIndex != b.ruleIndex {
		if a.ruleIndex < b.ruleIndex {
			return -1
		}
		return 1
	}
	return a.index - b.index
}

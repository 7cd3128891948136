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
	c, _ := precedence(a, b)
	return c
}

// precedence is comparePrecedence that also names the rule that decided,
// for ghostd route's explanation.
func precedence(a, b *croute) (int, string) {
	if a.kind != b.kind {
		return int(a.kind) - int(b.kind), "path match type: Exact, then PathPrefix, then RegularExpression, then PathPrefix \"/\" (or none)"
	}
	if a.kind == pathPrefix && len(a.value) != len(b.value) {
		return len(b.value) - len(a.value), "longer PathPrefix value"
	}
	if (a.method != "") != (b.method != "") {
		if a.method != "" {
			return -1, "a method match"
		}
		return 1, "a method match"
	}
	if len(a.headers) != len(b.headers) {
		return len(b.headers) - len(a.headers), "more header matches"
	}
	if len(a.query) != len(b.query) {
		return len(b.query) - len(a.query), "more query param matches"
	}
	if a.priority != b.priority {
		if a.priority > b.priority {
			return -1, "higher priority"
		}
		return 1, "higher priority"
	}
	if a.ruleIndex != b.ruleIndex {
		if a.ruleIndex < b.ruleIndex {
			return -1, "lower rule_index"
		}
		return 1, "lower rule_index"
	}
	return a.index - b.index, "earlier in the vhost's routes list"
}

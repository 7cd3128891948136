/*
 * Layer 0: query string parameters, exactly as route.queryValue reads
 * them, for keying decisions on a parameter's value class (reuse.c).
 * route/testdata/query_vectors.txt holds the vectors Go generates;
 * test/cshim/query_test.c checks this file against them. Needs nothing
 * of varnishd: the C test links it alone.
 */

#include <stddef.h>
#include <string.h>

#include "query.h"

int
ghost_query_param(const char *q, size_t ql, const char *name, size_t nl,
    const char **v, size_t *vl)
{
	const char *e = q + ql, *amp, *pe, *eq;

	while (q < e) {
		amp = memchr(q, '&', (size_t)(e - q));
		pe = amp != NULL ? amp : e;
		eq = memchr(q, '=', (size_t)(pe - q));
		if (eq != NULL && (size_t)(eq - q) == nl &&
		    !memcmp(q, name, nl)) {
			*v = eq + 1;
			*vl = (size_t)(pe - eq - 1);
			return (1);
		}
		q = amp != NULL ? amp + 1 : e;
	}
	return (0);
}

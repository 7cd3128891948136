/*
 * vmod-shim/query.c against the vectors route/ generates
 * (route/testdata/query_vectors.txt, see route/query_vectors_test.go):
 * for every line, ghost_query_param() must find the parameter exactly
 * when route.queryValue does, with the same value.
 *
 *   query_test route/testdata/query_vectors.txt
 */

#include <stdio.h>
#include <string.h>

#include "query.h"
#include "vectors.h"

/* Decode hex (or "-" for empty) into b; the length, or -1. */
static int
unhex(const char *s, char *b, size_t bl)
{
	size_t n = 0;
	unsigned x;

	if (!strcmp(s, "-"))
		return (0);
	while (s[0] != '\0' && s[1] != '\0' && n < bl) {
		if (sscanf(s, "%2x", &x) != 1)
			return (-1);
		b[n++] = (char)x;
		s += 2;
	}
	return (*s == '\0' ? (int)n : -1);
}

int
main(int argc, char **argv)
{
	char line[8192], hq[4096], hn[4096], hv[4096];
	char q[2048], n[2048], v[2048];
	struct vectors vf;
	int ql, nl, vl, found, got;
	const char *gv;
	size_t gvl;

	if (vec_open(&vf, argc, argv))
		return (2);
	while (vec_next(&vf, line, sizeof line)) {
		if (sscanf(line, "%4095s %4095s %d %4095s", hq, hn, &found,
		    hv) != 4 || (ql = unhex(hq, q, sizeof q)) < 0 ||
		    (nl = unhex(hn, n, sizeof n)) < 0 ||
		    (vl = unhex(hv, v, sizeof v)) < 0) {
			fprintf(stderr, "%s:%u: bad line\n", vf.path,
			    vf.lineno);
			return (2);
		}
		got = ghost_query_param(q, (size_t)ql, n, (size_t)nl, &gv, &gvl);
		if (got != found || (got && (gvl != (size_t)vl ||
		    memcmp(gv, v, gvl)))) {
			fprintf(stderr, "%s:%u: query \"%.*s\" name \"%.*s\": "
			    "found %d \"%.*s\", want %d \"%.*s\"\n", vf.path,
			    vf.lineno, ql, q, nl, n, got, got ? (int)gvl : 0,
			    got ? gv : "", found, vl, v);
			vf.bad++;
		}
	}
	return (vec_done(&vf, "query_test", "wrong"));
}

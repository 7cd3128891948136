/*
 * vmod-shim/pick.c against the vectors route/ generates
 * (route/testdata/pick_vectors.txt, see route/pick_vectors_test.go):
 * every line's groups are encoded as the answer's "g" array, picked
 * with the line's u, and the endpoint must be the one route.Pick chose.
 *
 *   pick_test route/testdata/pick_vectors.txt
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgpack.h"
#include "pick.h"
#include "vectors.h"

#define MAXG	128

int
main(int argc, char **argv)
{
	static uint8_t buf[1 << 20];
	char line[8192], groups[8192], want[64], addr[64];
	uint64_t u, w[MAXG];
	unsigned n[MAXG], ng, gi, e, port;
	int wg, we;
	const char *a;
	char *p;
	size_t al;
	struct mp_w mw;
	struct vectors vf;

	if (vec_open(&vf, argc, argv))
		return (2);
	while (vec_next(&vf, line, sizeof line)) {
		if (sscanf(line, "%" SCNu64 " %8191s %d %d", &u, groups, &wg,
		    &we) != 4) {
			fprintf(stderr, "%s:%u: bad line\n", vf.path, vf.lineno);
			return (2);
		}
		ng = 0;
		if (strcmp(groups, "-") != 0) {
			for (p = strtok(groups, ","); p != NULL;
			    p = strtok(NULL, ",")) {
				if (ng == MAXG ||
				    sscanf(p, "%" SCNu64 "/%u", &w[ng], &n[ng]) != 2) {
					fprintf(stderr, "%s:%u: bad groups\n",
					    vf.path, vf.lineno);
					return (2);
				}
				ng++;
			}
		}
		/* the answer's "g": [[weight, [[addr, port], ...]], ...] */
		mw.p = buf;
		mw.end = buf + sizeof buf;
		mw.err = 0;
		mp_w_arr(&mw, ng);
		for (gi = 0; gi < ng; gi++) {
			mp_w_arr(&mw, 2);
			mp_w_uint(&mw, w[gi]);
			mp_w_arr(&mw, n[gi]);
			for (e = 0; e < n[gi]; e++) {
				snprintf(addr, sizeof addr, "g%ue%u", gi, e);
				mp_w_arr(&mw, 2);
				mp_w_cstr(&mw, addr);
				mp_w_uint(&mw, 80);
			}
		}
		if (mw.err) {
			fprintf(stderr, "%s:%u: groups too large\n", vf.path,
			    vf.lineno);
			return (2);
		}
		if (wg < 0)
			snprintf(want, sizeof want, "none");
		else
			snprintf(want, sizeof want, "g%de%d", wg, we);
		if (ghost_pick(buf, mw.p, u, &a, &al, &port) != 0)
			snprintf(addr, sizeof addr, "none");
		else
			snprintf(addr, sizeof addr, "%.*s", (int)al, a);
		if (strcmp(addr, want) != 0 && vf.bad++ < 10)
			fprintf(stderr, "%s:%u: u=%" PRIu64 " groups %s: picked "
			    "%s, route.Pick picks %s\n", vf.path, vf.lineno, u,
			    strtok(line + strcspn(line, " ") + 1, " "), addr,
			    want);
	}
	return (vec_done(&vf, "pick_test", "differ from route.Pick"));
}

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

/* ghost_pick_skip_f: the flat indices marked in priv */
static int
skip_out(void *priv, unsigned flat, const char *addr, size_t al,
    unsigned port)
{
	const unsigned char *out = priv;

	(void)addr;
	(void)al;
	(void)port;
	return (flat < 1024 && out[flat]);
}

int
main(int argc, char **argv)
{
	static uint8_t buf[1 << 20];
	char line[8192], groups[8192], skips[8192], want[64], addr[64];
	unsigned char out[1024];
	uint64_t u, w[MAXG];
	unsigned n[MAXG], ng, gi, e, port;
	int wg, we, r;
	unsigned flat;
	const char *a;
	char *p;
	size_t al;
	struct mp_w mw;
	struct vectors vf;

	if (vec_open(&vf, argc, argv))
		return (2);
	while (vec_next(&vf, line, sizeof line)) {
		if (sscanf(line, "%" SCNu64 " %8191s %d %d %8191s", &u, groups,
		    &wg, &we, skips) != 5) {
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
		memset(out, 0, sizeof out);
		if (strcmp(skips, "-") != 0) {
			for (p = strtok(skips, ","); p != NULL;
			    p = strtok(NULL, ","))
				if ((unsigned)atoi(p) < sizeof out)
					out[atoi(p)] = 1;
			r = ghost_pick_if(buf, mw.p, u, skip_out, out, &a, &al,
			    &port, &flat);
			if (r == 0 && out[flat]) {
				fprintf(stderr, "%s:%u: picked flat %u, left "
				    "out\n", vf.path, vf.lineno, flat);
				vf.bad++;
			}
		} else
			r = ghost_pick(buf, mw.p, u, &a, &al, &port);
		if (r != 0)
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

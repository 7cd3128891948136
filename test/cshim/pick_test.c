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

#define MAXG	128

int
main(int argc, char **argv)
{
	static uint8_t buf[1 << 20];
	char line[8192], groups[8192], want[64], addr[64];
	uint64_t u, w[MAXG];
	unsigned n[MAXG], ng, gi, e, port, lineno = 0, checked = 0, bad = 0;
	int wg, we;
	const char *a;
	char *p;
	size_t al;
	struct mp_w mw;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: pick_test VECTORS\n");
		return (2);
	}
	f = fopen(argv[1], "r");
	if (f == NULL) {
		perror(argv[1]);
		return (2);
	}
	while (fgets(line, sizeof line, f) != NULL) {
		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%" SCNu64 " %8191s %d %d", &u, groups, &wg,
		    &we) != 4) {
			fprintf(stderr, "%s:%u: bad line\n", argv[1], lineno);
			return (2);
		}
		ng = 0;
		if (strcmp(groups, "-") != 0) {
			for (p = strtok(groups, ","); p != NULL;
			    p = strtok(NULL, ",")) {
				if (ng == MAXG ||
				    sscanf(p, "%" SCNu64 "/%u", &w[ng], &n[ng]) != 2) {
					fprintf(stderr, "%s:%u: bad groups\n",
					    argv[1], lineno);
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
			fprintf(stderr, "%s:%u: groups too large\n", argv[1],
			    lineno);
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
		checked++;
		if (strcmp(addr, want) != 0) {
			if (bad++ < 10)
				fprintf(stderr, "%s:%u: u=%" PRIu64 " groups %s: "
				    "picked %s, route.Pick picks %s\n", argv[1],
				    lineno, u, strtok(line + strcspn(line, " ") + 1,
				    " "), addr, want);
		}
	}
	fclose(f);
	if (checked == 0) {
		fprintf(stderr, "%s: no vectors\n", argv[1]);
		return (1);
	}
	printf("pick_test: %u vectors, %u differ from route.Pick\n", checked,
	    bad);
	return (bad != 0);
}

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
#include "groups.h"

int
main(int argc, char **argv)
{
	static uint8_t buf[1 << 20];
	char line[8192], groups[8192], skips[8192], want[64], addr[64];
	unsigned char out[VEC_MAXF];
	const uint8_t *end;
	uint64_t u;
	unsigned port, flat;
	int wg, we, r;
	const char *a;
	size_t al;
	struct vectors vf;

	if (vec_open(&vf, argc, argv))
		return (2);
	while (vec_next(&vf, line, sizeof line)) {
		if (sscanf(line, "%" SCNu64 " %8191s %d %d %8191s", &u, groups,
		    &wg, &we, skips) != 5) {
			fprintf(stderr, "%s:%u: bad line\n", vf.path, vf.lineno);
			return (2);
		}
		end = vec_groups(&vf, groups, buf, sizeof buf);
		if (end == NULL)
			return (2);
		if (wg < 0)
			snprintf(want, sizeof want, "none");
		else
			snprintf(want, sizeof want, "g%de%d", wg, we);
		if (strcmp(skips, "-") != 0) {
			vec_flats(skips, out, sizeof out);
			r = ghost_pick_if(buf, end, u, vec_skip_marked, out, &a, &al,
			    &port, &flat);
			if (r == 0 && out[flat]) {
				fprintf(stderr, "%s:%u: picked flat %u, left "
				    "out\n", vf.path, vf.lineno, flat);
				vf.bad++;
			}
		} else
			r = ghost_pick(buf, end, u, &a, &al, &port);
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

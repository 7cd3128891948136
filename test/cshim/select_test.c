/*
 * vmod-shim/pick.c's ghost_select (the pick with endpoint health, panic
 * and tried endpoints) against route.Select's vectors
 * (route/testdata/select_vectors.txt, see route/select_vectors_test.go).
 *
 *   select_test route/testdata/select_vectors.txt
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgpack.h"
#include "pick.h"
#include "groups.h"

#define MAXF	VEC_MAXF

int
main(int argc, char **argv)
{
	static uint8_t buf[1 << 16];
	char line[8192], groups[4096], sicks[4096], trieds[4096], want[64],
	    got[64];
	unsigned char sick[MAXF], tried[MAXF];
	const uint8_t *end;
	const char *a;
	uint64_t u;
	unsigned n, flat, port;
	int pn, wg, we, wp, r, p;
	size_t al;
	struct vectors vf;

	if (vec_open(&vf, argc, argv))
		return (2);
	while (vec_next(&vf, line, sizeof line)) {
		if (sscanf(line, "%" SCNu64 " %4095s %4095s %4095s %d %d %d %d",
		    &u, groups, sicks, trieds, &pn, &wg, &we, &wp) != 8) {
			fprintf(stderr, "%s:%u: bad line\n", vf.path, vf.lineno);
			return (2);
		}
		end = vec_groups(&vf, groups, buf, sizeof buf);
		if (end == NULL)
			return (2);
		vec_flats(sicks, sick, MAXF);
		vec_flats(trieds, tried, MAXF);
		n = ghost_pick_count(buf, end);
		r = ghost_select(buf, end, u, strcmp(sicks, "-") ? sick : NULL,
		    n, pn, strcmp(trieds, "-") ? vec_skip_marked : NULL, tried,
		    &a, &al, &port, &flat, &p);
		if (wg < 0)
			snprintf(want, sizeof want, "none %d", wp);
		else
			snprintf(want, sizeof want, "g%de%d %d", wg, we, wp);
		if (r != 0)
			snprintf(got, sizeof got, "none %d", p);
		else
			snprintf(got, sizeof got, "%.*s %d", (int)al, a, p);
		if (strcmp(got, want) != 0 && vf.bad++ < 10)
			fprintf(stderr, "%s:%u: u=%" PRIu64 ": picked %s, "
			    "route.Select picks %s\n", vf.path, vf.lineno, u,
			    got, want);
	}
	return (vec_done(&vf, "select_test", "differ from route.Select"));
}

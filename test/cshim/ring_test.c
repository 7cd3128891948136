/*
 * vmod-shim/ring.c against the vectors route/ring generates
 * (route/ring/testdata/ring_vectors.txt, see route/ring/vectors_test.go):
 * every "hash" line's key must hash to ring.Hash's value, every "ring"
 * line's points must pass ghost_ring_check(), and every "walk" line must
 * end on the member ring.Walk chose when the listed members are refused.
 *
 *   ring_test route/ring/testdata/ring_vectors.txt
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "vectors.h"

#define MAXLINE	(2 << 20)

static int
unhex(const char *s, uint8_t *b, size_t max, size_t *l)
{
	size_t n = strlen(s), i;
	unsigned v;

	*l = 0;
	if (!strcmp(s, "-"))
		return (0);
	if (n % 2 != 0 || n / 2 > max)
		return (-1);
	for (i = 0; i < n / 2; i++) {
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return (-1);
		b[i] = (uint8_t)v;
	}
	*l = n / 2;
	return (0);
}

/* the refused members of a walk line */
struct refused {
	uint8_t		no[GHOST_RING_MAX_MEMBERS];
	unsigned	asked[GHOST_RING_MAX_MEMBERS];
	unsigned	twice;
};

static int
accept(void *priv, uint32_t m)
{
	struct refused *r = priv;

	if (r->asked[m]++ > 0)
		r->twice++;
	return (!r->no[m]);
}

int
main(int argc, char **argv)
{
	static char line[MAXLINE], arg[MAXLINE];
	static uint8_t ring[MAXLINE / 2], key[MAXLINE / 2];
	static struct refused ref;
	char list[65536], *p;
	uint64_t want, h;
	size_t rl = 0, kl;
	unsigned nm = 0, x;
	int64_t wm, got;
	struct vectors vf;

	if (vec_open(&vf, argc, argv))
		return (2);
	while (vec_next(&vf, line, sizeof line)) {
		if (sscanf(line, "hash %s %" SCNu64, arg, &want) == 2) {
			if (unhex(arg, key, sizeof key, &kl)) {
				fprintf(stderr, "%s:%u: bad key\n", vf.path,
				    vf.lineno);
				return (2);
			}
			h = ghost_ring_hash(key, kl);
			if (h != want && vf.bad++ < 10)
				fprintf(stderr, "%s:%u: hash %" PRIu64 ", "
				    "ring.Hash %" PRIu64 "\n", vf.path,
				    vf.lineno, h, want);
		} else if (sscanf(line, "ring %u %s", &nm, arg) == 2) {
			if (unhex(arg, ring, sizeof ring, &rl)) {
				fprintf(stderr, "%s:%u: bad ring\n", vf.path,
				    vf.lineno);
				return (2);
			}
			if (ghost_ring_check(ring, rl, nm) && vf.bad++ < 10)
				fprintf(stderr, "%s:%u: ghost_ring_check "
				    "refuses ring.Encode()\n", vf.path,
				    vf.lineno);
		} else if (sscanf(line, "walk %" SCNu64 " %65535s %" SCNd64,
		    &h, list, &wm) == 3) {
			memset(&ref, 0, sizeof ref);
			if (strcmp(list, "-") != 0)
				for (p = strtok(list, ","); p != NULL;
				    p = strtok(NULL, ",")) {
					x = (unsigned)atoi(p);
					if (x < GHOST_RING_MAX_MEMBERS)
						ref.no[x] = 1;
				}
			got = ghost_ring_walk(ring, rl, nm, h, accept, &ref);
			if ((got != wm || ref.twice) && vf.bad++ < 10)
				fprintf(stderr, "%s:%u: walk from %" PRIu64
				    " ends on %" PRId64 " (%u asked twice), "
				    "ring.Walk on %" PRId64 "\n", vf.path,
				    vf.lineno, h, got, ref.twice, wm);
			if (list[0] == '-') {
				got = ghost_ring_walk(ring, rl, nm, h, NULL,
				    NULL);
				if (got != wm && vf.bad++ < 10)
					fprintf(stderr, "%s:%u: lookup of %"
					    PRIu64 " gives %" PRId64 ", "
					    "ring.Lookup %" PRId64 "\n",
					    vf.path, vf.lineno, h, got, wm);
			}
		} else {
			fprintf(stderr, "%s:%u: bad line\n", vf.path,
			    vf.lineno);
			return (2);
		}
	}
	/* what ghost_ring_check() must refuse */
	if (rl >= 2 * GHOST_RING_POINT) {
		if (!ghost_ring_check(ring, rl - 1, nm) ||
		    !ghost_ring_check(ring, rl, 0) ||
		    !ghost_ring_check(NULL, 0, nm)) {
			fprintf(stderr, "ghost_ring_check accepts a bad ring\n");
			vf.bad++;
		}
		memcpy(key, ring, GHOST_RING_POINT);
		memcpy(ring, ring + GHOST_RING_POINT, GHOST_RING_POINT);
		memcpy(ring + GHOST_RING_POINT, key, GHOST_RING_POINT);
		if (!ghost_ring_check(ring, rl, nm)) {
			fprintf(stderr, "ghost_ring_check accepts an unsorted "
			    "ring\n");
			vf.bad++;
		}
	}
	return (vec_done(&vf, "ring_test", "differ from route/ring"));
}

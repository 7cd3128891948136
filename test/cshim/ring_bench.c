/*
 * Instruction count of a consistent-hash lookup in the shim (hash of a
 * URL-like key and a walk of the ring), for the figure in
 * docs/configuration.md: the last "ring" of the vector file, 100,000
 * keys, looked up by lookups_owner() and lookups_walk():
 *
 *   make build/cshim/ring_bench
 *   valgrind --tool=callgrind --toggle-collect='lookups_*' \
 *       --callgrind-out-file=cg.out \
 *       build/cshim/ring_bench route/ring/testdata/ring_vectors.txt
 *   callgrind_annotate --inclusive=yes cg.out | grep -E 'ring_|lookups'
 *
 * ghost_ring_hash + ghost_ring_walk Ir under each / 100,000 =
 * instructions per lookup (load does not change it; the snprintf of
 * the keys is the bench's own).
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"
#include "vectors.h"

#define NKEYS	100000
#define MAXLINE	(2 << 20)

/* accept every member but 0: a walk past one owner */
static int
not_first(void *priv, uint32_t m)
{
	(void)priv;
	return (m != 0);
}

static uint64_t
lookups(const uint8_t *ring, size_t rl, unsigned nm, int walk)
{
	char key[32];
	uint64_t sum = 0;
	int n, i;

	for (i = 0; i < NKEYS; i++) {
		n = snprintf(key, sizeof key, "/product/%d?v=1", i);
		sum += (uint64_t)ghost_ring_walk(ring, rl, nm,
		    ghost_ring_hash(key, (size_t)n), walk ? not_first : NULL,
		    NULL);
	}
	return (sum);
}

/* the owner accepted (no health, no retry) */
static uint64_t __attribute__((noinline))
lookups_owner(const uint8_t *ring, size_t rl, unsigned nm)
{
	return (lookups(ring, rl, nm, 0));
}

/* walking past a refused member 0 (a third of the keys) */
static uint64_t __attribute__((noinline))
lookups_walk(const uint8_t *ring, size_t rl, unsigned nm)
{
	return (lookups(ring, rl, nm, 1));
}

int
main(int argc, char **argv)
{
	static char line[MAXLINE], hex[MAXLINE];
	static uint8_t ring[MAXLINE / 2];
	struct vectors vf;
	size_t rl = 0, i;
	unsigned nm = 0, v;

	if (vec_open(&vf, argc, argv))
		return (2);
	while (vec_next(&vf, line, sizeof line))
		if (sscanf(line, "ring %u %s", &nm, hex) == 2) {
			rl = strlen(hex) / 2;
			for (i = 0; i < rl; i++) {
				if (sscanf(hex + 2 * i, "%2x", &v) != 1)
					return (2);
				ring[i] = (uint8_t)v;
			}
		}
	if (rl == 0 || ghost_ring_check(ring, rl, nm))
		return (2);
	printf("ring of %u members, %zu points: %" PRIu64 " %" PRIu64 "\n",
	    nm, rl / GHOST_RING_POINT, lookups_owner(ring, rl, nm),
	    lookups_walk(ring, rl, nm));
	return (vec_done(&vf, "ring_bench", "unused") == 2 ? 2 : 0);
}

/*
 * The groups and flat-index lists of route/'s pick vectors
 * (pick_vectors.txt, select_vectors.txt), for the C tests in test/cshim/.
 */

#ifndef GHOST_CSHIM_GROUPS_H
#define GHOST_CSHIM_GROUPS_H

#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#include "msgpack.h"
#include "vectors.h"

/*
 * Encode a vector's groups ("w/n,w/n,..." or "-", modified in place) as
 * the answer's "g" array into buf: endpoint e of group g is "g<g>e<e>",
 * port 80. The end of the encoding, or NULL (reported) on a bad field.
 */
static inline uint8_t *
vec_groups(struct vectors *v, char *groups, uint8_t *buf, size_t len)
{
	uint64_t w[128];
	unsigned n[128], ng = 0, gi, e;
	char *p, addr[32];
	struct mp_w mw = { buf, buf + len, 0 };

	if (strcmp(groups, "-") != 0) {
		for (p = strtok(groups, ","); p != NULL; p = strtok(NULL, ",")) {
			if (ng == 128 ||
			    sscanf(p, "%" SCNu64 "/%u", &w[ng], &n[ng]) != 2) {
				fprintf(stderr, "%s:%u: bad groups\n", v->path,
				    v->lineno);
				return (NULL);
			}
			ng++;
		}
	}
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
		fprintf(stderr, "%s:%u: groups too large\n", v->path, v->lineno);
		return (NULL);
	}
	return (mw.p);
}

/* Mark the flat indices of "f,f,..." ("-": none) in out[n]. */
static inline void
vec_flats(char *list, unsigned char *out, unsigned n)
{
	char *p;

	memset(out, 0, n);
	if (strcmp(list, "-") == 0)
		return;
	for (p = strtok(list, ","); p != NULL; p = strtok(NULL, ","))
		if ((unsigned)atoi(p) < n)
			out[atoi(p)] = 1;
}

/* At most this many flat indices in a vector's lists. */
#define VEC_MAXF	1024

/* ghost_pick_skip_f: the flat indices marked in priv (VEC_MAXF bytes) */
static inline int
vec_skip_marked(void *priv, unsigned flat, const char *addr, size_t al,
    unsigned port)
{
	const unsigned char *marked = priv;

	(void)addr;
	(void)al;
	(void)port;
	return (flat < VEC_MAXF && marked[flat]);
}

#endif /* GHOST_CSHIM_GROUPS_H */

/*
 * Layer 1: weighted selection of an endpoint among an answer's groups,
 * exactly route.Pick (route/pick.go documents the algorithm). The shim
 * picks per request, so a memoised answer spreads its requests over the
 * endpoints by weight. route/testdata/pick_vectors.txt holds the
 * vectors Go generates; test/cshim/pick_test.c checks this file against
 * them. Needs nothing of varnishd: the C test links it alone.
 */

#include <stddef.h>
#include <stdint.h>

#include "msgpack.h"
#include "pick.h"

/* Skip the next m values. */
static void
skip(struct mp_r *r, uint32_t m)
{
	while (m-- > 0 && !r->err)
		mp_skip(r);
}

int
ghost_pick(const uint8_t *g, const uint8_t *g_end, uint64_t u,
    const char **addr, size_t *al, unsigned *port)
{
	struct mp_r r = { g, g_end, 0 };
	unsigned __int128 x;
	uint64_t total = 0, wt, point, frac, e;
	uint32_t n, m, i;

	if (g == NULL)
		return (-1);
	/* total weight of the groups that have endpoints */
	n = mp_r_arr(&r);
	for (i = 0; i < n && !r.err; i++) {
		(void)mp_r_arr(&r);
		wt = mp_r_uint(&r);
		m = mp_r_arr(&r);
		if (m > 0)
			total += wt;
		skip(&r, m);
	}
	if (r.err || total == 0)
		return (-1);
	/* a point uniform in [0, total): the high word of u * total */
	x = (unsigned __int128)u * total;
	point = (uint64_t)(x >> 64);
	frac = (uint64_t)x;
	r.p = g;
	n = mp_r_arr(&r);
	for (i = 0; i < n && !r.err; i++) {
		(void)mp_r_arr(&r);
		wt = mp_r_uint(&r);
		m = mp_r_arr(&r);
		if (m == 0 || wt == 0 || point >= wt) {
			if (m > 0)
				point -= wt;
			skip(&r, m);
			continue;
		}
		/*
		 * The point's position inside this group's share, refined by
		 * the low word, scaled to m endpoints:
		 * e = floor(m * (point + frac / 2^64) / wt) < m.
		 */
		x = (unsigned __int128)point * m +
		    (uint64_t)(((unsigned __int128)frac * m) >> 64);
		e = (uint64_t)(x / wt);
		skip(&r, (uint32_t)e);
		(void)mp_r_arr(&r);
		mp_r_str(&r, addr, al);
		*port = (unsigned)mp_r_int(&r);
		return (r.err ? -1 : 0);
	}
	return (-1);
}

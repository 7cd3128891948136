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
skip_n(struct mp_r *r, uint32_t m)
{
	while (m-- > 0 && !r->err)
		mp_skip(r);
}

/*
 * The endpoints of the group whose endpoint array r is at (m of them,
 * the first with flat index base) that skip leaves in; r is left after
 * the group.
 */
static uint32_t
kept(struct mp_r *r, uint32_t m, unsigned base, ghost_pick_skip_f *skip,
    void *priv)
{
	const char *a;
	size_t al;
	unsigned port;
	uint32_t e, n = 0;

	if (skip == NULL) {
		skip_n(r, m);
		return (m);
	}
	for (e = 0; e < m && !r->err; e++) {
		(void)mp_r_arr(r);
		mp_r_str(r, &a, &al);
		port = (unsigned)mp_r_int(r);
		if (!r->err && !skip(priv, base + e, a, al, port))
			n++;
	}
	return (n);
}

int
ghost_pick_if(const uint8_t *g, const uint8_t *g_end, uint64_t u,
    ghost_pick_skip_f *skip, void *priv, const char **addr, size_t *al,
    unsigned *port, unsigned *flat)
{
	struct mp_r r = { g, g_end, 0 };
	unsigned __int128 x;
	uint64_t total = 0, wt, point, frac, e;
	uint32_t n, m, k, i, j;
	unsigned base = 0;

	if (g == NULL)
		return (-1);
	/*
	 * One group of one endpoint with a weight, nothing skipped (most
	 * routes): the point falls in that group, on that endpoint (the
	 * arithmetic below gives e = 0), without walking the groups twice.
	 */
	if (skip == NULL && mp_one_endpoint(g, g_end, addr, al, port) == 0) {
		if (flat != NULL)
			*flat = 0;
		return (0);
	}
	/* total weight of the groups that have endpoints left in */
	n = mp_r_arr(&r);
	for (i = 0; i < n && !r.err; i++) {
		(void)mp_r_arr(&r);
		wt = mp_r_uint(&r);
		m = mp_r_arr(&r);
		if (kept(&r, m, base, skip, priv) > 0)
			total += wt;
		base += m;
	}
	if (r.err || total == 0)
		return (-1);
	/* a point uniform in [0, total): the high word of u * total */
	x = (unsigned __int128)u * total;
	point = (uint64_t)(x >> 64);
	frac = (uint64_t)x;
	r.p = g;
	base = 0;
	n = mp_r_arr(&r);
	for (i = 0; i < n && !r.err; i++) {
		(void)mp_r_arr(&r);
		wt = mp_r_uint(&r);
		m = mp_r_arr(&r);
		if (m == 0)
			continue;
		if (wt == 0 || point >= wt || skip != NULL) {
			const uint8_t *p0 = r.p;

			k = kept(&r, m, base, skip, priv);
			if (k == 0 || wt == 0 || point >= wt) {
				if (k > 0)
					point -= wt;
				base += m;
				continue;
			}
			r.p = p0;
		} else
			k = m;
		/*
		 * The point's position inside this group's share, refined by
		 * the low word, scaled to the k endpoints left in:
		 * e = floor(k * (point + frac / 2^64) / wt) < k.
		 */
		x = (unsigned __int128)point * k +
		    (uint64_t)(((unsigned __int128)frac * k) >> 64);
		e = (uint64_t)(x / wt);
		/* the e-th endpoint left in */
		for (j = 0; j < m && !r.err; j++) {
			(void)mp_r_arr(&r);
			mp_r_str(&r, addr, al);
			*port = (unsigned)mp_r_int(&r);
			if (r.err)
				break;
			if (skip != NULL &&
			    skip(priv, base + j, *addr, *al, *port))
				continue;
			if (e-- == 0) {
				if (flat != NULL)
					*flat = base + j;
				return (0);
			}
		}
		return (-1);
	}
	return (-1);
}

int
ghost_pick(const uint8_t *g, const uint8_t *g_end, uint64_t u,
    const char **addr, size_t *al, unsigned *port)
{
	return (ghost_pick_if(g, g_end, u, NULL, NULL, addr, al, port, NULL));
}

/* ---- the pick with endpoint health (route.Select) ------------------- */

unsigned
ghost_pick_count(const uint8_t *g, const uint8_t *g_end)
{
	struct mp_r r = { g, g_end, 0 };
	uint32_t n, m, i;
	unsigned all = 0;

	if (g == NULL)
		return (0);
	n = mp_r_arr(&r);
	for (i = 0; i < n && !r.err; i++) {
		(void)mp_r_arr(&r);
		(void)mp_r_uint(&r);
		m = mp_r_arr(&r);
		skip_n(&r, m);
		all += m;
	}
	return (r.err ? 0 : all);
}

struct sel {
	const unsigned char	*sick;
	unsigned		n;
	int			panicked;
	ghost_pick_skip_f	*tried;
	void			*tried_priv;
};

/* ghost_pick_skip_f: unhealthy (outside panic) */
static int
skip_sick(void *priv, unsigned flat, const char *addr, size_t al,
    unsigned port)
{
	const struct sel *s = priv;

	(void)addr;
	(void)al;
	(void)port;
	return (!s->panicked && flat < s->n && s->sick[flat]);
}

/* ghost_pick_skip_f: unhealthy (outside panic) or tried */
static int
skip_sick_tried(void *priv, unsigned flat, const char *addr, size_t al,
    unsigned port)
{
	const struct sel *s = priv;

	return (skip_sick(priv, flat, addr, al, port) ||
	    s->tried(s->tried_priv, flat, addr, al, port));
}

int
ghost_select(const uint8_t *g, const uint8_t *g_end, uint64_t u,
    const unsigned char *sick, unsigned n, int pn, ghost_pick_skip_f *tried,
    void *tried_priv, const char **addr, size_t *al, unsigned *port,
    unsigned *flat, int *panicked)
{
	struct sel s;
	unsigned f, healthy = 0;

	s.sick = sick;
	s.n = n;
	s.panicked = 0;
	s.tried = tried;
	s.tried_priv = tried_priv;
	if (sick != NULL) {
		for (f = 0; f < n; f++)
			healthy += !sick[f];
		/* panic: healthy * 100 < pn * all */
		if ((uint64_t)healthy * 100 < (uint64_t)(pn < 0 ? 0 : pn) * n)
			s.panicked = 1;
	}
	*panicked = s.panicked;
	if (tried != NULL && ghost_pick_if(g, g_end, u,
	    sick != NULL ? skip_sick_tried : tried,
	    sick != NULL ? (void *)&s : tried_priv,
	    addr, al, port, flat) == 0)
		return (0);
	return (ghost_pick_if(g, g_end, u, sick != NULL ? skip_sick : NULL,
	    &s, addr, al, port, flat));
}

/*
 * Layer 1: weighted selection of an endpoint among an answer's groups.
 */

#include "config.h"

#include "cache/cache.h"

#include "msgpack.h"
#include "ghost.h"
#include "pick.h"

static uint64_t
rng(struct ghost_vcl *gv)
{
	uint64_t z;

	z = __atomic_add_fetch(&gv->rng, 0x9e3779b97f4a7c15ULL,
	    __ATOMIC_RELAXED);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

int
ghost_pick(struct ghost_vcl *gv, const struct ghost_ans *a, const char **addr,
    size_t *al, unsigned *port)
{
	struct mp_r r;
	uint64_t total = 0, wt, x;
	uint32_t n, m, i;
	const char *s;
	size_t sl;

	if (a->g == NULL)
		return (-1);
	r.p = a->g;
	r.end = a->g_end;
	r.err = 0;
	n = mp_r_arr(&r);
	for (i = 0; i < n && !r.err; i++) {
		(void)mp_r_arr(&r);
		wt = mp_r_uint(&r);
		m = mp_r_arr(&r);
		if (m > 0 && total + wt >= total)
			total += wt;
		while (m-- > 0 && !r.err)
			mp_skip(&r);
	}
	if (r.err || total == 0)
		return (-1);
	x = rng(gv) % total;
	r.p = a->g;
	r.err = 0;
	n = mp_r_arr(&r);
	for (i = 0; i < n && !r.err; i++) {
		(void)mp_r_arr(&r);
		wt = mp_r_uint(&r);
		m = mp_r_arr(&r);
		if (m == 0 || x >= wt) {
			if (m > 0)
				x -= wt;
			while (m-- > 0 && !r.err)
				mp_skip(&r);
			continue;
		}
		x = rng(gv) % m;
		while (x-- > 0)
			mp_skip(&r);
		(void)mp_r_arr(&r);
		mp_r_str(&r, &s, &sl);
		*addr = s;
		*al = sl;
		*port = (unsigned)mp_r_int(&r);
		return (r.err ? -1 : 0);
	}
	return (-1);
}

/*
 * libFuzzer target: vmod-shim/answer.c's decoder on any bytes as a route
 * answer, then what the shim does with a decoded answer short of
 * varnishd: the weighted pick over the groups. Every pointer of a decoded
 * answer must lie inside the input; under AddressSanitizer any read
 * outside it is a crash. Seeds: test/cshim/corpus/answer, made by Go
 * (protocol/cshim_seeds_test.go). Built and run by test/fuzz.sh.
 */

#include "config.h"

#include <stdint.h>
#include <string.h>

#include "cache/cache.h"

#include "msgpack.h"
#include "ghost.h"
#include "answer.h"
#include "pick.h"

/* p (a pointer of the answer, l bytes from it) lies in [b, e]. */
static void
inside(const void *p, size_t l, const uint8_t *b, const uint8_t *e)
{
	if (p == NULL)
		return;
	assert((const uint8_t *)p >= b && (const uint8_t *)p <= e);
	assert(l <= (size_t)(e - (const uint8_t *)p));
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t us[] = { 0, 1, 1ULL << 63, UINT64_MAX };
	const uint8_t *e = data + size;
	struct ghost_ans a;
	char why[256];
	const char *addr;
	size_t al;
	unsigned port, i;

	why[0] = '\0';
	if (ghost_ans_decode(data, size, &a, why, sizeof why)) {
		assert(why[0] != '\0');
		return (0);
	}
	assert(a.o >= GHOST_ROUTE && a.o <= GHOST_REDIRECT);
#define RANGE(f)	inside(a.f, a.f != NULL ? (size_t)(a.f##_end - a.f) : 0, \
			    data, e);
	RANGE(g) RANGE(rqs) RANGE(rqa) RANGE(rqr) RANGE(rss) RANGE(rsa)
	RANGE(rsr) RANGE(deps.h) RANGE(deps.hv) RANGE(deps.qv)
	RANGE(deps.sl) RANGE(deps.raw)
#undef RANGE
	/* ops sums up the fields it stands for (answer.c) */
	assert(!!(a.ops & GHOST_OPS_RESP) == (a.rss != NULL || a.rsa != NULL ||
	    a.rsr != NULL || a.has_cr || a.deps.h != NULL || a.cr_v != NULL ||
	    a.nc != NULL));
	assert(!!(a.ops & GHOST_OPS_RETRY) == (a.tm_req != 0 || a.tm_be != 0 ||
	    a.rt_att != 0));
	assert(!!(a.ops & GHOST_OPS_PLAIN) == (a.o == GHOST_ROUTE &&
	    a.ep1 != NULL && a.pn < 0 && !a.pe && !a.has_sp && !a.has_cr &&
	    a.lb_k == NULL && a.rqs == NULL && a.rqa == NULL &&
	    a.rqr == NULL && (a.path == NULL || a.path_len == 0) &&
	    (a.hst == NULL || a.hst_len == 0) && a.tm_req == 0 &&
	    a.tm_be == 0 && a.rt_att == 0));
	assert(!!(a.ops & GHOST_OPS_STORE) == (a.cm != GHOST_CM_PASS &&
	    !a.has_cp && a.qi == NULL && a.qx == NULL && a.kh == NULL));
	/* a plain answer: status 200, no probe, no outlier detection */
	if (a.ops & GHOST_OPS_PLAIN)
		assert(a.st == 200 && a.hp.id == 0 && a.ol_n == 0);
#define STR(f)		inside(a.f, a.f##_len, data, e);
	STR(path) STR(hst) STR(loc) STR(pe_with) STR(rs) STR(bd) STR(nc)
#undef STR
	for (i = 0; i < sizeof us / sizeof us[0]; i++) {
		if (ghost_pick(a.g, a.g_end, us[i], &addr, &al, &port))
			continue;
		inside(addr, al, data, e);
		assert(al >= 1 && al <= 45 && port >= 1 && port <= 65535);
	}
	return (0);
}

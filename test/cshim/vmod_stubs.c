/*
 * What the shim's memo lookup and key builder (reuse.c, rq.c) link from
 * the rest of the VMOD and from varnishd, for the C tests that build them
 * without either (memo_test.c, fuzz_key.c): the VMOD's counters, which
 * stats.c would map into shared memory (reuse.c counts
 * GHOST.memo_host_miss: a test reads it through ghost_vsc), and the
 * listener, which rq.c asks for only for an answer whose deps read it.
 */

#include "config.h"

#include "cache/cache.h"
#include "vrt_obj.h"

#include "stats.h"

static struct VSC_ghost vsc;
struct VSC_ghost *ghost_vsc = &vsc;

VCL_STRING
VRT_r_local_socket(VRT_CTX)
{
	(void)ctx;
	return (NULL);
}

/*
 * vmod ghost: creation and destruction of the VSC segment. Both run in
 * VCL events, on the CLI thread, so the reference count needs no lock.
 */

#include "config.h"

#include <string.h>

#include "cache/cache.h"

#include "stats.h"

struct VSC_ghost *ghost_vsc;
static struct vsc_seg *vsc_seg;
static unsigned vsc_vcls;	/* VCLs loaded that import ghost */

void
ghost_stats_load(void)
{
	if (vsc_vcls++ == 0)
		ghost_vsc = VSC_ghost_New(NULL, &vsc_seg, "");
	AN(ghost_vsc);
}

void
ghost_stats_discard(void)
{
	assert(vsc_vcls > 0);
	if (--vsc_vcls == 0) {
		VSC_ghost_Destroy(&vsc_seg);
		ghost_vsc = NULL;
	}
}

/*
 * Count a failed exchange with ghostd by kind, from the message conn.c
 * and answer.c wrote: a timeout (of the connect, the send or the answer),
 * a failed connect, or else an answer that cannot be used (closed
 * connection, error answer, framing, decoding, protocol version).
 */
void
ghost_stats_error(const char *why)
{
	AN(why);
	if (strncmp(why, "timeout", 7) == 0 ||
	    (strncmp(why, "connect ", 8) == 0 && strstr(why, ": timeout")))
		GHOST_STAT(err_timeout);
	else if (strncmp(why, "connect ", 8) == 0)
		GHOST_STAT(err_connect);
	else
		GHOST_STAT(err_answer);
}

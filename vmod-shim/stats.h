/*
 * vmod ghost: the VSC counters (varnishstat GHOST.*), declared in
 * ghost.vsc. One segment per varnishd, created when the first VCL that
 * imports ghost loads and destroyed when the last one is discarded.
 */

#ifndef GHOST_STATS_H
#define GHOST_STATS_H

#include "VSC_ghost.h"

extern struct VSC_ghost *ghost_vsc;

/* Count one event; many worker threads share the segment. */
#define GHOST_STAT(f) \
	((void)__atomic_add_fetch(&ghost_vsc->f, 1, __ATOMIC_RELAXED))

/* Move a gauge by d (signed). */
#define GHOST_GAUGE(f, d) \
	((void)__atomic_add_fetch(&ghost_vsc->f, (uint64_t)(int64_t)(d), \
	    __ATOMIC_RELAXED))

void ghost_stats_error(const char *why);
void ghost_stats_load(void);
void ghost_stats_discard(void);

#endif

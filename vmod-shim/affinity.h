/*
 * Layer 2: affinity (affinity.c): consistent-hash keys and rings,
 * session tokens. See ghost.h.
 */

#ifndef GHOST_AFFINITY_H
#define GHOST_AFFINITY_H

#include "ring.h"

struct ghost_rq;

/* Endpoint flat (counted group by group) of groups [g, g_end); 0 or -1. */
int ghost_flat_ep(const uint8_t *g, const uint8_t *g_end, unsigned flat,
    const char **addr, size_t *al, unsigned *port);

/*
 * The ring.Hash of the first key of a's "lb" that request q has, in *h:
 * 1, or 0 when it has none of them (or a has no "lb").
 */
int ghost_aff_key(VRT_CTX, const struct ghost_rq *q,
    const struct ghost_ans *a, uint64_t *h);

/*
 * Walk a's ring (fetched from ghostd once per ring ID and VCL) from h:
 * the first flat endpoint ok accepts, each asked once; -1 when ok
 * accepts none, -2 when the ring is not available (logged).
 */
int64_t ghost_aff_walk(VRT_CTX, struct ghost_vcl *gv,
    const struct ghost_ans *a, uint64_t h, ghost_ring_ok_f *ok, void *priv);

/* Drop the VCL's rings. */
void ghost_rings_free(struct ghost_vcl *gv);

/*
 * The flat endpoint whose token request q carries in a's session cookie
 * or header ("<token>.<issued>", not past a's absolute timeout at now),
 * and *issued; -1 when none.
 */
int64_t ghost_sess_find(const struct ghost_rq *q, const struct ghost_ans *a,
    double now, int64_t *issued);

/*
 * The session of flat endpoint flat (begun at issued; fresh: with this
 * response) on response hp: the Set-Cookie or header a's "sp" says.
 */
void ghost_sess_resp(VRT_CTX, struct http *hp, const struct ghost_ans *a,
    unsigned flat, int64_t issued, int fresh, double now);

#endif /* GHOST_AFFINITY_H */

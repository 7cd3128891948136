/*
 * Layer 3: one decision (route.c). See ghost.h.
 */

#ifndef GHOST_ROUTE_H
#define GHOST_ROUTE_H

struct ghost_rq;

int ghost_decide(VRT_CTX, struct ghost_vcl *, const struct ghost_rq *,
    struct ghost_ans *, const char **src, char *why, size_t whylen);
VCL_BACKEND ghost_route(VRT_CTX, struct ghost_vcl *, struct ghost_task *);

#endif /* GHOST_ROUTE_H */

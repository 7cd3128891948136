/*
 * Layer 3: one decision (route.c). See ghost.h.
 */

#ifndef GHOST_ROUTE_H
#define GHOST_ROUTE_H

struct ghost_rq;

/* A task's answer before a decision (all zero): t->ans is never NULL. */
extern const struct ghost_ans ghost_ans_none;

int ghost_decide(VRT_CTX, struct ghost_vcl *, const struct ghost_rq *,
    struct ghost_ans *, const char **src, char *why, size_t whylen);
VCL_BACKEND ghost_route(VRT_CTX, struct ghost_vcl *, struct ghost_task *);
/*
 * The result of the fetch attempt t picked for (vcl_backend_response:
 * beresp.status, 5xx a failure; vcl_backend_error: a failure) for the
 * route's outlier detection; once per attempt, whoever calls first.
 */
void ghost_route_result(VRT_CTX, struct ghost_task *);

#endif /* GHOST_ROUTE_H */

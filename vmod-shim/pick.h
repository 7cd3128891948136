/*
 * Layer 1: weighted selection of an endpoint (pick.c). See ghost.h.
 */

#ifndef GHOST_PICK_H
#define GHOST_PICK_H

/*
 * The endpoint of groups [g, g_end) (the answer's "g", validated) that
 * the uniformly random u picks, as route.Pick(u) does; -1 when none can
 * be picked.
 */
int ghost_pick(const uint8_t *g, const uint8_t *g_end, uint64_t u,
    const char **addr, size_t *al, unsigned *port);

/*
 * Says whether to leave out endpoint addr:port (not NUL terminated), the
 * flat-th of the groups counting across them in order: nonzero leaves it
 * out. priv is ghost_pick_if()'s.
 */
typedef int ghost_pick_skip_f(void *priv, unsigned flat, const char *addr,
    size_t al, unsigned port);

/*
 * ghost_pick() among the endpoints skip leaves in, as route's PickAmong:
 * a group's weight counts while one of its endpoints is left in, and the
 * endpoint is uniform among those left in. skip NULL: ghost_pick(). On 0,
 * *flat (when not NULL) is the flat index of the endpoint picked.
 */
int ghost_pick_if(const uint8_t *g, const uint8_t *g_end, uint64_t u,
    ghost_pick_skip_f *skip, void *priv, const char **addr, size_t *al,
    unsigned *port, unsigned *flat);

/* How many endpoints groups [g, g_end) hold (flat indices 0..n-1). */
unsigned ghost_pick_count(const uint8_t *g, const uint8_t *g_end);

/*
 * The pick with endpoint health, as route's Select: sick[f] (n entries,
 * one per endpoint of g in flat order; NULL: none sick) marks the
 * unhealthy; when fewer than pn percent are healthy (*panicked = 1) they
 * may be picked too; among those allowed, one that tried (the fetch's
 * tried set; NULL: none) does not leave out when there is one. On 0,
 * *flat is the endpoint's flat index. -1: nothing may be picked.
 */
int ghost_select(const uint8_t *g, const uint8_t *g_end, uint64_t u,
    const unsigned char *sick, unsigned n, int pn, ghost_pick_skip_f *tried,
    void *tried_priv, const char **addr, size_t *al, unsigned *port,
    unsigned *flat, int *panicked);

#endif /* GHOST_PICK_H */

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

#endif /* GHOST_PICK_H */

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

#endif /* GHOST_PICK_H */

/*
 * Layer 1: weighted selection of an endpoint (pick.c). See ghost.h.
 */

#ifndef GHOST_PICK_H
#define GHOST_PICK_H

int ghost_pick(struct ghost_vcl *, const struct ghost_ans *,
    const char **addr, size_t *al, unsigned *port);

#endif /* GHOST_PICK_H */

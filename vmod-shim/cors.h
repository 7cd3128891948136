/*
 * Layer 1: the cors filter applied (cors.c). See ghost.h.
 */

#ifndef GHOST_CORS_H
#define GHOST_CORS_H

int ghost_cors_preflight(const struct ghost_ans *, const struct http *req);
void ghost_cors_headers(struct http *resp, const struct http *req,
    const struct ghost_ans *, int preflight);

#endif /* GHOST_CORS_H */

/*
 * Layer 2: native backends per endpoint and their retirement
 * (backend.c). See ghost.h.
 */

#ifndef GHOST_BACKEND_H
#define GHOST_BACKEND_H

VCL_BACKEND ghost_be_get(VRT_CTX, struct ghost_vcl *, const char *addr,
    size_t addr_len, unsigned port, uint64_t gen);
void ghost_be_live(VRT_CTX, struct ghost_vcl *, uint64_t gen);
int ghost_reaper_start(struct ghost_vcl *);
void ghost_reaper_stop(struct ghost_vcl *);
void ghost_be_fini(VRT_CTX, struct ghost_vcl *);
void ghost_be_limits(VRT_CTX, const struct ghost_vcl *);

#endif /* GHOST_BACKEND_H */

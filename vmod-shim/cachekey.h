/*
 * Layer 0: the cache-key URL and the normalised host (cachekey.c). See
 * ghost.h.
 */

#ifndef GHOST_CACHEKEY_H
#define GHOST_CACHEKEY_H

const char *ghost_cache_url(struct ws *, const struct ghost_ans *,
    const char *url);
const char *ghost_norm_host(struct ws *, const char *host);

#endif /* GHOST_CACHEKEY_H */

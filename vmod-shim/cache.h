/*
 * Layer 4: caching (cache.c): the client-side cache decision, the hash,
 * the route's TTLs and the invalidation tags on a stored object, their
 * removal on delivery, PURGE and BAN. See ghost.h.
 */

#ifndef GHOST_CACHE_H
#define GHOST_CACHE_H

/*
 * The listener of plain objects (cache.c plain_rq()): varnishd's name
 * of the first -a without a name=.
 */
#define GHOST_PLAIN_SOCK	"a0"

int ghost_cache_origin_only(VRT_CTX, struct ghost_vcl *, struct ghost_st *);
struct ghost_cdec *ghost_cdec_get(VRT_CTX, const struct ghost_vcl *,
    int create);
int ghost_cache_decide(VRT_CTX, struct ghost_vcl *, struct ghost_cdec *,
    const struct ghost_st *);
const struct ghost_ans *ghost_cdec_key(VRT_CTX, struct ghost_vcl *,
    const struct ghost_cdec *, struct ghost_ans *tmp);
void ghost_cache_resp(VRT_CTX, struct ghost_task *);
const char *ghost_inval_error(VRT_CTX);
const char *ghost_inval_ban(VRT_CTX);
const char *ghost_inval_keys(VRT_CTX, struct ghost_vcl *);
int ghost_purge_hash(VRT_CTX, struct ghost_vcl *);
VCL_INT ghost_purge_plain(VRT_CTX);

#endif /* GHOST_CACHE_H */

/*
 * Layer 2: memo keys, lookup and store of decisions (reuse.c). See
 * ghost.h.
 */

#ifndef GHOST_REUSE_H
#define GHOST_REUSE_H

struct ghost_rq;

int ghost_memo_find(struct ghost_vcl *, struct ws *, uint64_t gen,
    const struct ghost_rq *, struct ghost_ans *, const uint8_t **raw,
    size_t *rawlen, void **ref);
void ghost_memo_store(struct ghost_vcl *, struct ws *,
    const struct ghost_rq *, const struct ghost_ans *, const uint8_t *raw,
    size_t rawlen);
void ghost_ans_fit(const struct ghost_rq *, struct ghost_ans *);
int ghost_ans_resolve(struct ws *, const struct ghost_rq *,
    struct ghost_ans *);
void ghost_ban_hex(const char *host, char *hx);

#endif /* GHOST_REUSE_H */

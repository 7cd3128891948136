/*
 * Layer 2: memo keys, lookup and store of decisions (reuse.c). See
 * ghost.h.
 */

#ifndef GHOST_REUSE_H
#define GHOST_REUSE_H

struct ghost_rq;

/*
 * The memoised answer for a request in *ap: with ref, the memo entry's
 * own (read only, held until ghost_memo_unref(*ref)); without, a copy
 * in *a (*ap is a).
 */
int ghost_memo_find(struct ghost_vcl *, struct ws *, uint64_t gen,
    const struct ghost_rq *, struct ghost_ans *a,
    const struct ghost_ans **ap, const uint8_t **raw, size_t *rawlen,
    void **ref);
void ghost_memo_store(struct ghost_vcl *, struct ws *,
    const struct ghost_rq *, const struct ghost_ans *, const uint8_t *raw,
    size_t rawlen);
void ghost_ans_fit(const struct ghost_rq *, struct ghost_ans *);
int ghost_ans_resolve(struct ws *, const struct ghost_rq *,
    struct ghost_ans *);

/* Has ghost_ans_resolve() anything to change in a (a path edit)? */
static inline int
ghost_ans_edits(const struct ghost_ans *a)
{
	return (a->pe && (a->o == GHOST_ROUTE || a->o == GHOST_REDIRECT));
}
void ghost_ban_hex(const char *host, char *hx);

#endif /* GHOST_REUSE_H */

/*
 * Layer 1: the memo table and ghostd's state file (memo.c). See ghost.h.
 */

#ifndef GHOST_MEMO_H
#define GHOST_MEMO_H

uint64_t ghost_hash(const void *, size_t, uint64_t seed);
int ghost_memo_new(struct ghost_vcl *, unsigned slots);
void ghost_memo_free(struct ghost_vcl *);
int ghost_memo_lookup(struct ghost_vcl *, struct ws *, uint64_t gen,
    const char *key, size_t klen, uint8_t *buf, size_t bl,
    const uint8_t **val, size_t *vlen);
/* Called on the value's copy in the entry before it is published. */
typedef void ghost_memo_fix_f(uint8_t *val, size_t vlen);
void ghost_memo_insert(struct ghost_vcl *, uint64_t gen, const char *key,
    size_t klen, const uint8_t *val, size_t vlen, ghost_memo_fix_f *);
void *ghost_memo_ref(struct ghost_vcl *, uint64_t gen, const char *key,
    size_t klen, const uint8_t **val, size_t *vlen);
void ghost_memo_unref(void *);
int ghost_state_read(struct ghost_vcl *, double now, uint64_t *gen,
    uint64_t *origin);
int ghost_fetch_plain(struct ghost_vcl *);
void ghost_state_unmap(struct ghost_vcl *);

#endif /* GHOST_MEMO_H */

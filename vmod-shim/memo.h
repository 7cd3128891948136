/*
 * Layer 1: the memo table and ghostd's state file (memo.c). See ghost.h.
 */

#ifndef GHOST_MEMO_H
#define GHOST_MEMO_H

#include <endian.h>

uint64_t ghost_hash(const void *, size_t, uint64_t seed);
int ghost_memo_new(struct ghost_vcl *, unsigned slots);
void ghost_memo_free(struct ghost_vcl *);
/* h: the key's hash, the caller's (reuse.c) */
int ghost_memo_lookup(struct ghost_vcl *, struct ws *, uint64_t gen,
    const char *key, size_t klen, uint64_t h, uint8_t *buf, size_t bl,
    const uint8_t **val, size_t *vlen);
/* Called on the value's copy in the entry before it is published. */
typedef void ghost_memo_fix_f(uint8_t *val, size_t vlen);
void ghost_memo_insert(struct ghost_vcl *, uint64_t gen, const char *key,
    size_t klen, uint64_t h, const uint8_t *val, size_t vlen, ghost_memo_fix_f *);
void *ghost_memo_ref(struct ghost_vcl *, uint64_t gen, const char *key,
    size_t klen, uint64_t h, const uint8_t **val, size_t *vlen);
void ghost_memo_unref(void *);

/*
 * An entry's header (memo.c), in front of its key: the count of
 * references, and two side words a holder of a reference (ghost_memo_ref())
 * may cache something in that the entry's value leads to (backend.c: the
 * backend map's entry of a memoised answer's endpoint), under a sequence
 * count of their own: odd while a writer is at them. Readers never wait
 * and writers never wait: a read that sees a writer, or a write that finds
 * another at it, is skipped (the caller takes its slow path). On the same
 * cache line as the key's first bytes, which the lookup has just compared.
 */
struct ghost_memo_hdr {
	uint32_t		refs;
	uint32_t		seq;
	uint64_t		side[2];
};

static inline struct ghost_memo_hdr *
ghost_memo_hdr(void *ref)
{
	return ((struct ghost_memo_hdr *)(void *)((uint8_t *)ref -
	    sizeof(struct ghost_memo_hdr)));
}

/* The side words of the entry ref into w, and 1; 0: never written, or a
 * writer is at them. */
static inline int
ghost_memo_side_get(void *ref, uint64_t w[2])
{
	struct ghost_memo_hdr *h = ghost_memo_hdr(ref);
	uint32_t s;

	s = __atomic_load_n(&h->seq, __ATOMIC_ACQUIRE);
	w[0] = __atomic_load_n(&h->side[0], __ATOMIC_RELAXED);
	w[1] = __atomic_load_n(&h->side[1], __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return (GHOST_LIKELY((s & 1) == 0 && s != 0) &&
	    __atomic_load_n(&h->seq, __ATOMIC_RELAXED) == s);
}

/* Write the side words of the entry ref, unless another writer is at
 * them. */
static inline void
ghost_memo_side_put(void *ref, uint64_t w0, uint64_t w1)
{
	struct ghost_memo_hdr *h = ghost_memo_hdr(ref);
	uint32_t s;

	s = __atomic_load_n(&h->seq, __ATOMIC_RELAXED);
	if ((s & 1) || !__atomic_compare_exchange_n(&h->seq, &s, s + 1, 0,
	    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&h->side[0], w0, __ATOMIC_RELAXED);
	__atomic_store_n(&h->side[1], w1, __ATOMIC_RELAXED);
	/* (0 would read as never written: skip it on a wrap) */
	__atomic_store_n(&h->seq, s + 2 != 0 ? s + 2 : 2, __ATOMIC_RELEASE);
}

/*
 * A host's usual deps record (the Host and the path, or the Host alone)
 * as the host table keeps it (memo.c): what building an answer's key
 * needs, found without a lock or a reference.
 */
struct ghost_vh {
	int			p;		/* the path in the key */
	uint32_t		nsl;
	int32_t			sl[16];		/* scope lengths, ascending */
};
int ghost_memo_vh_get(const struct ghost_vcl *, uint64_t gen, uint64_t h,
    const char *k, size_t kl, struct ghost_vh *);
void ghost_memo_vh_put(struct ghost_vcl *, uint64_t gen, uint64_t h,
    const char *k, size_t kl, int p, const int32_t *sl, uint32_t nsl);
int ghost_state_read(struct ghost_vcl *, double now, uint64_t *gen,
    uint64_t *origin);
int ghost_fetch_plain(struct ghost_vcl *);

/*
 * The client side's look at the state file (ghost.recv_action(), hash(),
 * prepare() run it on every request, cache hits included): with the file
 * mapped and its heartbeat fresh, gen, origin_gen and fetch_gen (words 1,
 * 5 and 6) in one read, inline, and 1; 0 otherwise, and the caller asks
 * ghost_state_read() / ghost_fetch_plain(), which handle the rest (a
 * stale heartbeat, the first mapping). Where it answers it answers as
 * they do: ghost_state_read() returns 1 with the file's gen (seen_gen
 * plays no part while the heartbeat is fresh), ghost_fetch_plain() is
 * ghost_st_plain(). Three calls and their lines cost ~12 simulated
 * instruction-cache misses per request (docs/benchmarks.md, seventh
 * session).
 */
struct ghost_st_peek {
	uint64_t		gen;
	uint64_t		og;	/* origin_gen */
	uint64_t		fg;	/* fetch_gen */
};

#define GHOST_ST_HB_MAX	1000	/* ms */

/*
 * A heartbeat (ms) is fresh at nowms when it is at most GHOST_ST_HB_MAX
 * old, and not more than that in the future (a clock stepped back).
 */
static inline int
ghost_st_fresh(uint64_t hb, uint64_t nowms)
{
	return (hb + GHOST_ST_HB_MAX >= nowms && hb <= nowms + GHOST_ST_HB_MAX);
}

static inline int
ghost_state_peek(const struct ghost_vcl *gv, double now,
    struct ghost_st_peek *p)
{
	const volatile uint64_t *map;
	/* through int64_t: one conversion instruction, not the unsigned
	 * one's test and second path (now in ms is far below 2^63) */
	uint64_t hb, nowms = (uint64_t)(int64_t)(now * 1e3);

	map = __atomic_load_n(&gv->st_map, __ATOMIC_ACQUIRE);
	if (GHOST_UNLIKELY(map == NULL))
		return (0);
	p->gen = le64toh(__atomic_load_n(&map[1], __ATOMIC_ACQUIRE));
	hb = le64toh(__atomic_load_n(&map[2], __ATOMIC_ACQUIRE));
	p->og = le64toh(__atomic_load_n(&map[5], __ATOMIC_ACQUIRE));
	p->fg = le64toh(__atomic_load_n(&map[6], __ATOMIC_ACQUIRE));
	return (GHOST_LIKELY(ghost_st_fresh(hb, nowms)));
}

/*
 * ghost_fetch_plain() on what ghost_state_peek() read. Bitwise, without
 * branches: the compiler laid the usual answer (1) out of line, a code
 * line more per client-side call (docs/benchmarks.md, eighth session).
 */
static inline int
ghost_st_plain(const struct ghost_vcl *gv, const struct ghost_st_peek *p)
{
	return ((p->fg != 0) & (p->fg == p->gen) &
	    (__atomic_load_n(&gv->seen_gen, __ATOMIC_RELAXED) <= p->gen));
}

/* ghost_fetch_plain(), inline (the same body). */
static inline int
ghost_fetch_plain_i(const struct ghost_vcl *gv)
{
	const volatile uint64_t *map;
	struct ghost_st_peek p = { 0 };

	map = __atomic_load_n(&gv->st_map, __ATOMIC_ACQUIRE);
	if (GHOST_LIKELY(map != NULL)) {
		p.gen = le64toh(__atomic_load_n(&map[1], __ATOMIC_ACQUIRE));
		p.fg = le64toh(__atomic_load_n(&map[6], __ATOMIC_ACQUIRE));
	}
	return (ghost_st_plain(gv, &p));
}
void ghost_state_unmap(struct ghost_vcl *);

#endif /* GHOST_MEMO_H */

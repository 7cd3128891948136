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


/*
 * The memo's table (memo.c), here so that a fetch's lookup (reuse.c
 * ghost_memo_find()) runs in line: ghost_memo_ref() and
 * ghost_memo_vh_get() were two calls with their own prologues, checks
 * and argument moves (~60 instructions, ~5 code lines per long-tail
 * fetch: docs/benchmarks.md, eleventh session). Only memo.c and these
 * inline functions touch the table.
 */
#define MEMO_WAYS	4	/* slots per set */

#define VH_WORDS	24
#define VH_META		2
#define VH_SL16		3
#define VH_KEY		4
#define VH_SL		16
#define VH_KEY_MAX	96
#define VH_MIN		16
#define VH_MAX		(1U << 16)
#define VH_SHORT	(1ULL << 48)
#define VH_USED		(1ULL << 63)

struct memo_slot {
	uint64_t		hash;
	uint64_t		gen;
	uint32_t		klen;
	uint32_t		vlen;		/* in a set's first slot, bit 30:
						   the set's lock (MEMO_LOCKED) */
	uint8_t			*data;		/* key, then value; MEMO_HDR
						   bytes before it: struct
						   ghost_memo_hdr (memo.h) */
};

/* vlen <= GHOST_MAX_FRAME < 2^30: bit 30 is free (gcc takes bit 30 with
 * one "lock bts", bit 31 with a compare-and-swap loop) */
#define MEMO_LOCKED	(1U << 30)
_Static_assert(GHOST_MAX_FRAME < MEMO_LOCKED, "memo: vlen's lock bit");

/*
 * An entry's memory, 64-byte aligned: its header (struct ghost_memo_hdr:
 * the count of references, the side words), the key, then
 * the value at the next 64-byte boundary (memo_voff()), so that a value
 * read in place (ghost_memo_ref(): a memoised answer, reuse.c) is aligned
 * for its struct and its first fields share a cache line.
 */
#define MEMO_HDR	sizeof(struct ghost_memo_hdr)
#define MEMO_ALIGN	64

/* The value's offset from the key. */
static inline size_t
memo_voff(size_t klen)
{
	return (((MEMO_HDR + klen + MEMO_ALIGN - 1) & ~(size_t)(MEMO_ALIGN -
	    1)) - MEMO_HDR);
}

static inline uint32_t *
memo_refs(uint8_t *data)
{
	return (&ghost_memo_hdr(data)->refs);
}

void ghost_memo_entry_free(uint8_t *data);	/* (memo.c) */

/* Drop one reference to an entry's memory (data: its key). */
static GHOST_INLINE void
memo_drop(uint8_t *data)
{
	if (data != NULL && GHOST_UNLIKELY(__atomic_sub_fetch(memo_refs(data),
	    1, __ATOMIC_ACQ_REL) == 0))
		ghost_memo_entry_free(data);
}

/*
 * A set's lock: a spinlock, bit 30 (MEMO_LOCKED) of the set's first
 * slot's vlen word, so on the line the lookup reads first anyway (the
 * slots of ways 0 and 1; a lock of its own was one more cold line per
 * long-tail fetch, 0.5 L2 data read misses with 64 stripes: docs/
 * benchmarks.md, eleventh session). It is held only for a scan of the 4
 * slots and a pointer swap or a reference taken (or, for a copy, the
 * copy of one value): a pthread mutex cost ~60 instructions per lookup
 * for its lock and unlock calls, this ~5. Only a holder writes that
 * word (an insert into the first slot keeps the bit set, the unlock
 * clears it); the others only set the bit, which is set while held, so
 * the unlock's plain store loses nothing. A waiter spins briefly, then
 * yields the CPU (the holder may have been preempted).
 */
void ghost_memo_lock_wait(uint32_t *);	/* (memo.c) */

static GHOST_INLINE void
memo_lock(struct memo_slot *set)
{
	if (GHOST_UNLIKELY(__atomic_fetch_or(&set->vlen, MEMO_LOCKED,
	    __ATOMIC_ACQUIRE) & MEMO_LOCKED))
		ghost_memo_lock_wait(&set->vlen);
}

static GHOST_INLINE void
memo_unlock(struct memo_slot *set)
{
	__atomic_store_n(&set->vlen, __atomic_load_n(&set->vlen,
	    __ATOMIC_RELAXED) & ~MEMO_LOCKED, __ATOMIC_RELEASE);
}

/*
 * A slot's vlen, without the lock bit (read with the lock held; an atomic
 * load because waiters set the bit in the first slot's word meanwhile).
 */
static GHOST_INLINE uint32_t
memo_vlen(const struct memo_slot *s)
{
	return (__atomic_load_n(&s->vlen, __ATOMIC_RELAXED) & ~MEMO_LOCKED);
}

struct ghost_memo {
	unsigned		magic;
#define GHOST_MEMO_MAGIC	0x3e30a11c
	unsigned		mask;
	struct memo_slot	*slot;
	uint64_t		(*vh)[VH_WORDS];	/* the host table */
	void			*vh_mem;		/* its allocation */
	unsigned		vh_mask;
	unsigned		vh_shift;	/* 64 - log2(vh_mask + 1) */
};

/* The set of hash h: its first slot (which holds its lock). */
static GHOST_INLINE struct memo_slot *
memo_set(struct ghost_memo *m, uint64_t h)
{
	return (&m->slot[(unsigned)h & m->mask & ~(MEMO_WAYS - 1U)]);
}

/*
 * Equal bytes? Inline, 8 at a time: a key is tens of bytes, and libc's
 * memcmp() is several code lines that nothing else on a fetch keeps in
 * the cache.
 */
static GHOST_INLINE int
memo_eq(const uint8_t *a, const char *b, size_t l)
{
	uint64_t x, y;

	size_t n = l;

	for (; l >= 8; a += 8, b += 8, l -= 8) {
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		if (x != y)
			return (0);
	}
	if (l > 0 && n >= 8) {
		/* the last 8 bytes, overlapping those compared */
		memcpy(&x, a + l - 8, 8);
		memcpy(&y, b + l - 8, 8);
		return (x == y);
	}
	for (; l > 0; a++, b++, l--)
		if (*a != (uint8_t)*b)
			return (0);
	return (1);
}

static GHOST_INLINE int
memo_same(const struct memo_slot *s, uint64_t h, const char *key,
    size_t klen)
{
	return (s->data != NULL && s->hash == h && s->klen == klen &&
	    memo_eq(s->data, key, klen));
}

/*
 * The slot of key (h: its hash, the caller's: reuse.c) under generation
 * gen, or NULL; either way with the lock of its set held (*set: to
 * unlock).
 */
static GHOST_INLINE struct memo_slot *
memo_slot(struct ghost_vcl *gv, uint64_t gen, const char *key, size_t klen,
    uint64_t h, struct memo_slot **set)
{
	struct ghost_memo *m;
	struct memo_slot *s;
	unsigned w;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	m = gv->memo;
	CHECK_OBJ_NOTNULL(m, GHOST_MEMO_MAGIC);
	s = *set = memo_set(m, h);
	memo_lock(s);
	/* not unrolled: the key compare's code once (fewer code lines) */
#pragma GCC unroll 1
	for (w = 0; w < MEMO_WAYS; w++, s++) {
		if (s->gen != gen || s->data == NULL || s->hash != h ||
		    s->klen != klen)
			continue;
		/*
		 * The value's first line, asked for before the key compare
		 * reads the key's: on a long tail both are cold (in DRAM),
		 * and their misses now overlap instead of following each
		 * other (the caller reads the value next: a copy, or a
		 * fetch's answer in place, memo_prefetch() in reuse.c). A
		 * prefetch never faults; the slot's data is stable while
		 * the set's lock is held.
		 */
		__builtin_prefetch(s->data + memo_voff(klen));
		if (memo_eq(s->data, key, klen))
			return (s);
	}
	return (NULL);
}

/*
 * The entry of key under generation gen, referenced (nothing copied):
 * *val points into the entry's memory until ghost_memo_unref(returned
 * handle). NULL: none.
 */
static GHOST_INLINE void *
ghost_memo_ref(struct ghost_vcl *gv, uint64_t gen, const char *key,
    size_t klen, uint64_t h, const uint8_t **val, size_t *vlen)
{
	struct memo_slot *s, *set;
	uint8_t *d = NULL;

	s = memo_slot(gv, gen, key, klen, h, &set);
	if (s != NULL) {
		d = s->data;
		(void)__atomic_add_fetch(memo_refs(d), 1, __ATOMIC_RELAXED);
		*val = d + memo_voff(klen);
		*vlen = memo_vlen(s);
	}
	memo_unlock(set);
	return (d);
}

static GHOST_INLINE void
ghost_memo_unref(void *ref)
{
	memo_drop(ref);
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
/* Word i of key k (kl bytes), zero-padded. */
static inline uint64_t
vh_word(const char *k, size_t kl, size_t i)
{
	uint64_t v = 0;

	memcpy(&v, k + 8 * i, kl - 8 * i < 8 ? kl - 8 * i : 8);
	return (v);
}

/*
 * The key k (kl bytes, at most VH_KEY_MAX) equals the zero-padded words
 * at w: 8 bytes at a time, the last word read as the 8 bytes that end the
 * key, shifted (no memcpy() call of a variable length).
 */
static GHOST_INLINE int
vh_same(const uint64_t *w, const char *k, size_t kl)
{
	uint64_t v;
	size_t l = kl;

	for (; l >= 8; k += 8, l -= 8, w++) {
		memcpy(&v, k, 8);
		if (__atomic_load_n(w, __ATOMIC_RELAXED) != v)
			return (0);
	}
	if (l == 0)
		return (1);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (kl >= 8) {
		memcpy(&v, k + l - 8, 8);
		v >>= 8 * (8 - l);
	} else
#endif
		v = vh_word(k, l, 0);
	return (__atomic_load_n(w, __ATOMIC_RELAXED) == v);
}

/*
 * The host table's index of key k (kl bytes: a host's deps key, the raw
 * Host): a hash of its own, a few instructions, so that a fetch can read
 * the entry before it builds and hashes the answer's key (reuse.c
 * memo_find_host()): 8 bytes at a time, the last word read as the 8
 * bytes that end the key, shifted, each word multiplied in, then the
 * product's high half folded into its low half and multiplied again,
 * and the index taken from the top bits (vh_shift). A product's bit i
 * depends on the factors' bits 0 to i only: without the fold, hosts
 * that differ only in their last bytes (a port, a short name: the last
 * word's high bits) reached few of the top bits and took ~55 % of the
 * slots a uniform index fills (test/cshim/memo_test.c: 921 and 833 of
 * 1,582 for 2,000 hosts in 4,096 slots; 1,589 and 1,589 with it): ~4
 * instructions per fetch (a move, a shift, an xor, a multiply).
 */
static GHOST_INLINE unsigned
ghost_vh_index(const struct ghost_memo *m, const char *k, size_t kl)
{
	const char *e;
	uint64_t h = kl, v = 0;
	size_t i;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (GHOST_LIKELY(kl >= 8)) {
		/* e: the last 8 bytes; the loop stops 1 to 8 bytes short */
		for (e = k + kl - 8; k < e; k += 8) {
			memcpy(&v, k, 8);
			h = (h ^ v) * 0xff51afd7ed558ccdULL;
		}
		memcpy(&v, e, 8);
		v >>= 8 * (size_t)(k - e);
	} else
#endif
	for (; kl > 0; k += i, kl -= i) {
		i = kl < 8 ? kl : 8;
		v = vh_word(k, i, 0);
		if (kl > 8)
			h = (h ^ v) * 0xff51afd7ed558ccdULL;
	}
	h = (h ^ v) * 0xff51afd7ed558ccdULL;
	h = (h ^ (h >> 31)) * 0xff51afd7ed558ccdULL;
	return ((unsigned)(h >> m->vh_shift));
}

/*
 * The host table's entry of key k (a host's deps key, reuse.c: its index
 * ghost_vh_index()) under generation gen into *o, and 1; 0: none (then
 * the deps record in the memo tells).
 */
static GHOST_INLINE int
ghost_memo_vh_get(const struct ghost_vcl *gv, uint64_t gen,
    const char *k, size_t kl, struct ghost_vh *o)
{
	const struct ghost_memo *m = gv->memo;
	uint64_t *e, s, meta, w;

	if (GHOST_UNLIKELY(kl > VH_KEY_MAX))
		return (0);
	e = m->vh[ghost_vh_index(m, k, kl)];
	s = __atomic_load_n(&e[0], __ATOMIC_ACQUIRE);
	meta = __atomic_load_n(&e[VH_META], __ATOMIC_RELAXED);
	if ((s & 1) || __atomic_load_n(&e[1], __ATOMIC_RELAXED) != gen ||
	    (meta & (VH_USED | 0xffffffffULL)) != (VH_USED | kl) ||
	    !vh_same(&e[VH_KEY], k, kl))
		return (0);
	/* (racy, like every read here: the sequence tells) */
	if (GHOST_LIKELY(meta & VH_SHORT)) {
		/* the first nsl (at most 4) are read: the rest unused */
		w = __atomic_load_n(&e[VH_SL16], __ATOMIC_RELAXED);
		o->sl[0] = (int32_t)(w & 0xffff);
		o->sl[1] = (int32_t)((w >> 16) & 0xffff);
		o->sl[2] = (int32_t)((w >> 32) & 0xffff);
		o->sl[3] = (int32_t)(w >> 48);
	} else
		memcpy(o->sl, &e[VH_SL], sizeof o->sl);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&e[0], __ATOMIC_RELAXED) != s)
		return (0);
	o->p = (int)((meta >> 32) & 1);
	o->nsl = (uint32_t)((meta >> 40) & 0xff);
	return (1);
}

void ghost_memo_vh_put(struct ghost_vcl *, uint64_t gen,
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

/*
 * Layer 1: decision reuse: a bounded, 4-way set-associative memo per VCL with
 * a spinlock per set (a bit in the set's first line), and ghostd's state file
 * (generation + heartbeat), mapped read only. An entry is used only while its generation equals the state
 * file's and the heartbeat is at most 1 s old (docs/protocol.md).
 *
 * Values are copied into the task workspace under the set's lock, so an
 * entry can be replaced (and freed) at any time after the lock is gone;
 * or, for the answers a fetch uses (ghost_memo_ref()), referenced: each
 * entry's memory starts with a count of references (1 for the table, +1
 * for each task holding it), and is freed by whoever drops the last one.
 */

#include "config.h"

#include <endian.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "cache/cache.h"

#include "msgpack.h"
#include "ghost.h"
#include "memo.h"

#define MEMO_MAX_SLOTS	(1U << 22)
#define STATE_SIZE	64

/*
 * The host table: for each host (its deps key, reuse.c) whose deps record
 * is the usual one (the Host and the path, or the Host alone), what a
 * fetch needs of it to build the answer's key: "path in the key", and the
 * scope lengths. Direct-mapped (memo.h ghost_vh_index()), 192 bytes, no
 * allocation per entry: written in place under a sequence count (odd
 * while a writer is at it) and read without lock or reference, never
 * waiting (a busy or changed slot is a miss: the caller looks up the deps
 * record in the memo, as for a host not in the table). Words: 0 the
 * sequence, 1 the generation, 2 the key's length (bits 0-31), "path in
 * the key" (32), the number of scope lengths (40-47), "short" (48), "in
 * use" (63); 3 with "short" (at most 4 scope lengths, each 0..65535) the
 * scope lengths as 16-bit fields; 4-15 the key, zero-padded; 16-23 the
 * scope lengths (int32). So a host of up to 32 bytes with a few short
 * scopes is read from the entry's first cache line only.
 */
#define STATE_MAGIC	"GHOSTST1"

/* An entry's last reference dropped (memo.h memo_drop()): its memory. */
void GHOST_COLD
ghost_memo_entry_free(uint8_t *data)
{
	free(data - MEMO_HDR);
}

/*
 * A set's lock (memo.h memo_lock()) held by another: spin briefly, then
 * yield the CPU (the holder may have been preempted).
 */
void GHOST_COLD
ghost_memo_lock_wait(uint32_t *l)
{
	unsigned n = 0;

	do {
		while (__atomic_load_n(l, __ATOMIC_RELAXED) & MEMO_LOCKED) {
			if (++n < 128) {
#if defined(__x86_64__) || defined(__i386__)
				__builtin_ia32_pause();
#endif
			} else {
				(void)sched_yield();
				n = 0;
			}
		}
	} while (__atomic_fetch_or(l, MEMO_LOCKED, __ATOMIC_ACQUIRE) &
	    MEMO_LOCKED);
}

/* 64-bit hash, 8 bytes at a time (multiply-xorshift). */
uint64_t GHOST_HOT
ghost_hash(const void *p, size_t l, uint64_t seed)
{
	const uint8_t *b = p;
	uint64_t h = seed ^ (0x9e3779b97f4a7c15ULL * (l + 1)), v;

	while (l >= 8) {
		memcpy(&v, b, 8);
		h = (h ^ v) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
		b += 8;
		l -= 8;
	}
	v = 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (l > 0 && b != p) {
		/* the same value: the 8 bytes that end the input, shifted
		   (no memcpy() call of a variable length) */
		memcpy(&v, b + l - 8, 8);
		v >>= 8 * (8 - l);
	} else
#endif
		memcpy(&v, b, l);
	h = (h ^ v) * 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 29;
	h *= 0xff51afd7ed558ccdULL;
	return (h ^ (h >> 32));
}

int
ghost_memo_new(struct ghost_vcl *gv, unsigned slots)
{
	struct ghost_memo *m;
	unsigned n = 1, i;
	void *p;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	ghost_memo_free(gv);
	if (slots == 0)
		return (0);
	if (slots > MEMO_MAX_SLOTS)
		slots = MEMO_MAX_SLOTS;
	while (n < slots || n < MEMO_WAYS)
		n <<= 1;
	ALLOC_OBJ(m, GHOST_MEMO_MAGIC);
	if (m == NULL)
		return (-1);
	/*
	 * A set (4 slots, 128 bytes) on two whole cache lines, not three:
	 * calloc() of a large array returns a page + 16 bytes.
	 */
	if (posix_memalign(&p, MEMO_ALIGN, (size_t)n * sizeof *m->slot)) {
		FREE_OBJ(m);
		return (-1);
	}
	m->slot = p;
	memset(m->slot, 0, (size_t)n * sizeof *m->slot);
	m->mask = n - 1;
	/* a host takes at least two slots (record, answer): 1/16 of them */
	for (i = VH_MIN; i < n / 16 && i < VH_MAX; i <<= 1)
		continue;
	/* calloc: paged in where used; aligned to a cache line by hand */
	m->vh_mem = calloc((size_t)i + 1, sizeof *m->vh);
	if (m->vh_mem == NULL) {
		free(m->slot);
		FREE_OBJ(m);
		return (-1);
	}
	m->vh = (void *)(((uintptr_t)m->vh_mem + MEMO_ALIGN - 1) &
	    ~(uintptr_t)(MEMO_ALIGN - 1));
	m->vh_mask = i - 1;
	m->vh_shift = 64 - (unsigned)__builtin_ctz(i);
	gv->memo = m;
	return (0);
}

void
ghost_memo_free(struct ghost_vcl *gv)
{
	struct ghost_memo *m;
	unsigned i;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	m = gv->memo;
	gv->memo = NULL;
	if (m == NULL)
		return;
	CHECK_OBJ(m, GHOST_MEMO_MAGIC);
	for (i = 0; i <= m->mask; i++)
		memo_drop(m->slot[i].data);
	free(m->slot);
	free(m->vh_mem);
	FREE_OBJ(m);
}

int
ghost_memo_lookup(struct ghost_vcl *gv, struct ws *ws, uint64_t gen,
    const char *key, size_t klen, uint64_t h, uint8_t *buf, size_t bl,
    const uint8_t **val, size_t *vlen)
{
	struct memo_slot *s, *set;
	uint32_t vl;
	int hit = 0;

	s = memo_slot(gv, gen, key, klen, h, &set);
	if (s != NULL) {
		vl = memo_vlen(s);
		if (buf != NULL && vl <= bl) {
			memcpy(buf, s->data + memo_voff(klen), vl);
			*val = buf;
		} else
			*val = WS_Copy(ws, s->data + memo_voff(klen),
			    (int)vl);
		*vlen = vl;
		hit = (*val != NULL);
	}
	memo_unlock(set);
	return (hit);
}

void
ghost_memo_insert(struct ghost_vcl *gv, uint64_t gen, const char *key,
    size_t klen, uint64_t h, const uint8_t *val, size_t vlen,
    ghost_memo_fix_f *fix)
{
	struct ghost_memo *m;
	struct memo_slot *set, *s;
	uint8_t *d, *old;
	void *p;
	unsigned w;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	m = gv->memo;
	CHECK_OBJ_NOTNULL(m, GHOST_MEMO_MAGIC);
	if (klen + vlen > GHOST_MAX_FRAME)
		return;
	if (posix_memalign(&p, MEMO_ALIGN, MEMO_HDR + memo_voff(klen) + vlen))
		return;
	d = (uint8_t *)p + MEMO_HDR;
	memset(p, 0, MEMO_HDR);	/* no side words (seq 0) */
	*memo_refs(d) = 1;	/* the table's */
	memcpy(d, key, klen);
	memcpy(d + memo_voff(klen), val, vlen);
	if (fix != NULL)
		fix(d + memo_voff(klen), vlen);
	set = memo_set(m, h);
	memo_lock(set);
	/* The same key, else an empty or outdated slot, else one by hash. */
	s = NULL;
	for (w = 0; w < MEMO_WAYS && s == NULL; w++)
		if (memo_same(&set[w], h, key, klen))
			s = &set[w];
	for (w = 0; w < MEMO_WAYS && s == NULL; w++)
		if (set[w].data == NULL || set[w].gen != gen)
			s = &set[w];
	if (s == NULL)
		s = &set[(h >> 60) % MEMO_WAYS];
	old = s->data;
	s->data = d;
	s->hash = h;
	s->gen = gen;
	s->klen = (uint32_t)klen;
	/* (the first slot's keeps the lock bit: held; atomic: waiters set
	   that bit meanwhile) */
	__atomic_store_n(&s->vlen, (uint32_t)vlen | (s == set ? MEMO_LOCKED :
	    0), __ATOMIC_RELAXED);
	memo_unlock(set);
	memo_drop(old);
}

/* ---- the host table ------------------------------------------------ */

/*
 * Enter key k's usual deps record (p: path in the key; nsl scope lengths
 * at sl, ascending) under generation gen, replacing
 * whatever the slot held. Not when the key is too long or another writer
 * has the slot: the deps record in the memo serves then.
 */
void
ghost_memo_vh_put(struct ghost_vcl *gv, uint64_t gen,
    const char *k, size_t kl, int p, const int32_t *sl, uint32_t nsl)
{
	struct ghost_memo *m;
	uint64_t *e, s, w, w16 = 0, shrt;
	size_t i;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	m = gv->memo;
	CHECK_OBJ_NOTNULL(m, GHOST_MEMO_MAGIC);
	if (kl > VH_KEY_MAX || nsl > (VH_WORDS - VH_SL) * 2)
		return;
	shrt = nsl <= 4 ? VH_SHORT : 0;
	for (i = 0; i < nsl && shrt; i++) {
		if (sl[i] < 0 || sl[i] > 0xffff)
			shrt = 0;
		else
			w16 |= (uint64_t)sl[i] << (16 * i);
	}
	e = m->vh[ghost_vh_index(m, k, kl)];
	s = __atomic_load_n(&e[0], __ATOMIC_RELAXED);
	if ((s & 1) || !__atomic_compare_exchange_n(&e[0], &s, s + 1, 0,
	    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&e[1], gen, __ATOMIC_RELAXED);
	__atomic_store_n(&e[VH_META], VH_USED | shrt | ((uint64_t)nsl << 40) |
	    ((uint64_t)(p != 0) << 32) | kl, __ATOMIC_RELAXED);
	__atomic_store_n(&e[VH_SL16], w16, __ATOMIC_RELAXED);
	for (i = 0; i < VH_WORDS - VH_SL; i++) {
		w = 0;
		if (2 * i < nsl)
			memcpy(&w, sl + 2 * i, 2 * i + 1 < nsl ? 8 : 4);
		__atomic_store_n(&e[VH_SL + i], w, __ATOMIC_RELAXED);
	}
	for (i = 0; i < VH_SL - VH_KEY; i++)
		__atomic_store_n(&e[VH_KEY + i], 8 * i < kl ?
		    vh_word(k, kl, i) : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&e[0], s + 2, __ATOMIC_RELEASE);
}

/* ---- state file ----------------------------------------------------- */

static uint64_t
st_load(const volatile uint64_t *map, unsigned i)
{
	return (le64toh(__atomic_load_n(&map[i], __ATOMIC_ACQUIRE)));
}

/*
 * (Re)map the state file if it is absent or another file now. st_lock
 * is held for writing (it orders the writers only). Requests read the
 * mapping without a lock (~65 instructions per read, three or four reads
 * per fetch): so the mapping never goes away under them, a new file is
 * mapped over the old one at the same address (MAP_FIXED replaces a
 * mapping in one step: a reader sees the old file or the new one), and
 * gv->st_map is set once. Unmapped only when no request can run
 * (ghost_state_unmap()).
 */
static void
st_open(struct ghost_vcl *gv)
{
	struct stat st;
	char magic[8];
	void *p, *at;
	int fd;

	fd = open(gv->state_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || st.st_size < STATE_SIZE ||
	    (gv->st_map != NULL && (uint64_t)st.st_ino == gv->st_ino &&
	    (uint64_t)st.st_dev == gv->st_dev) ||
	    pread(fd, magic, sizeof magic, 0) != (ssize_t)sizeof magic ||
	    memcmp(magic, STATE_MAGIC, 8)) {
		(void)close(fd);
		return;
	}
	at = TRUST_ME(gv->st_map);
	p = mmap(at, STATE_SIZE, PROT_READ, MAP_SHARED |
	    (at != NULL ? MAP_FIXED : 0), fd, 0);
	(void)close(fd);
	if (p == MAP_FAILED)
		return;	/* MAP_FIXED failed: the old mapping stays */
	assert(at == NULL || p == at);
	gv->st_ino = (uint64_t)st.st_ino;
	gv->st_dev = (uint64_t)st.st_dev;
	if (at == NULL)
		__atomic_store_n(&gv->st_map, p, __ATOMIC_RELEASE);
}

/* The mapping, NULL before the first (read without a lock: st_open()). */
static const volatile uint64_t *
st_get(const struct ghost_vcl *gv)
{
	return (__atomic_load_n(&gv->st_map, __ATOMIC_ACQUIRE));
}

/*
 * ghost_state_read() when the heartbeat is not fresh or the file not
 * mapped yet: read again, (re)map the file at most once a second, and
 * the generation to trust while ghostd is away. Out of line (GHOST_COLD):
 * a request with ghostd alive reads three words and returns.
 */
static int GHOST_COLD
state_read_slow(struct ghost_vcl *gv, uint64_t nowms, uint64_t *gen,
    uint64_t *origin)
{
	const volatile uint64_t *map;
	uint64_t hb = 0, og = 0, seen;
	int mapped = 0, tries;

	for (tries = 0; tries < 2; tries++) {
		map = st_get(gv);
		mapped = map != NULL;
		if (mapped) {
			*gen = st_load(map, 1);
			hb = st_load(map, 2);
			og = st_load(map, 5);
		}
		if (origin != NULL)
			*origin = og;
		if (mapped && ghost_st_fresh(hb, nowms))
			return (1);
		if (tries > 0 || nowms < __atomic_load_n(&gv->st_next_try,
		    __ATOMIC_RELAXED))
			break;
		PTOK(pthread_rwlock_wrlock(&gv->st_lock));
		if (nowms >= gv->st_next_try) {
			__atomic_store_n(&gv->st_next_try, nowms + 1000,
			    __ATOMIC_RELAXED);
			st_open(gv);
		}
		PTOK(pthread_rwlock_unlock(&gv->st_lock));
	}
	if (!mapped)
		return (-1);
	seen = __atomic_load_n(&gv->seen_gen, __ATOMIC_RELAXED);
	if (seen > *gen)
		*gen = seen;
	return (0);
}

/*
 * The generation memoised decisions are trusted under: the state file's,
 * and 1 when its heartbeat is fresh. With a stale heartbeat (ghostd dead,
 * hung or restarting) the newer of the file's generation and that of the
 * last answer from any ghostd (gv->seen_gen), and 0: warm traffic keeps
 * its decisions while no ghostd can change the table. -1 when the state
 * file was never mapped: no reuse. *origin (when not NULL): the file's
 * origin_gen, which equals *gen when every decision of that generation
 * has the cache mode origin (else 0 or an older generation).
 *
 * Every request calls it (client and backend side): the fresh case is a
 * few contiguous code lines, the rest in state_read_slow().
 */
int GHOST_HOT
ghost_state_read(struct ghost_vcl *gv, double now, uint64_t *gen,
    uint64_t *origin)
{
	const volatile uint64_t *map;
	uint64_t hb, nowms = (uint64_t)(now * 1e3);

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	map = st_get(gv);
	if (GHOST_LIKELY(map != NULL)) {
		*gen = st_load(map, 1);
		hb = st_load(map, 2);
		if (GHOST_LIKELY(ghost_st_fresh(hb, nowms))) {
			if (origin != NULL)
				*origin = st_load(map, 5);
			return (1);
		}
	}
	return (state_read_slow(gv, nowms, gen, origin));
}

/*
 * 1 when the state file's fetch_gen (offset 48) equals its gen: no decision
 * of the live generation reads a request header varnishd rewrites or drops
 * on a fetch (route.Table.FetchPlain), so ghost.prepare() records none.
 * Not when a ghostd answered with a newer generation than the file holds
 * (seen_gen), nor before the file is mapped: then prepare() records as
 * for any table.
 */
int
ghost_fetch_plain(struct ghost_vcl *gv)
{
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	return (ghost_fetch_plain_i(gv));
}

/* Only when no request can run (VCL discarded or freed): see st_open(). */
void
ghost_state_unmap(struct ghost_vcl *gv)
{
	if (gv->st_map != NULL)
		(void)munmap(TRUST_ME(gv->st_map), STATE_SIZE);
	gv->st_map = NULL;
	gv->st_ino = 0;
	gv->st_dev = 0;
}

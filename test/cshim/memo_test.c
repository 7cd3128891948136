/*
 * The memo's host table (vmod-shim/memo.h ghost_vh_index(),
 * ghost_memo_vh_get(); memo.c ghost_memo_vh_put(); reuse.c
 * memo_find_host()) is used, on the shim's own code: memo.c and reuse.c
 * compiled as they are into the VMOD, only what varnishd provides
 * stubbed (the workspace: ws.c).
 *
 * A lookup that misses the host table falls back to the host's deps
 * record in the memo, which gives the same decisions, only slower: so no
 * test of decisions (VTC, e2e) fails when the host table is never hit
 * (a broken index passed them all). This test does:
 *
 *   1. an entry put for a Host is got back for that Host and generation,
 *      not for another generation, nor for another Host;
 *   2. distinct hosts spread over the table's slots (five families of
 *      2,000 hosts: the varying part at the start, in the middle, at the
 *      end of the Host, short hosts, addresses): an index that is
 *      constant, reads only part of the Host, uses half the table, or
 *      spreads keys that differ only in their last bytes badly fails;
 *   3. a scoped answer stored as a ghostd answer is (ghost_memo_store()),
 *      then looked up by a fetch (ghost_memo_find(), referenced, and as a
 *      copy) for another path under its scope: found with the host's
 *      deps record gone from the memo, i.e. through the host table only,
 *      and not found once the host table's entry is gone too (so the
 *      lookup really depends on it); the fallback (deps record, no host
 *      table entry) finds it too and puts the entry back; and the
 *      counter of host table misses (GHOST.memo_host_miss, which the VTC
 *      g200 reads) counts the lookups the table did not serve, only
 *      those.
 *
 * Built and run by make test-c. Timing plays no part (docs/benchmarks.md
 * "thirteenth session" for the host table's cost).
 */

#include "config.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "vrt_obj.h"

#include "msgpack.h"
#include "ghost.h"
#include "hdr.h"
#include "cachekey.h"
#include "answer.h"
#include "memo.h"
#include "rq.h"
#include "stats.h"
#include "reuse.h"

#define SLOTS		(1U << 16)	/* memo slots: a host table of 4,096 */
#define NHOST		2000
#define GEN		41

static int bad;

#define CHECK(c, ...)							\
	do {								\
		if (!(c)) {						\
			fprintf(stderr, "memo_test: %s:%d: %s: ",	\
			    __FILE__, __LINE__, #c);			\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			bad++;						\
		}							\
	} while (0)

/* ---- what varnishd and the rest of the shim provide ---------------- */

/* memo_store()'s ban line name (cachekey.c): none, tag_object() would */
const char *
ghost_norm_host(struct ws *ws, const char *host)
{
	(void)ws;
	(void)host;
	return (NULL);
}

/* the VMOD's counters and the listener: vmod_stubs.c */
#define HOST_MISS	(ghost_vsc->memo_host_miss)

/* ---- helpers ------------------------------------------------------- */

static char ws_space[64 * 1024];

static void
vcl_new(struct ghost_vcl *gv)
{
	INIT_OBJ(gv, GHOST_VCL_MAGIC);
	AZ(ghost_memo_new(gv, SLOTS));
	AN(gv->memo);
}

/* A request for host and url as ghost_rq_init() would see it. */
static void
rq_make(struct ghost_rq *q, struct http *hp, txt *hd, const char *host,
    const char *url)
{
	memset(hp, 0, sizeof *hp);
	hp->magic = HTTP_MAGIC;
	hp->hd = hd;
	hp->shd = HTTP_HDR_FIRST + 1;
	hp->nhd = HTTP_HDR_FIRST;
	memset(hd, 0, sizeof *hd * (HTTP_HDR_FIRST + 1));
	hd[HTTP_HDR_METHOD].b = TRUST_ME("GET");
	hd[HTTP_HDR_URL].b = TRUST_ME(url);
	INIT_OBJ(q, GHOST_RQ_MAGIC);
	q->hp = hp;
	q->host = host;
	q->url = url;
	q->method = "GET";
}

/*
 * A route answer as ghostd sends it: route rn, scope sc (the first sc
 * bytes of the path), deps {p: true, sl: [sl...]} (the usual deps: the
 * Host and the path).
 */
static size_t
ans_make(uint8_t *buf, size_t bl, uint64_t gen, const char *rn, uint64_t sc,
    const uint64_t *sl, unsigned nsl)
{
	struct mp_w w = { buf, buf + bl, 0 };
	unsigned i;

	mp_w_map(&w, 8);
	mp_w_cstr(&w, "t");
	mp_w_cstr(&w, "route");
	mp_w_cstr(&w, "gen");
	mp_w_uint(&w, gen);
	mp_w_cstr(&w, "o");
	mp_w_uint(&w, GHOST_ROUTE);
	mp_w_cstr(&w, "st");
	mp_w_uint(&w, 200);
	mp_w_cstr(&w, "rs");
	mp_w_cstr(&w, "OK");
	mp_w_cstr(&w, "rn");
	mp_w_cstr(&w, rn);
	mp_w_cstr(&w, "sc");
	mp_w_uint(&w, sc);
	mp_w_cstr(&w, "deps");
	mp_w_map(&w, 2);
	mp_w_cstr(&w, "p");
	mp_w_bool(&w, 1);
	mp_w_cstr(&w, "sl");
	mp_w_arr(&w, nsl);
	for (i = 0; i < nsl; i++)
		mp_w_uint(&w, sl[i]);
	AZ(w.err);
	return ((size_t)(w.p - buf));
}

/* Store the answer as route.c does after ghostd's answer. */
static void
store(struct ghost_vcl *gv, const char *host, const char *url, uint64_t gen,
    const char *rn, uint64_t sc, const uint64_t *sl, unsigned nsl)
{
	struct ghost_rq q;
	struct http hp;
	txt hd[HTTP_HDR_FIRST + 1];
	struct ghost_ans a;
	struct ws ws[1];
	uint8_t raw[512];
	size_t rl;
	char why[256];

	rq_make(&q, &hp, hd, host, url);
	rl = ans_make(raw, sizeof raw, gen, rn, sc, sl, nsl);
	if (ghost_ans_decode(raw, rl, &a, why, sizeof why)) {
		fprintf(stderr, "memo_test: answer: %s\n", why);
		exit(1);
	}
	ghost_ans_fit(&q, &a);
	WS_Init(ws, "memo_test", ws_space, sizeof ws_space);
	ghost_memo_store(gv, ws, &q, &a, raw, rl);
}

/*
 * A fetch's lookup (ref) or a copy's: 1 and the answer's route name in
 * rn (n bytes), or 0.
 */
static int
find(struct ghost_vcl *gv, const char *host, const char *url, uint64_t gen,
    int ref, char *rn, size_t n)
{
	struct ghost_rq q;
	struct http hp;
	txt hd[HTTP_HDR_FIRST + 1];
	struct ghost_ans a;
	const struct ghost_ans *ap = NULL;
	const uint8_t *raw;
	size_t rawlen;
	struct ws ws[1];
	void *r = NULL;
	int found;

	rq_make(&q, &hp, hd, host, url);
	WS_Init(ws, "memo_test", ws_space, sizeof ws_space);
	found = ghost_memo_find(gv, ws, gen, &q, &a, &ap, &raw, &rawlen,
	    ref ? &r : NULL);
	*rn = '\0';
	if (found) {
		AN(ap);
		assert(ap->gen == gen);
		snprintf(rn, n, "%.*s", (int)ap->rn_len, ap->rn);
		if (ref) {
			AN(r);
			ghost_memo_unref(r);
		}
	} else
		AZ(r);
	return (found);
}

/* The deps record of host gone from the memo (under gen). */
static void
deps_drop(struct ghost_vcl *gv, const char *host, uint64_t gen)
{
	struct ws ws[1];
	const uint8_t *v;
	size_t vl;
	uint8_t junk = 0;

	/* the same key under another generation takes the record's slot */
	ghost_memo_insert(gv, gen + 1000, host, strlen(host),
	    ghost_hash(host, strlen(host), 0), &junk, 1, NULL);
	WS_Init(ws, "memo_test", ws_space, sizeof ws_space);
	AZ(ghost_memo_lookup(gv, ws, gen, host, strlen(host),
	    ghost_hash(host, strlen(host), 0), NULL, 0, &v, &vl));
}

/* ---- 1. an entry is got back for its Host and generation only ------ */

static void
t_put_get(void)
{
	struct ghost_vcl gv;
	struct ghost_vh vh;
	const char *h = "vh1.bench.test";
	/* longer than the entry's first line, more scopes than its short
	 * form holds, one past 16 bits: the entry's long form */
	const char *hl = "a-rather-long-tenant-name.shop.bench.example.test:8443";
	int32_t sl[3] = { 4, 8, 12 }, sll[6] = { 1, 5, 9, 70000, 70001, 70002 };
	unsigned i;

	vcl_new(&gv);
	ghost_memo_vh_put(&gv, GEN, h, strlen(h), 1, sl, 3);
	memset(&vh, 0, sizeof vh);
	CHECK(ghost_memo_vh_get(&gv, GEN, h, strlen(h), &vh),
	    "host table: %s not found after its put", h);
	CHECK(vh.p == 1 && vh.nsl == 3 && vh.sl[0] == 4 && vh.sl[1] == 8 &&
	    vh.sl[2] == 12, "host table: %s: p %d nsl %u sl %d %d %d", h, vh.p,
	    vh.nsl, vh.sl[0], vh.sl[1], vh.sl[2]);
	CHECK(!ghost_memo_vh_get(&gv, GEN + 1, h, strlen(h), &vh),
	    "host table: %s found under another generation", h);
	CHECK(!ghost_memo_vh_get(&gv, GEN, "vh2.bench.test", 14, &vh),
	    "host table: vh2.bench.test found, never put");
	CHECK(!ghost_memo_vh_get(&gv, GEN, h, strlen(h) - 1, &vh),
	    "host table: a prefix of %s found", h);

	ghost_memo_vh_put(&gv, GEN, hl, strlen(hl), 0, sll, 6);
	memset(&vh, 0, sizeof vh);
	CHECK(ghost_memo_vh_get(&gv, GEN, hl, strlen(hl), &vh),
	    "host table: %s not found after its put", hl);
	CHECK(vh.p == 0 && vh.nsl == 6, "host table: %s: p %d nsl %u", hl,
	    vh.p, vh.nsl);
	for (i = 0; i < 6 && i < vh.nsl; i++)
		CHECK(vh.sl[i] == sll[i], "host table: %s: sl[%u] %d", hl, i,
		    vh.sl[i]);
	CHECK(!ghost_memo_vh_get(&gv, GEN - 1, hl, strlen(hl), &vh),
	    "host table: %s found under another generation", hl);
	ghost_memo_free(&gv);
}

/* ---- 2. distinct hosts spread over the slots ----------------------- */

/*
 * n hosts made by fmt from first + i (i = 0..n-1) put into a new table,
 * then looked up: a host whose slot a later one took is not found, so
 * the hosts found are the slots the family spread over. A uniform index
 * puts n keys into s slots at s (1 - e^(-n/s)) distinct ones on average
 * (1,582 for 2,000 in 4,096), and at least 90 % of that is asked for.
 * An index returning a constant finds 1, one that reads only a fixed
 * word of the Host finds 1 for a family whose varying part is
 * elsewhere, one that uses half the table ~1,277 (2,048 (1 -
 * e^(-2000/2048))): below 90 %.
 */
static void
t_spread(const char *fmt, unsigned first, unsigned n)
{
	struct ghost_vcl gv;
	struct ghost_vh vh;
	char h[128];
	unsigned i, found = 0, distinct = 0, s;
	int32_t sl;
	double want;
	uint8_t *used;

	vcl_new(&gv);
	s = gv.memo->vh_mask + 1;
	CHECK(s == 4096, "host table of %u slots for %u memo slots", s, SLOTS);
	used = calloc(s, 1);
	AN(used);
	for (i = 0; i < n; i++) {
		snprintf(h, sizeof h, fmt, first + i);
		sl = (int32_t)i;
		ghost_memo_vh_put(&gv, GEN, h, strlen(h), 1, &sl, 1);
		used[ghost_vh_index(gv.memo, h, strlen(h)) & (s - 1)] = 1;
	}
	for (i = 0; i < n; i++) {
		snprintf(h, sizeof h, fmt, first + i);
		if (ghost_memo_vh_get(&gv, GEN, h, strlen(h), &vh)) {
			CHECK(vh.nsl == 1 && vh.sl[0] == (int32_t)i,
			    "host table: %s: the entry of another host", h);
			found++;
		}
	}
	for (i = 0; i < s; i++)
		distinct += used[i];
	want = 0.9 * s * (1.0 - exp(-(double)n / s));
	printf("memo_test: %u hosts \"%s\": %u slots, %u found, in a host "
	    "table of %u (at least %.0f asked for)\n", n, fmt, distinct,
	    found, s, want);
	/* each slot keeps the last host put there: that one is found */
	CHECK(found == distinct, "host table: %u hosts \"%s\" in %u slots, "
	    "%u found", n, fmt, distinct, found);
	CHECK(found >= want, "host table: %u hosts \"%s\" spread over %u "
	    "slots only (at least %.0f asked for)", n, fmt, found, want);
	free(used);
	ghost_memo_free(&gv);
}

/* ---- 3. a fetch's lookup of a scoped answer uses the host table ---- */

static void
t_find(void)
{
	struct ghost_vcl gv;
	struct ghost_vh vh;
	const char *h = "vh7.bench.test";
	uint64_t sl[2] = { 4, 8 }, miss;
	char rn[64];
	int ref;

	vcl_new(&gv);
	/* ghostd's answer for /api/v1/items: route "api", scope "/api" */
	store(&gv, h, "/api/v1/items?x=1", GEN, "api", 4, sl, 2);
	memset(&vh, 0, sizeof vh);
	CHECK(ghost_memo_vh_get(&gv, GEN, h, strlen(h), &vh),
	    "the answer's store left no host table entry for %s", h);
	CHECK(vh.p == 1 && vh.nsl == 2 && vh.sl[0] == 4 && vh.sl[1] == 8,
	    "host table: %s: p %d nsl %u sl %d %d", h, vh.p, vh.nsl,
	    vh.sl[0], vh.sl[1]);

	for (ref = 1; ref >= 0; ref--) {
		/* another path under the scope, with the deps record there:
		 * through the host table, no miss counted */
		miss = HOST_MISS;
		CHECK(find(&gv, h, "/api/other", GEN, ref, rn, sizeof rn) &&
		    !strcmp(rn, "api"), "find (ref %d): /api/other not "
		    "found (\"%s\")", ref, rn);
		CHECK(!find(&gv, h, "/apx", GEN, ref, rn, sizeof rn),
		    "find (ref %d): /apx found, outside the scope", ref);
		CHECK(HOST_MISS == miss, "find (ref %d): %ju host "
		    "table misses counted for a host in the table", ref,
		    (uintmax_t)(HOST_MISS - miss));
		CHECK(!find(&gv, h, "/api/other", GEN + 1, ref, rn, sizeof rn),
		    "find (ref %d): found under another generation", ref);
		CHECK(!find(&gv, "vh8.bench.test", "/api/other", GEN, ref, rn,
		    sizeof rn), "find (ref %d): found for another host", ref);
		CHECK(HOST_MISS == miss + 2, "find (ref %d): %ju host "
		    "table misses counted for 2 lookups not in the table", ref,
		    (uintmax_t)(HOST_MISS - miss));
	}

	/* the deps record gone: only the host table leads to the answer */
	deps_drop(&gv, h, GEN);
	for (ref = 1; ref >= 0; ref--)
		CHECK(find(&gv, h, "/api/other", GEN, ref, rn, sizeof rn) &&
		    !strcmp(rn, "api"), "find (ref %d) through the host table: "
		    "/api/other not found (\"%s\"): the lookup did not use the "
		    "host table's entry", ref, rn);

	/* and the host table's entry gone too (its slot under another
	 * generation): nothing leads to it (the lookup depends on it) */
	ghost_memo_vh_put(&gv, GEN + 1, h, strlen(h), 1, vh.sl, vh.nsl);
	for (ref = 1; ref >= 0; ref--)
		CHECK(!find(&gv, h, "/api/other", GEN, ref, rn, sizeof rn),
		    "find (ref %d): found with neither the deps record nor "
		    "the host table's entry", ref);
	ghost_memo_free(&gv);

	/*
	 * The fallback: the deps record, no host table entry (another
	 * host's took the slot, say): found, and the entry put back.
	 */
	vcl_new(&gv);
	store(&gv, h, "/api/v1/items", GEN, "api", 4, sl, 2);
	ghost_memo_vh_put(&gv, GEN + 1, h, strlen(h), 1, vh.sl, vh.nsl);
	CHECK(!ghost_memo_vh_get(&gv, GEN, h, strlen(h), &vh),
	    "host table: %s's entry still there", h);
	miss = HOST_MISS;
	CHECK(find(&gv, h, "/api/other", GEN, 1, rn, sizeof rn) &&
	    !strcmp(rn, "api"), "find through the deps record: /api/other "
	    "not found (\"%s\")", rn);
	CHECK(HOST_MISS == miss + 1, "find through the deps record: "
	    "%ju host table misses counted", (uintmax_t)(HOST_MISS -
	    miss));
	CHECK(ghost_memo_vh_get(&gv, GEN, h, strlen(h), &vh),
	    "the lookup through the deps record did not put %s back in the "
	    "host table", h);
	CHECK(find(&gv, h, "/api/v1/x", GEN, 1, rn, sizeof rn) &&
	    HOST_MISS == miss + 1, "find after the refill: not found, "
	    "or %ju host table misses counted", (uintmax_t)(HOST_MISS -
	    miss));
	ghost_memo_free(&gv);
}

/* ---- 4. a reader never sees half of a writer's entry ---------------- */

/*
 * ghost_memo_vh_put() writes an entry in place under a sequence count and
 * ghost_memo_vh_get() reads it without a lock: a read that overlaps a
 * write must miss, never return the scopes of one put with the flags of
 * another. A writer thread alternates two records of one host (the
 * entry's long form: its scopes span several words); the reader checks
 * each entry it gets is one of them, whole. Races are not certain to
 * show in a short run, so this can only fail, never prove: with the
 * reader's second look at the sequence removed it failed in every run
 * of 10 (85 to 3,048 torn reads of ~50,000 puts; 2026-12-07), with the
 * writer's odd sequence left out in every run of 10 too.
 */
#define RACE_GETS	2000000

static const int32_t race_a[6] = { 1, 2, 3, 4, 5, 6 };
static const int32_t race_b[5] = { 70000, 70010, 70020, 70030, 70040 };
static const char race_h[] = "race.bench.example.test";
static int race_go, race_done;
static unsigned race_puts;

/* puts from the reader's first get to its last */
static void *
race_writer(void *priv)
{
	struct ghost_vcl *gv = priv;
	unsigned i;

	while (!__atomic_load_n(&race_go, __ATOMIC_ACQUIRE))
		continue;
	for (i = 0; !__atomic_load_n(&race_done, __ATOMIC_ACQUIRE); i++) {
		if (i & 1)
			ghost_memo_vh_put(gv, GEN, race_h, sizeof race_h - 1, 0,
			    race_b, 5);
		else
			ghost_memo_vh_put(gv, GEN, race_h, sizeof race_h - 1, 1,
			    race_a, 6);
	}
	race_puts = i;
	return (NULL);
}

static void
t_race(void)
{
	struct ghost_vcl gv;
	struct ghost_vh vh;
	pthread_t w;
	unsigned i, got = 0, a = 0, b = 0, torn = 0;

	vcl_new(&gv);
	race_go = race_done = 0;
	/* there before the writer runs: a get finds something at once */
	ghost_memo_vh_put(&gv, GEN, race_h, sizeof race_h - 1, 1, race_a, 6);
	AZ(pthread_create(&w, NULL, race_writer, &gv));
	__atomic_store_n(&race_go, 1, __ATOMIC_RELEASE);
	for (i = 0; i < RACE_GETS; i++) {
		memset(&vh, 0xff, sizeof vh);
		if (!ghost_memo_vh_get(&gv, GEN, race_h, sizeof race_h - 1,
		    &vh))
			continue;
		got++;
		if (vh.p == 1 && vh.nsl == 6 &&
		    !memcmp(vh.sl, race_a, sizeof race_a))
			a++;
		else if (vh.p == 0 && vh.nsl == 5 &&
		    !memcmp(vh.sl, race_b, sizeof race_b))
			b++;
		else
			torn++;
	}
	__atomic_store_n(&race_done, 1, __ATOMIC_RELEASE);
	AZ(pthread_join(w, NULL));
	printf("memo_test: %u gets while %u puts: %u found (%u of one "
	    "record, %u of the other), %u torn\n", RACE_GETS, race_puts, got,
	    a, b, torn);
	CHECK(got > 0, "host table: %s never found", race_h);
	CHECK(torn == 0, "host table: %u reads returned half of one entry "
	    "and half of another", torn);
	ghost_memo_free(&gv);
}

int
main(void)
{
	ghost_hdr_init();
	t_put_get();
	/* the varying part at the start (the bench's hosts), in the middle */
	t_spread("vh%u.bench.test", 0, NHOST);
	t_spread("www.tenant%u.shop.bench.example", 0, NHOST);
	/*
	 * at the end (a port), hosts shorter than a word, an address: keys
	 * that differ only in their last word's high bits, which before
	 * ghost_vh_index()'s fold took 921, 833 and 1,309 slots of 1,582
	 */
	t_spread("shop.bench.example.test:%u", 10000, NHOST);
	t_spread("h%u", 0, NHOST);
	t_spread("[::%x]:80", 0, NHOST);
	t_find();
	t_race();
	if (bad) {
		fprintf(stderr, "memo_test: %d failed\n", bad);
		return (1);
	}
	printf("memo_test: ok\n");
	return (0);
}

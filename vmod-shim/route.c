/*
 * Layer 3: one decision. route() gathers the request's inputs, finds a
 * decision (memo or a round trip to ghostd), picks the endpoint, hands
 * out its native backend and applies the request side of the decision.
 */

#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cache/cache.h"
#include "vrt_obj.h"
#include "vcl.h"

#include "msgpack.h"
#include "ghost.h"
#include "answer.h"
#include "conn.h"
#include "memo.h"
#include "pick.h"
#include "rq.h"
#include "cors.h"
#include "apply.h"
#include "backend.h"
#include "cluster.h"
#include "reuse.h"
#include "retry.h"
#include "route.h"
#include "cachekey.h"
#include "stats.h"
#include "affinity.h"

/* A task's answer before (or without) a decision: all zero, read only. */
const struct ghost_ans ghost_ans_none;

/* decide()'s usual *src, one array: log_plain() tells it by address */
static const char src_memo[] = "memo";

/* The decision when ghostd cannot give one: 503, why in the log. */
static void GHOST_COLD
unreachable(VRT_CTX, struct ghost_task *t, const char *why)
{
	CHECK_OBJ_NOTNULL(t, GHOST_TASK_MAGIC);
	t->status = 503;
	t->have_ans = 0;
	/* The client sees a plain 503; why goes to the log and counters. */
	t->reason = GHOST_503_REASON;
	VSLb(ctx->vsl, SLT_Error, "ghost: ghostd unreachable: %s", why);
	GHOST_STAT(dec_failed);
}

/* One draw of this VCL's random sequence (splitmix64 of a counter). */
static uint64_t
rng(struct ghost_vcl *gv)
{
	uint64_t z;

	z = __atomic_add_fetch(&gv->rng, 0x9e3779b97f4a7c15ULL,
	    __ATOMIC_RELAXED);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

/* ghost_pick_skip_f: the endpoints this fetch already tried */
static int
skip_tried(void *priv, unsigned flat, const char *addr, size_t al,
    unsigned port)
{
	const struct ghost_task *t;
	unsigned i;

	CAST_OBJ_NOTNULL(t, priv, GHOST_TASK_MAGIC);
	(void)addr;
	(void)al;
	(void)port;
	for (i = 0; i < t->ntried; i++)
		if (t->tried[i] == flat)
			return (1);
	return (0);
}

/*
 * The pick with the health of every endpoint of the answer (a route with
 * hp or ol): route.Select over the sick mask ghost_be_states() builds, in
 * the workspace for the moment. *plain: the endpoint's probe says sick
 * (a panic pick), so fetch through its plain backend. -2: no healthy
 * endpoint and no panic.
 */
static int GHOST_COLD
pick_health(VRT_CTX, struct ghost_vcl *gv, struct ghost_task *t, uint64_t u,
    const char **addr, size_t *al, unsigned *port, unsigned *flat, int *plain)
{
	const struct ghost_ans *a = t->ans;
	unsigned char *sick;
	unsigned n, nsick, nej, f;
	uintptr_t snap;
	int r, panicked;

	n = ghost_pick_count(a->g, a->g_end);
	snap = WS_Snapshot(ctx->ws);
	sick = n > 0 ? WS_Alloc(ctx->ws, n) : NULL;
	if (sick == NULL)	/* workspace: pick without health */
		return (ghost_select(a->g, a->g_end, u, NULL, 0, 0,
		    t->ntried > 0 ? skip_tried : NULL, t, addr, al, port, flat,
		    &panicked));
	ghost_be_states(ctx, gv, a->g, a->g_end, a->hp.id, sick, n, &nsick,
	    &nej);
	r = ghost_select(a->g, a->g_end, u, sick, n, a->pn,
	    t->ntried > 0 ? skip_tried : NULL, t, addr, al, port, flat,
	    &panicked);
	if (r == 0 && panicked) {
		*plain = (sick[*flat] & GHOST_BE_SICK) != 0;
		GHOST_STAT(health_panic);
		for (f = 0, nsick = 0; f < n; f++)
			nsick += sick[f] != 0;
		VSLb(ctx->vsl, SLT_VCL_Log, "ghost: panic: %u of %u endpoints "
		    "unhealthy, panic_threshold %d%%: health ignored", nsick, n,
		    a->pn);
	} else if (r != 0) {
		GHOST_STAT(health_none);
		VSLb(ctx->vsl, SLT_Error, "ghost: no healthy endpoint (%u sick, "
		    "%u ejected of %u)", nsick, nej, n);
		r = -2;
	}
	WS_Reset(ctx->ws, snap);
	return (r);
}

/* ---- affinity: session persistence, consistent hashing --------------- */

struct aff_ok {
	unsigned		magic;
#define AFF_OK_MAGIC		0x3af0c1a5
	VRT_CTX;
	struct ghost_vcl	*gv;
	struct ghost_task	*t;
	const unsigned char	*st;	/* GHOST_BE_* by flat; NULL: ask */
	unsigned		n;
	int			panic;	/* too few healthy: health ignored */
};

/*
 * ghost_ring_ok_f: may flat endpoint f take this fetch? Not tried yet by
 * it, and (unless in panic) neither sick nor ejected: by the route's
 * health mask when one was built, else by its native backend
 * (VRT_Healthy: a probe, or backend.set_health) and outlier state.
 */
static int
aff_ok(void *priv, uint32_t f)
{
	struct aff_ok *o;
	const char *addr;
	size_t al;
	unsigned port;
	VCL_BACKEND be;

	CAST_OBJ_NOTNULL(o, priv, AFF_OK_MAGIC);
	if (skip_tried(o->t, f, NULL, 0, 0))
		return (0);
	if (o->panic)
		return (1);
	if (o->st != NULL)
		return (f < o->n && o->st[f] == 0);
	if (ghost_flat_ep(o->t->ans->g, o->t->ans->g_end, f, &addr, &al, &port))
		return (0);
	if (o->t->ans->pn >= 0 && ghost_be_state(o->ctx, o->gv, addr, al, port,
	    o->t->ans->hp.id) != 0)
		return (0);
	be = ghost_be_get(o->ctx, o->gv, addr, al, port, o->t->ans->gen,
	    &o->t->ans->hp);
	return (be != NULL && VRT_Healthy(o->ctx, be, NULL));
}

/*
 * The endpoint affinity chooses (docs/protocol.md, "Consistent hashing",
 * "Session persistence"): the one the request's session token names if
 * aff_ok() takes it, else the first on the ring from the request's key
 * that aff_ok() takes. With endpoint health and some backend bad, the
 * route's health mask decides, and the panic rule applies as to the
 * weighted pick (*plain: a sick endpoint taken in panic). -1: none.
 */
static int64_t GHOST_COLD
aff_pick(VRT_CTX, struct ghost_vcl *gv, struct ghost_task *t, int *plain)
{
	struct aff_ok o;
	unsigned char *st = NULL;
	unsigned f, bad = 0, nsick, nej;
	uintptr_t snap;
	int64_t r = -1;

	if (t->sess_want < 0 && !t->lb_have)
		return (-1);
	INIT_OBJ(&o, AFF_OK_MAGIC);
	o.ctx = ctx;
	o.gv = gv;
	o.t = t;
	snap = WS_Snapshot(ctx->ws);
	if (t->ans->pn >= 0 && __atomic_load_n(&gv->n_bad, __ATOMIC_RELAXED)) {
		o.n = ghost_pick_count(t->ans->g, t->ans->g_end);
		st = o.n > 0 ? WS_Alloc(ctx->ws, o.n) : NULL;
		if (st != NULL) {
			ghost_be_states(ctx, gv, t->ans->g, t->ans->g_end,
			    t->ans->hp.id, st, o.n, &nsick, &nej);
			for (f = 0; f < o.n; f++)
				bad += st[f] != 0;
			o.st = st;
			o.panic = (o.n - bad) * 100 < (unsigned)t->ans->pn * o.n;
		}
	}
	if (t->sess_want >= 0 && aff_ok(&o, (uint32_t)t->sess_want))
		r = t->sess_want;
	else if (t->lb_have)
		r = ghost_aff_walk(ctx, gv, t->ans, t->lb_h, aff_ok, &o);
	if (r >= 0 && st != NULL && (unsigned)r < o.n)
		*plain = (st[r] & GHOST_BE_SICK) != 0;
	WS_Reset(ctx->ws, snap);
	return (r >= 0 ? r : -1);
}

/*
 * This request's endpoint among the answer's groups: the one affinity
 * chooses (aff_pick(): the session's, or the key's on the ring), else
 * route.Select's: a healthy one when the route has endpoint health, unless too few are
 * (panic); on a retry one the fetch has not tried yet when there is one
 * (weights renormalised over the rest), else any. The endpoint is added
 * to the fetch's tried set and becomes the attempt's (outlier detection).
 * *plain: fetch through the endpoint's backend without a probe.
 *
 * While no backend of this VCL is sick or ejected (gv->n_bad, kept by the
 * reaper) the pick needs no health mask: only the endpoint picked is
 * checked, and the mask is built when it is unhealthy.
 */
static GHOST_INLINE int
pick(VRT_CTX, struct ghost_vcl *gv, struct ghost_task *t, const char **addr,
    size_t *al, unsigned *port, int *plain)
{
	unsigned flat = 0;
	int64_t af;
	uint64_t u = 0;		/* the draw, made only when needed: not for
				   the one endpoint of most routes (an atomic
				   add on a line every fetch shares) */
	int r, panicked;

	*plain = 0;
	af = -1;
	/* (most routes have neither affinity nor sessions: no call) */
	if (GHOST_UNLIKELY(t->sess_want >= 0 || t->lb_have))
		af = aff_pick(ctx, gv, t, plain);
	if (af >= 0 && !ghost_flat_ep(t->ans->g, t->ans->g_end, (unsigned)af,
	    addr, al, port)) {
		r = 0;
		flat = (unsigned)af;
	} else {
		*plain = 0;
		if (GHOST_LIKELY(t->ans->ep1 != NULL && t->ntried == 0)) {
			/* one endpoint: what ghost_select() would pick */
			*addr = t->ans->ep1;
			*al = t->ans->ep1_len;
			*port = t->ans->ep1_port;
			r = 0;
		} else {
			u = rng(gv);
			r = ghost_select(t->ans->g, t->ans->g_end, u, NULL, 0,
			    0, t->ntried > 0 ? skip_tried : NULL, t, addr, al,
			    port, &flat, &panicked);
		}
		if (GHOST_UNLIKELY(r == 0 && t->ans->pn >= 0) &&
		    (__atomic_load_n(&gv->n_bad, __ATOMIC_RELAXED) > 0 ||
		    ghost_be_state(ctx, gv, *addr, *al, *port,
		    t->ans->hp.id) != 0))
			r = pick_health(ctx, gv, t, u != 0 ? u : rng(gv),
			    addr, al, port, &flat, plain);
	}
	if (GHOST_UNLIKELY(r == 0 && t->ans->has_sp)) {
		t->sess_on = 1;
		t->sess_fresh = (int64_t)flat != t->sess_want;
		t->sess_flat = flat;
		t->sess_at = t->sess_fresh ? (int64_t)ctx->now :
		    t->sess_want_at;
	}
	if (r == 0) {
		if (t->ntried < GHOST_MAX_TRIES)
			t->tried[t->ntried++] = flat;
		t->cur_addr = *addr;
		t->cur_al = *al;
		t->cur_port = *port;
		t->cur_probe = *plain ? 0 : t->ans->hp.id;
		t->cur_done = 0;
	}
	return (r);
}

void
ghost_route_result(VRT_CTX, struct ghost_task *t)
{
	int failed;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(t, GHOST_TASK_MAGIC);
	if (t->gv == NULL || t->cur_addr == NULL || t->cur_done ||
	    !t->have_ans || t->ans->ol_n == 0)
		return;
	if (ctx->method == VCL_MET_BACKEND_ERROR)
		failed = 1;
	else if (ctx->method == VCL_MET_BACKEND_RESPONSE &&
	    ctx->http_beresp != NULL)
		failed = ctx->http_beresp->status >= 500;
	else
		return;
	t->cur_done = 1;
	ghost_be_outcome(ctx, t->gv, t->ans, t->cur_addr, t->cur_al,
	    t->cur_port, t->cur_probe, failed);
}

/* ---- the decision's log line ---------------------------------------- */

struct lb {
	char		*p;
	char		*e;
};

static inline void
lb_mem(struct lb *b, const char *s, size_t l)
{
	if (l > (size_t)(b->e - b->p))
		l = (size_t)(b->e - b->p);
	memcpy(b->p, s, l);
	b->p += l;
}

/* a string literal: its length is known, the copy inlined */
#define LB_LIT(b, s)	lb_mem(b, s, sizeof s - 1)

static void
lb_uint(struct lb *b, uint64_t v)
{
	char d[20];
	unsigned n = 0;

	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0 && b->p < b->e)
		*b->p++ = d[--n];
}

/*
 * VCL_Log "ghost: <status> <backend or reason> (<memo|ghostd>, gen <g>[,
 * route <route_name>])" (the reason: wl bytes, not NUL terminated; the
 * route name, a's rn, when ghostd sent one), built by hand: a VSLb()
 * format costs more than the rest of a memoised decision; nm: what is a
 * backend map entry's name, the backend "ghost." and it. Any line, cut
 * at 256 bytes; log_decision() writes the usual one.
 */
static void GHOST_COLD
log_decision_any(VRT_CTX, int status, const char *what, size_t wl, int nm,
    const char *src, const struct ghost_ans *a)
{
	char buf[256];
	struct lb b = { buf, buf + sizeof buf };
	txt t;

	LB_LIT(&b, "ghost: ");
	lb_uint(&b, (uint64_t)status);
	LB_LIT(&b, " ");
	if (nm)		/* a map entry's name: the backend's is "ghost."... */
		LB_LIT(&b, "ghost.");
	lb_mem(&b, what, wl);
	LB_LIT(&b, " (");
	lb_mem(&b, src, strlen(src));
	LB_LIT(&b, ", gen ");
	lb_uint(&b, a->gen);
	if (a->rn_len > 0) {
		LB_LIT(&b, ", route ");
		lb_mem(&b, a->rn, a->rn_len);
	}
	LB_LIT(&b, ")");
	t.b = buf;
	t.e = b.p;
	VSLbt(ctx->vsl, SLT_VCL_Log, t);
}

/* room log_decision() keeps for its fixed-size copies past the text */
#define LOG_SLACK	(6 + 64 + 20)

/*
 * The decision's log line (log_decision_any()) when it fits in 256 bytes,
 * the status has 3 digits and the answer its generation in decimal (a
 * memoised one, ans_fix()): the length checked once, then plain copies.
 * Formatting the generation here costs ~500 instructions; keeping it per
 * thread a __tls_get_addr() call (a __thread variable of a dlopen()ed
 * VMOD: ~100 instructions, 5 code lines).
 */
/*
 * The end of a decision line that log_decision() and log_plain() write
 * in buf, from p on: the generation (the whole array, a fixed copy with
 * no call, then its length), the route's name when ghostd sent one, the
 * ')', and the VCL_Log record. In line in both (no call).
 */
static GHOST_INLINE void
log_end(VRT_CTX, char *buf, char *p, const struct ghost_ans *a)
{
	txt t;

	memcpy(p, a->gen_d, sizeof a->gen_d);
	p += a->gen_dl;
	if (a->rn_len > 0) {
		memcpy(p, ", route ", 8);
		memcpy(p + 8, a->rn, a->rn_len);
		p += 8 + a->rn_len;
	}
	*p++ = ')';
	t.b = buf;
	t.e = p;
	VSLbt(ctx->vsl, SLT_VCL_Log, t);
}

static GHOST_INLINE void
log_decision(VRT_CTX, int status, const char *what, size_t wl, int nm,
    const char *src, const struct ghost_ans *a)
{
	char buf[256], *p = buf;
	size_t sl;

	/* (the usual src, "memo", without a strlen() call) */
	sl = src[0] == 'm' && src[4] == '\0' ? 4 : strlen(src);
	if (GHOST_UNLIKELY(status < 100 || status > 999 || a->gen_dl == 0 ||
	    wl + sl + a->gen_dl + a->rn_len + 28 + LOG_SLACK > sizeof buf)) {
		log_decision_any(ctx, status, what, wl, nm, src, a);
		return;
	}
	memcpy(p, "ghost: ", 7);
	p[7] = (char)('0' + status / 100);
	p[8] = (char)('0' + status / 10 % 10);
	p[9] = (char)('0' + status % 10);
	p[10] = ' ';
	p += 11;
	if (nm) {
		/* what: a map entry's name (64 bytes), the vcl_name after
		 * "ghost.": fixed-size copies, no call */
		memcpy(p, "ghost.", 6);
		memcpy(p + 6, what, 64);
		p += 6 + wl;
	} else {
		memcpy(p, what, wl);
		p += wl;
	}
	memcpy(p, " (", 2);
	memcpy(p + 2, src, sl);
	p += 2 + sl;
	memcpy(p, ", gen ", 6);
	log_end(ctx, buf, p + 6, a);
}

/* log_plain() for any other line: log_decision()'s (out of line) */
static void GHOST_COLD
log_plain_any(VRT_CTX, const char *nm, size_t nl, const char *src,
    const struct ghost_ans *a)
{
	log_decision(ctx, 200, nm, nl, 1, src, a);
}

/* the longest route name log_plain() writes (256 bytes: see there) */
#define LOG_PLAIN_RN	128

/*
 * log_decision() of the plain lane (route_plain()) for a memoised answer
 * from a fresh memo and a backend that is a map entry: status 200, the
 * backend "ghost." and the entry's name (nm: a 64-byte array, nl bytes
 * of name), src "memo". The fixed text in three constant copies; the
 * rest is log_decision()'s. Its longest line: 17 + 64 (the name's copy)
 * + 12 + 20 (the generation's copy) + 8 + LOG_PLAIN_RN + 1 < 256.
 */
static GHOST_INLINE void
log_plain(VRT_CTX, const char *nm, size_t nl, const char *src,
    const struct ghost_ans *a)
{
	char buf[256], *p = buf;

	if (GHOST_UNLIKELY(src != src_memo || a->gen_dl == 0 ||
	    a->rn_len > LOG_PLAIN_RN || nl > 64)) {
		log_plain_any(ctx, nm, nl, src, a);
		return;
	}
	memcpy(p, "ghost: 200 ghost.", 17);
	memcpy(p + 17, nm, 64);
	p += 17 + nl;
	memcpy(p, " (memo, gen ", 12);
	log_end(ctx, buf, p + 12, a);
}

/* ---- route() -------------------------------------------------------- */

/*
 * A second route() in the same backend task (return (retry)): the bereq
 * was already changed by the first, so keep that decision and only pick
 * an endpoint again. On the client side (restarts) the request is routed
 * anew. NULL: route anew.
 */
static VCL_BACKEND GHOST_COLD
route_retry(VRT_CTX, struct ghost_vcl *gv, struct ghost_task *t)
{
	const char *addr;
	size_t al;
	unsigned port;
	int plain;
	VCL_BACKEND be;

	if (ctx->http_bereq == NULL || !t->have_ans || t->status != 200 ||
	    t->ans->o != GHOST_ROUTE ||
	    pick(ctx, gv, t, &addr, &al, &port, &plain))
		return (NULL);
	be = ghost_be_get(ctx, gv, addr, al, port, t->ans->gen,
	    plain ? NULL : &t->ans->hp);
	if (be != NULL) {
		VSLb(ctx->vsl, SLT_VCL_Log, "ghost: 200 %s (retry)",
		    VRT_BACKEND_string(be));
		ghost_fetch_limits(ctx, t);
	}
	return (be);
}

/*
 * The decision for the request q, in *a: from the memo (docs/protocol.md
 * "Reuse"), else from a round trip to ghostd, then memoised; a path edit
 * is applied to q's own path. Only reads q (req on the client side, bereq
 * on the backend side), so any task may call it; nothing is applied.
 * Returns 0 with *src "memo", "memo, ghostd silent" or "ghostd", or -1
 * with why when ghostd did not give a usable answer. ref (NULL: a copy
 * in the workspace): a memoised answer's strings and arrays stay in the
 * memo entry, referenced by *ref until ghost_memo_unref(*ref) (NULL when
 * the answer is in the workspace).
 */
/*
 * decide()'s round trip to ghostd, when the memo has no answer: the
 * answer decoded into *a and memoised. 0, or -1 with why. Out of line
 * (GHOST_COLD): a warm Varnish almost never gets here.
 */
static int GHOST_COLD
decide_ghostd(VRT_CTX, struct ghost_vcl *gv, const struct ghost_rq *q,
    struct ghost_ans *a, const char **src, char *why, size_t wl)
{
	struct ghost_rt rt;
	const uint8_t *raw;
	size_t rawlen;
	uint64_t seen;

	if (q->memo_only != NULL) {
		snprintf(why, wl, "%s", q->memo_only);
		return (-1);
	}
	if (a == NULL) {
		snprintf(why, wl, "workspace overflow");
		return (-1);
	}
	*src = "ghostd";
	if (gv->memo != NULL)
		GHOST_STAT(memo_miss);
	GHOST_STAT(ghostd_req);
	memset(&rt, 0, sizeof rt);
	rt.enc = ghost_rq_enc;
	rt.arg = TRUST_ME(q);
	rt.enc_max = ghost_rq_enc_max(q);
	rt.timeout = gv->timeout;
	if (ghost_roundtrip(gv, ctx->ws, &rt) ||
	    ghost_ans_decode(rt.ans, rt.ans_len, a, rt.why,
	    sizeof rt.why)) {
		ghost_stats_error(rt.why);
		snprintf(why, wl, "%s", rt.why);
		return (-1);
	}
	raw = rt.ans;
	rawlen = rt.ans_len;
	seen = __atomic_load_n(&gv->seen_gen, __ATOMIC_RELAXED);
	while (a->gen > seen && !__atomic_compare_exchange_n(
	    &gv->seen_gen, &seen, a->gen, 0, __ATOMIC_RELAXED,
	    __ATOMIC_RELAXED))
		continue;
	ghost_ans_fit(q, a);
	/* the keys are copied into the memo: it gives them back */
	if (gv->memo != NULL)
		ghost_memo_store(gv, ctx->ws, q, a, raw, rawlen);
	return (0);
}

/*
 * The answer's storage when it is not the memo entry's (ghostd's answer,
 * a path edit's copy): a's, or for a = NULL in the workspace. NULL: none
 * (workspace overflow).
 */
static struct ghost_ans * GHOST_COLD
ans_store(VRT_CTX, struct ghost_ans *a)
{
	return (a != NULL ? a : WS_Alloc(ctx->ws, sizeof *a));
}

static GHOST_INLINE int
decide(VRT_CTX, struct ghost_vcl *gv, const struct ghost_rq *q,
    const struct ghost_st *st, struct ghost_ans *a,
    const struct ghost_ans **ap, const char **src, char *why, size_t wl,
    void **ref)
{
	const uint8_t *raw = NULL;
	size_t rawlen = 0;
	uint64_t sgen = 0;
	struct ghost_st_peek pk;
	struct ghost_ans *e;
	int fresh;

	/* ctx, gv and q: checked by the callers (ghost_route(),
	 * ghost_decide()) */
	if (ref != NULL)
		*ref = NULL;
	if (st != NULL) {
		fresh = st->fresh;	/* the caller read it just now */
		sgen = st->gen;
	} else if (GHOST_LIKELY(ghost_state_peek(gv, ctx->now, &pk))) {
		/* ghost_state_read()'s usual answer, in line (no call) */
		fresh = 1;
		sgen = pk.gen;
	} else
		fresh = ghost_state_read(gv, ctx->now, &sgen, NULL);
	/*
	 * A lookup that misses gives back the workspace its keys took (with
	 * the whole path, up to the URL's size) before the round trip needs
	 * room for the answer (ghost_memo_find()).
	 */
	if (GHOST_LIKELY(gv->memo != NULL && fresh >= 0 &&
	    ghost_memo_find(gv, ctx->ws, sgen, q, a, ap, &raw, &rawlen,
	    ref))) {
		*src = fresh ? src_memo : "memo, ghostd silent";
		GHOST_STAT(memo_hit);
	} else {
		a = ans_store(ctx, a);
		if (decide_ghostd(ctx, gv, q, a, src, why, wl))
			return (-1);
		*ap = a;
	}
	/*
	 * (most answers have no path edit: no call) The edit is this
	 * request's: a memo entry's answer (read in place) is copied first,
	 * never written.
	 */
	if (GHOST_UNLIKELY(ghost_ans_edits(*ap) && !q->cache_only)) {
		e = *ap != a ? ans_store(ctx, a) : a;
		if (e != NULL && e != *ap)
			*e = **ap;
		if (e == NULL || ghost_ans_resolve(ctx->ws, q, e)) {
			snprintf(why, wl, "workspace overflow");
			if (ref != NULL && *ref != NULL) {
				ghost_memo_unref(*ref);
				*ref = NULL;
			}
			return (-1);
		}
		*ap = e;
	}
	return (0);
}

int
ghost_decide(VRT_CTX, struct ghost_vcl *gv, const struct ghost_rq *q,
    struct ghost_ans *a, const char **src, char *why, size_t wl)
{
	const struct ghost_ans *ap = a;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	CHECK_OBJ_NOTNULL(q, GHOST_RQ_MAGIC);
	AN(a);
	if (decide(ctx, gv, q, q->st.known ? &q->st : NULL, a, &ap, src, why,
	    wl, NULL))
		return (-1);
	assert(ap == a);	/* no reference: always the copy */
	return (0);
}

/*
 * route_to_backend() without a backend: r from pick() (-2: every
 * endpoint unhealthy, already logged; another: no endpoint to pick), or 0
 * when the endpoint picked got no backend. Always NULL.
 */
static VCL_BACKEND GHOST_COLD
route_failed(VRT_CTX, struct ghost_task *t, int r, const char *addr,
    size_t al, unsigned port)
{
	char why[256];

	if (r == -2) {
		/* every endpoint unhealthy, panic_threshold 0: logged */
		t->status = 503;
		t->reason = GHOST_503_REASON;
		GHOST_STAT(dec_failed);
		return (NULL);
	}
	if (r != 0) {
		/* ghostd sends outcome 0 only with an endpoint to pick */
		unreachable(ctx, t, "bad answer (no endpoint to pick)");
		return (NULL);
	}
	/* VCL cooling, or a bad address: not ghostd's fault */
	snprintf(why, sizeof why, "cannot create a backend for %.*s port %u",
	    (int)al, addr, port);
	t->status = 503;
	t->reason = GHOST_503_REASON;	/* the detail: log only */
	VSLb(ctx->vsl, SLT_Error, "ghost: %s", why);
	GHOST_STAT(dec_failed);
	return (NULL);
}

/* Outcome GHOST_ROUTE: the endpoint's backend, the request filters. */
static GHOST_INLINE VCL_BACKEND
route_to_backend(VRT_CTX, struct ghost_vcl *gv, struct ghost_task *t,
    struct http *hp)
{
	const char *addr = NULL;
	size_t al = 0;
	unsigned port = 0;
	int plain, r;
	VCL_BACKEND be;

	r = pick(ctx, gv, t, &addr, &al, &port, &plain);
	if (GHOST_UNLIKELY(r != 0))
		return (route_failed(ctx, t, r, addr, al, port));
	be = ghost_be_get(ctx, gv, addr, al, port, t->ans->gen,
	    plain ? NULL : &t->ans->hp);
	if (GHOST_UNLIKELY(be == NULL))
		return (route_failed(ctx, t, 0, addr, al, port));
	/* (most routes have no request filter, timeout or retry: no call) */
	if (GHOST_UNLIKELY(ghost_req_ops(t->ans)))
		ghost_apply_req(ctx, hp, t->ans);
	if (ctx->bo != NULL && GHOST_UNLIKELY(ghost_retry_on(t->ans)))
		ghost_fetch_limits(ctx, t);
	GHOST_STAT(dec_backend);
	return (be);
}

/*
 * Self-sharding: the client side found that another member owns the key
 * (X-Ghost-Shard: "addr port"): fetch from that member's Varnish, with a
 * short connect timeout; the owner applies the route (filters, rewrite,
 * origin), so nothing of the decision is applied here. NULL: not
 * usable (the fetch goes to the origin as usual).
 */
static VCL_BACKEND GHOST_COLD
route_forward(VRT_CTX, struct ghost_vcl *gv, struct ghost_task *t,
    const char *hdr, const char **tok)
{
	struct ghost_peer *p;
	VCL_BACKEND be;

	p = WS_Alloc(ctx->ws, sizeof *p);
	if (p == NULL || ghost_cluster_peer(ctx, gv, hdr, p, tok))
		return (NULL);
	be = ghost_be_get(ctx, gv, p->addr, strlen(p->addr), p->port,
	    t->ans->gen, p->hp.id != 0 ? &p->hp : NULL);
	if (be == NULL)
		return (NULL);
	t->peer = p;
	t->fwd = 1;
	p->ctmo_saved = ctx->bo->connect_timeout;
	VRT_l_bereq_connect_timeout(ctx, p->ctmo);
	GHOST_STAT(shard_fwd);
	return (be);
}

/*
 * The retry of a fetch whose owner failed (ghost.owner_failed()): to the
 * origin under the decision already made, applied now, without the hop
 * mark and with the fetch's own connect timeout.
 */
static VCL_BACKEND GHOST_COLD
route_unforward(VRT_CTX, struct ghost_vcl *gv, struct ghost_task *t,
    struct http *hp)
{
	VCL_BACKEND be;

	t->fwd = 0;
	http_Unset(hp, "\014" GHOST_HOP_HDR ":");
	ctx->bo->connect_timeout = t->peer->ctmo_saved;
	t->status = t->ans->st;
	t->reason = NULL;
	be = route_to_backend(ctx, gv, t, hp);
	if (be != NULL)
		VSLb(ctx->vsl, SLT_VCL_Log, "ghost: 200 %s (owner failed)",
		    VRT_BACKEND_string(be));
	return (be);
}

/* Outcome GHOST_REDIRECT: Location, with the request's query. */
static void GHOST_COLD
route_redirect(VRT_CTX, struct ghost_task *t, const struct ghost_rq *q)
{
	const char *qm;

	GHOST_STAT(dec_redirect);
	qm = strchr(q->url, '?');
	t->location = WS_Printf(ctx->ws, "%.*s%s",
	    (int)t->ans->loc_len, t->ans->loc, qm != NULL ? qm : "");
	if (t->location == NULL) {
		unreachable(ctx, t, "workspace overflow");
		t->location = "";
	}
}

/*
 * What ghost_route() does after the decision for a plain answer
 * (GHOST_OPS_PLAIN, answer.c: one endpoint, no health rule, filter, edit,
 * affinity, session, cors, timeout or retry) on the backend side, for a
 * bereq without internal lines (so without shard, cache-unknown or
 * recorded lines either): the same task fields, backend, counters and
 * log line as the general path, without its tests, which such an answer
 * and request always fail. In line in ghost_route(), as the branch it
 * expects (GHOST_LIKELY): a long-tail fetch runs one straight line of
 * code from the task's first test to the log line, the general path's
 * branches out of it (no call, no second frame: ~70 instructions and ~5
 * code lines fewer than a function of its own, callgrind, 2026-12-07).
 */
static GHOST_INLINE VCL_BACKEND
route_plain(VRT_CTX, struct ghost_vcl *gv, struct ghost_task *t,
    const struct ghost_rq *q, const char *src)
{
	const struct ghost_ans *a = t->ans;
	const char *what, *nm = NULL;
	size_t wl, nl = 0;
	VCL_BACKEND be;

	/* no affinity, no session (ghost_route()) */
	t->sess_on = 0;
	t->sess_want = -1;
	t->lb_have = 0;
	t->cache_unknown = 0;
	t->obj_host = q->host;
	t->obj_url = q->url;
	t->obj_https = q->https;
	t->obj_method = q->method;
	if (GHOST_UNLIKELY(a->gen > __atomic_load_n(&gv->live_gen,
	    __ATOMIC_ACQUIRE)))
		ghost_be_live(ctx, gv, a->gen);
	/*
	 * a->st and a->hp.id of a plain answer: 200 and 0 (answer.c sets
	 * GHOST_OPS_PLAIN only then; fuzz_answer asserts it), written as
	 * such: the lane reads only the answer's first line (ghost.h)
	 */
	t->status = 200;
	t->reason = NULL;
	/* pick(): the one endpoint, flat index 0, first try */
	t->tried[0] = 0;
	t->ntried = 1;
	t->cur_addr = a->ep1;
	t->cur_al = a->ep1_len;
	t->cur_port = a->ep1_port;
	t->cur_probe = 0;
	t->cur_done = 0;
	/* a memoised answer: the map entry its memo entry caches */
	if (GHOST_LIKELY(t->ans_ref != NULL))
		be = ghost_be_get_memo(ctx, gv, a->ep1, a->ep1_len,
		    a->ep1_port, a->gen, &a->hp, t->ans_ref, &nm, &nl);
	else
		be = ghost_be_get(ctx, gv, a->ep1, a->ep1_len, a->ep1_port,
		    a->gen, &a->hp);
	if (GHOST_UNLIKELY(be == NULL)) {
		(void)route_failed(ctx, t, 0, a->ep1, a->ep1_len,
		    a->ep1_port);
		what = t->reason;
		wl = strlen(what);
	} else if (GHOST_LIKELY(nm != NULL)) {
		GHOST_STAT(dec_backend);
		GHOST_STAT(dec_plain);
		/*
		 * The backend's vcl_name is "ghost." and the map entry's name
		 * (be_create()), on the entry's lines ghost_be_get_memo()
		 * read: not the director's and its string's (two more cold
		 * lines), and no strlen() call.
		 */
		log_plain(ctx, nm, nl, src, a);
		return (be);
	} else {
		GHOST_STAT(dec_backend);
		GHOST_STAT(dec_plain);
		/* VRT_BACKEND_string(be) in line: a call into a function of
		 * its own for one load (~2 instruction-cache misses) */
		CHECK_OBJ_NOTNULL(be, DIRECTOR_MAGIC);
		what = be->vcl_name;
		wl = strlen(what);
	}
	log_decision(ctx, t->status, what, wl, 0, src, a);
	return (be);
}

/*
 * The route fields of a task a route() decided in before, set back to a
 * new task's (task_create(): all zero, no answer, location ""), the memo
 * entry it held dropped: the answer is replaced.
 */
static void GHOST_COLD
route_reset(struct ghost_task *t)
{
	t->have_ans = 0;
	t->preflight = 0;
	t->location = "";
	t->ntried = 0;
	t->cur_addr = NULL;
	t->ans = &ghost_ans_none;
	t->ans_ops = 0;
	if (t->ans_ref != NULL) {
		ghost_memo_unref(t->ans_ref);
		t->ans_ref = NULL;
	}
}

VCL_BACKEND GHOST_HOT
ghost_route(VRT_CTX, struct ghost_vcl *gv, struct ghost_task *t)
{
	struct http *hp;
	struct ghost_rq q;
	const char *src, *what = NULL, *cu, *tok = NULL;
	uint64_t sgen;
	size_t wl;
	char why[256];
	VCL_BACKEND be = NULL;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	CHECK_OBJ_NOTNULL(t, GHOST_TASK_MAGIC);
	hp = ctx->http_bereq != NULL ? ctx->http_bereq : ctx->http_req;
	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);

	/*
	 * A route() in this task before (t->gv is set by every route(),
	 * and only there): an owner's failure, a retry (route_retry()), or
	 * a decision made again. The first route() of a task finds it as
	 * task_create() made it, which is what route_reset() leaves.
	 */
	if (GHOST_UNLIKELY(t->gv != NULL)) {
		if (t->fwd && ctx->http_bereq != NULL)
			return (route_unforward(ctx, gv, t, hp));
		if (t->have_ans && (be = route_retry(ctx, gv, t)) != NULL)
			return (be);
		route_reset(t);
	}
	t->gv = gv;

	ghost_rq_init_in(ctx, &q, hp);
	/*
	 * vcl_recv's cache decision timed out for this request and ghostd's
	 * heartbeat is stale (hung or stopped): a second wait would hold
	 * the worker twice as long. Otherwise (a refused connection in a
	 * restart, a ghostd busy with a reload) ask again.
	 */
	cu = q.cache_unknown;
	if (GHOST_UNLIKELY(cu != NULL) && !strncmp(cu, "timeout", 7) &&
	    ghost_state_read(gv, ctx->now, &sgen, NULL) == 0)
		q.memo_only = cu;
	/*
	 * The answer is the memo entry's, read in place (held by ans_ref),
	 * or ghostd's in the workspace: nothing is copied into the task.
	 */
	/* (the state file: decide() reads it; q.st is not known here) */
	if (GHOST_UNLIKELY(decide(ctx, gv, &q, NULL, NULL, &t->ans, &src, why,
	    sizeof why, &t->ans_ref))) {
		ghost_strip_internal(hp);
		unreachable(ctx, t, why);
		return (NULL);
	}
	t->have_ans = 1;
	t->ans_ops = t->ans->ops;	/* for ghost.response() (ghost.h) */
	/* (most long-tail fetches) */
	if (GHOST_LIKELY((t->ans->ops & GHOST_OPS_PLAIN) &&
	    q.n_internal == 0 && ctx->http_bereq != NULL))
		return (route_plain(ctx, gv, t, &q, src));
	/* affinity's inputs, read before the request filters run */
	t->sess_on = 0;
	t->sess_want = -1;
	t->lb_have = 0;
	/* (most routes have neither: no call) */
	if (GHOST_UNLIKELY(t->ans->o == GHOST_ROUTE && t->ans->lb_k != NULL))
		t->lb_have = ghost_aff_key(ctx, &q, t->ans, &t->lb_h);
	if (GHOST_UNLIKELY(t->ans->o == GHOST_ROUTE && t->ans->has_sp))
		t->sess_want = ghost_sess_find(&q, t->ans, ctx->now,
		    &t->sess_want_at);
	if (ctx->http_bereq != NULL) {
		t->cache_unknown = q.cache_unknown != NULL;
		/*
		 * What the stored object answers to, before any rewrite (the
		 * strings stay in the workspace when a filter replaces the
		 * lines); normalised by ghost.response() only for an object
		 * it stores, so that a pass pays nothing for it.
		 */
		t->obj_host = q.host;
		t->obj_url = q.url;
		t->obj_https = q.https;
		t->obj_method = q.method;
		/* obj_sock: read by ghost_cache_resp(), for a stored object */
	}

	if (GHOST_UNLIKELY(t->ans->gen > __atomic_load_n(&gv->live_gen,
	    __ATOMIC_ACQUIRE)))
		ghost_be_live(ctx, gv, t->ans->gen);

	/* status and reason phrase are the answer's (ghostd decides) */
	t->status = t->ans->st;
	t->reason = NULL;
	/* a CORS preflight of a cors route: ghost answers, whatever the
	 * route would do (the request filters do not apply either) */
	t->preflight = GHOST_UNLIKELY(t->ans->has_cr) &&
	    ghost_cors_preflight(t->ans, hp);
	if (GHOST_UNLIKELY(t->preflight)) {
		t->status = t->ans->pf_st;
		GHOST_STAT(dec_preflight);
	} else if (GHOST_LIKELY(t->ans->o == GHOST_ROUTE && q.shard == NULL))
		be = route_to_backend(ctx, gv, t, hp);
	else switch (t->ans->o) {
	case GHOST_ROUTE:
		if (q.shard != NULL &&
		    (be = route_forward(ctx, gv, t, q.shard, &tok)) != NULL)
			break;
		be = route_to_backend(ctx, gv, t, hp);
		break;
	case GHOST_REDIRECT:
		route_redirect(ctx, t, &q);
		break;
	case GHOST_NO_ROUTE:
		GHOST_STAT(dec_not_found);
		break;
	case GHOST_NO_BACKEND:
		GHOST_STAT(dec_no_backends);
		break;
	default:
		WRONG("answer outcome");
	}
	if (GHOST_UNLIKELY(q.n_internal > 0))
		ghost_strip_internal(hp);
	if (GHOST_UNLIKELY(t->fwd))
		http_PrintfHeader(hp, GHOST_HOP_HDR ": %s%s", tok,
		    q.https ? " https" : "");
	if (be != NULL)
		what = VRT_BACKEND_string(be);
	else if (t->preflight)
		what = "CORS preflight";
	else if (t->reason != NULL)
		what = t->reason;
	if (what != NULL)
		wl = strlen(what);
	else {
		what = t->ans->rs;
		wl = t->ans->rs_len;
	}
	log_decision(ctx, t->status, what, wl, 0, src, t->ans);
	return (be);
}

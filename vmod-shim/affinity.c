/*
 * Layer 2: affinity, mechanically (docs/protocol.md, "Consistent
 * hashing" and "Session persistence"): the key a consistent-hash answer
 * names, hashed as route/ring hashes; the answer's ring, fetched from
 * ghostd once per ring ID and kept per VCL; the endpoint a session token
 * names; the session cookie or header of a response. Which endpoint is
 * healthy, tried or finally taken is route.c's (pick()).
 */

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "vrt_obj.h"

#include "msgpack.h"
#include "ghost.h"
#include "ring.h"
#include "rq.h"
#include "conn.h"
#include "memo.h"
#include "pick.h"
#include "affinity.h"

/* ---- the flat endpoints of an answer's groups ----------------------- */

int
ghost_flat_ep(const uint8_t *g, const uint8_t *g_end, unsigned flat,
    const char **addr, size_t *al, unsigned *port)
{
	struct mp_r r = { g, g_end, 0 };
	uint32_t n, m, i;

	if (g == NULL)
		return (-1);
	n = mp_r_arr(&r);
	for (i = 0; i < n && !r.err; i++) {
		(void)mp_r_arr(&r);
		(void)mp_r_uint(&r);
		m = mp_r_arr(&r);
		if (flat >= m) {
			flat -= m;
			while (m-- > 0 && !r.err)
				mp_skip(&r);
			continue;
		}
		while (flat-- > 0 && !r.err)
			mp_skip(&r);
		(void)mp_r_arr(&r);
		mp_r_str(&r, addr, al);
		*port = (unsigned)mp_r_int(&r);
		return (r.err ? -1 : 0);
	}
	return (-1);
}

/* ---- keys ----------------------------------------------------------- */

/* Value of the first cookie named n (nl bytes) in line v (vl bytes). */
static int
cookie_val(const char *v, size_t vl, const char *n, size_t nl,
    const char **cv, size_t *cl)
{
	const char *e = v + vl, *p = v, *s, *eq;

	while (p < e) {
		while (p < e && (*p == ' ' || *p == '\t' || *p == ';'))
			p++;
		s = p;
		while (p < e && *p != ';')
			p++;
		eq = memchr(s, '=', (size_t)(p - s));
		if (eq != NULL && (size_t)(eq - s) == nl &&
		    !memcmp(s, n, nl)) {
			*cv = eq + 1;
			*cl = (size_t)(p - eq - 1);
			while (*cl > 0 && ((*cv)[*cl - 1] == ' ' ||
			    (*cv)[*cl - 1] == '\t'))
				(*cl)--;
			return (1);
		}
	}
	return (0);
}

/*
 * The value of request header n (nl bytes; the first line) or, with
 * cookie, of cookie n in the Cookie lines (the first one); 0 when the
 * request has none (or only an empty one).
 */
static int
req_val(const struct ghost_rq *q, int cookie, const char *n, size_t nl,
    const char **v, size_t *vl)
{
	const char *hn;
	size_t hl;
	unsigned u = HTTP_HDR_FIRST;

	while (ghost_rq_hdr(q, &u, &hn, &hl, v, vl)) {
		if (cookie) {
			if (hl == 6 && !strncasecmp(hn, "cookie", 6) &&
			    cookie_val(*v, *vl, n, nl, v, vl) && *vl > 0)
				return (1);
		} else if (hl == nl && !strncasecmp(hn, n, nl))
			return (*vl > 0);
	}
	return (0);
}

int
ghost_aff_key(VRT_CTX, const struct ghost_rq *q, const struct ghost_ans *a,
    uint64_t *h)
{
	static const uint8_t zero[DIGEST_LEN];
	struct mp_r r;
	const uint8_t *dg = NULL;
	const char *n, *v;
	size_t nl, vl;
	uint32_t cnt;
	int64_t kind;
	VCL_IP ip;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (a->lb_k == NULL)
		return (0);
	r.p = a->lb_k;
	r.end = a->lb_k_end;
	r.err = 0;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		(void)mp_r_arr(&r);
		kind = mp_r_int(&r);
		mp_r_str(&r, &n, &nl);
		if (r.err)
			break;
		switch (kind) {
		case GHOST_KEY_CACHE_KEY:
			if (ctx->bo != NULL)
				dg = ctx->bo->digest;
			else if (ctx->req != NULL)
				dg = ctx->req->digest;
			if (dg != NULL && memcmp(dg, zero, DIGEST_LEN)) {
				*h = ghost_ring_hash(dg, DIGEST_LEN);
				return (1);
			}
			/* no lookup (a pipe): the URL */
			/* FALLTHROUGH */
		case GHOST_KEY_URL:
			*h = ghost_ring_hash(q->url, strlen(q->url));
			return (1);
		case GHOST_KEY_HEADER:
		case GHOST_KEY_COOKIE:
			if (req_val(q, kind == GHOST_KEY_COOKIE, n, nl, &v,
			    &vl)) {
				*h = ghost_ring_hash(v, vl);
				return (1);
			}
			break;
		case GHOST_KEY_SOURCE_IP:
			if (ctx->sp == NULL)
				break;
			ip = VRT_r_client_ip(ctx);
			v = ip != NULL ? VRT_IP_string(ctx, ip) : NULL;
			if (v != NULL) {
				*h = ghost_ring_hash(v, strlen(v));
				return (1);
			}
			break;
		default:
			break;
		}
	}
	return (0);
}

/* ---- the rings, per VCL --------------------------------------------- */

/*
 * A ring: immutable once kept, freed with its last reference (the slot
 * holds one, every walk one while it runs), so that no lock is held
 * while a walk asks about backends.
 */
struct ghost_ring {
	uint64_t		id;
	uint32_t		n;	/* members */
	unsigned		refs;	/* atomic */
	size_t			len;
	uint8_t			pts[];
};

/* 64 rings per VCL, 4-way set associative on the ring ID */
#define RING_SETS	16
#define RING_WAYS	4

struct ghost_rings {
	struct ghost_ring	*slot[RING_SETS][RING_WAYS];
	unsigned		next[RING_SETS];	/* round robin */
};

static void
ring_release(struct ghost_ring *rg)
{
	if (rg != NULL &&
	    __atomic_sub_fetch(&rg->refs, 1, __ATOMIC_ACQ_REL) == 0)
		free(rg);
}

void
ghost_rings_free(struct ghost_vcl *gv)
{
	struct ghost_rings *rs;
	unsigned s, w;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	PTOK(pthread_rwlock_wrlock(&gv->ring_lock));
	rs = gv->rings;
	gv->rings = NULL;
	PTOK(pthread_rwlock_unlock(&gv->ring_lock));
	if (rs == NULL)
		return;
	for (s = 0; s < RING_SETS; s++)
		for (w = 0; w < RING_WAYS; w++)
			ring_release(rs->slot[s][w]);
	free(rs);
}

/* Slot of ring id (ring_lock held); NULL when absent. */
static struct ghost_ring **
ring_slot(const struct ghost_vcl *gv, uint64_t id)
{
	unsigned w;

	if (gv->rings == NULL)
		return (NULL);
	for (w = 0; w < RING_WAYS; w++)
		if (gv->rings->slot[id % RING_SETS][w] != NULL &&
		    gv->rings->slot[id % RING_SETS][w]->id == id)
			return (&gv->rings->slot[id % RING_SETS][w]);
	return (NULL);
}

/* Ring id with a reference for the caller (ring_release()); or NULL. */
static struct ghost_ring *
ring_get(struct ghost_vcl *gv, uint64_t id)
{
	struct ghost_ring **s, *rg = NULL;

	PTOK(pthread_rwlock_rdlock(&gv->ring_lock));
	s = ring_slot(gv, id);
	if (s != NULL) {
		rg = *s;
		__atomic_add_fetch(&rg->refs, 1, __ATOMIC_ACQ_REL);
	}
	PTOK(pthread_rwlock_unlock(&gv->ring_lock));
	return (rg);
}

static void v_matchproto_(ghost_enc_f)
enc_ring(struct mp_w *w, void *arg)
{
	const uint64_t *id = arg;

	mp_w_map(w, 2);
	mp_w_cstr(w, "t");
	mp_w_cstr(w, "ring");
	mp_w_cstr(w, "id");
	mp_w_uint(w, *id);
}

struct ring_ans {
	const char	*t;
	size_t		tl;
	uint64_t	id;
	int64_t		n;
	const uint8_t	*pts;
	size_t		len;
};

static int v_matchproto_(mp_field_f)
ring_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ring_ans *a = priv;

	if (mp_streq(k, kl, "t"))
		mp_r_str(r, &a->t, &a->tl);
	else if (mp_streq(k, kl, "id"))
		a->id = mp_r_uint(r);
	else if (mp_streq(k, kl, "n"))
		a->n = mp_r_int(r);
	else if (mp_streq(k, kl, "pts"))
		mp_r_bin(r, &a->pts, &a->len);
	else
		return (0);
	return (1);
}

/*
 * Ask ghostd for ring id of n members and keep it. 0, or -1 with why.
 * The answer (up to a frame) goes to a buffer of its own, not to the
 * task's workspace; this happens once per ring and VCL.
 */
static int
ring_fetch(struct ghost_vcl *gv, uint64_t id, uint32_t n, char *why,
    size_t wl)
{
	struct ghost_rt rt;
	struct ring_ans ra;
	struct mp_r r;
	struct ws ws[1];
	struct ghost_ring *rg, *old = NULL, **s;
	void *mem;
	unsigned set, w;

	mem = malloc(GHOST_MAX_FRAME + 4096);
	if (mem == NULL) {
		snprintf(why, wl, "out of memory");
		return (-1);
	}
	WS_Init(ws, "grg", mem, GHOST_MAX_FRAME + 4096);
	memset(&rt, 0, sizeof rt);
	rt.enc = enc_ring;
	rt.arg = &id;
	rt.enc_max = 64;
	rt.timeout = gv->timeout;
	memset(&ra, 0, sizeof ra);
	if (ghost_roundtrip(gv, ws, &rt)) {
		snprintf(why, wl, "%s", rt.why);
		free(mem);
		return (-1);
	}
	r.p = rt.ans;
	r.end = rt.ans + rt.ans_len;
	r.err = 0;
	mp_r_fields(&r, ring_field, &ra);
	if (r.err || ra.t == NULL || !mp_streq(ra.t, ra.tl, "ring") ||
	    ra.id != id) {
		snprintf(why, wl, "bad ring answer");
		free(mem);
		return (-1);
	}
	if (ra.pts == NULL) {
		snprintf(why, wl, "ghostd has no ring %ju (a newer table)",
		    (uintmax_t)id);
		free(mem);
		return (-1);
	}
	if (ra.n != (int64_t)n || ghost_ring_check(ra.pts, ra.len, n)) {
		snprintf(why, wl, "bad ring answer (%jd members for %u "
		    "endpoints, %zu bytes)", (intmax_t)ra.n, n, ra.len);
		free(mem);
		return (-1);
	}
	rg = malloc(sizeof *rg + ra.len);
	if (rg == NULL) {
		snprintf(why, wl, "out of memory");
		free(mem);
		return (-1);
	}
	rg->id = id;
	rg->n = n;
	rg->refs = 1;
	rg->len = ra.len;
	memcpy(rg->pts, ra.pts, ra.len);
	free(mem);
	PTOK(pthread_rwlock_wrlock(&gv->ring_lock));
	if (gv->rings == NULL)
		gv->rings = calloc(1, sizeof *gv->rings);
	if (gv->rings == NULL || ring_slot(gv, id) != NULL) {
		/* out of memory, or another fetch kept it meanwhile */
		PTOK(pthread_rwlock_unlock(&gv->ring_lock));
		free(rg);
		return (0);
	}
	set = (unsigned)(id % RING_SETS);
	w = gv->rings->next[set]++ % RING_WAYS;
	s = &gv->rings->slot[set][w];
	old = *s;
	*s = rg;
	PTOK(pthread_rwlock_unlock(&gv->ring_lock));
	ring_release(old);
	return (0);
}

int64_t
ghost_aff_walk(VRT_CTX, struct ghost_vcl *gv, const struct ghost_ans *a,
    uint64_t h, ghost_ring_ok_f *ok, void *priv)
{
	struct ghost_ring *rg;
	char why[256];
	uint64_t now_ms, sgen;
	unsigned n, tries;
	int64_t m = -2;
	int fail;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	n = ghost_pick_count(a->g, a->g_end);
	if (a->lb_ring == 0 || n == 0)
		return (-2);
	for (tries = 0; tries < 2; tries++) {
		rg = ring_get(gv, a->lb_ring);
		if (rg != NULL && rg->n == n) {
			m = ghost_ring_walk(rg->pts, rg->len, rg->n, h, ok,
			    priv);
			ring_release(rg);
			return (m);
		}
		ring_release(rg);
		/*
		 * Not kept: ask ghostd, unless a fetch failed less than a
		 * second ago or ghostd's heartbeat is stale (hung or away:
		 * a request must not wait for it).
		 */
		now_ms = (uint64_t)(ctx->now * 1e3);
		if (tries > 0 ||
		    now_ms < __atomic_load_n(&gv->ring_retry, __ATOMIC_RELAXED))
			break;
		if (ghost_state_read(gv, ctx->now, &sgen, NULL) == 0) {
			snprintf(why, sizeof why, "ghostd silent");
			fail = 1;
		} else
			fail = ring_fetch(gv, a->lb_ring, n, why, sizeof why);
		if (fail) {
			__atomic_store_n(&gv->ring_retry, now_ms + 1000,
			    __ATOMIC_RELAXED);
			VSLb(ctx->vsl, SLT_Error, "ghost: ring %ju: %s; "
			    "weighted pick instead", (uintmax_t)a->lb_ring, why);
			return (-2);
		}
	}
	return (-2);
}

/* ---- session persistence ------------------------------------------- */

int64_t
ghost_sess_find(const struct ghost_rq *q, const struct ghost_ans *a,
    double now, int64_t *issued)
{
	struct mp_r r;
	const char *v, *dot, *tk;
	size_t vl, tl;
	uint32_t cnt, i;
	int64_t t = 0;
	size_t j;

	if (!a->has_sp || !req_val(q, a->sp_t == GHOST_SP_COOKIE, a->sp_n,
	    a->sp_nl, &v, &vl))
		return (-1);
	dot = memchr(v, '.', vl);
	if (dot == NULL || dot + 1 == v + vl || v + vl - dot > 12)
		return (-1);
	for (j = 1; dot + j < v + vl; j++) {
		if (dot[j] < '0' || dot[j] > '9')
			return (-1);
		t = t * 10 + (dot[j] - '0');
	}
	/* a session from the future, or past its absolute timeout */
	if (t > (int64_t)now + 300 ||
	    (a->sp_a > 0 && (int64_t)now - t >= a->sp_a))
		return (-1);
	r.p = a->sp_tk;
	r.end = a->sp_tk_end;
	r.err = 0;
	cnt = mp_r_arr(&r);
	for (i = 0; i < cnt && !r.err; i++) {
		mp_r_str(&r, &tk, &tl);
		if (!r.err && tl == (size_t)(dot - v) && !memcmp(tk, v, tl)) {
			*issued = t;
			return (i);
		}
	}
	return (-1);
}

void
ghost_sess_resp(VRT_CTX, struct http *hp, const struct ghost_ans *a,
    unsigned flat, int64_t issued, int fresh, double now)
{
	struct mp_r r;
	const char *tk = NULL;
	size_t tl = 0;
	uint32_t cnt, i;
	int64_t age = -1, left;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	if (!a->has_sp)
		return;
	r.p = a->sp_tk;
	r.end = a->sp_tk_end;
	r.err = 0;
	cnt = mp_r_arr(&r);
	for (i = 0; i <= flat && i < cnt && !r.err; i++)
		mp_r_str(&r, &tk, &tl);
	if (r.err || flat >= cnt || tk == NULL)
		return;
	if (a->sp_t == GHOST_SP_HEADER) {
		http_PrintfHeader(hp, "%.*s: %.*s.%jd", (int)a->sp_nl,
		    a->sp_n, (int)tl, tk, (intmax_t)issued);
		return;
	}
	/*
	 * Max-Age: the time left of the absolute timeout, at most the idle
	 * timeout; without an idle timeout the cookie is set only when the
	 * session begins, with one on every response (it slides).
	 */
	left = a->sp_a > 0 ? a->sp_a - ((int64_t)now - issued) : -1;
	if (a->sp_i > 0)
		age = left >= 0 && left < a->sp_i ? left : a->sp_i;
	else if (!fresh)
		return;
	else
		age = left;
	if (age >= 0)
		http_PrintfHeader(hp, "Set-Cookie: %.*s=%.*s.%jd; Max-Age=%jd; "
		    "Path=/; HttpOnly", (int)a->sp_nl, a->sp_n, (int)tl, tk,
		    (intmax_t)issued, (intmax_t)age);
	else
		http_PrintfHeader(hp, "Set-Cookie: %.*s=%.*s.%jd; Path=/; "
		    "HttpOnly", (int)a->sp_nl, a->sp_n, (int)tl, tk,
		    (intmax_t)issued);
}

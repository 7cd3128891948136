/*
 * Layer 2: decision reuse, request side: memo keys built from exactly the inputs
 * an answer depends on (docs/protocol.md "Reuse"), lookup and insertion
 * of answers and of each host's deps. The table itself is in memo.c.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* strchrnul() */
#endif

#include "config.h"

#include <string.h>
#include <strings.h>

#include "cache/cache.h"

#include "msgpack.h"
#include "ghost.h"
#include "hdr.h"
#include "cachekey.h"
#include "query.h"
#include "answer.h"
#include "memo.h"
#include "rq.h"
#include "stats.h"
#include "reuse.h"

/* Scope lengths probed per request at most (route.MaxScopeLens). */
#define MEMO_MAX_SCOPES	16

struct kb {
	char		*p;
	char		*b;
	char		*e;
	struct ws	*ws;	/* the key's memory, NULL: a caller's buffer */
	int		err;
};

static void
kb_put(struct kb *k, const char *s, size_t l)
{
	uint32_t l32 = (uint32_t)l;

	if (k->err || (size_t)(k->e - k->p) < l + 4) {
		k->err = 1;
		return;
	}
	memcpy(k->p, &l32, 4);
	memcpy(k->p + 4, s, l);
	k->p += 4 + l;
}

static void
kb_cstr(struct kb *k, const char *s)
{
	if (s == NULL)
		kb_put(k, "\377", 1);	/* absent differs from "" */
	else
		kb_put(k, s, strlen(s));
}

/*
 * Build a key in buf (bsz bytes), or when buf is NULL in the rest of the
 * workspace (kb_end() keeps it). A lookup builds its keys on the stack:
 * reserving and releasing the workspace twice cost ~400 instructions per
 * decision.
 */
static void
kb_begin(struct ws *ws, struct kb *k, char *buf, size_t bsz)
{
	unsigned sz;

	if (buf != NULL) {
		k->ws = NULL;
		k->b = k->p = buf;
		k->e = buf + bsz;
	} else {
		k->ws = ws;
		sz = WS_ReserveAll(ws);
		k->b = k->p = WS_Reservation(ws);
		k->e = k->b + sz;
	}
	k->err = 0;
}

/* Keep the key built since kb_begin(); NULL (nothing kept) on overflow. */
static const char *
kb_end(struct kb *k, size_t *klen)
{
	if (k->err) {
		if (k->ws != NULL)
			WS_Release(k->ws, 0);
		return (NULL);
	}
	*klen = (size_t)(k->p - k->b);
	if (k->ws != NULL)
		WS_Release(k->ws, (unsigned)*klen);
	return (k->b);
}

/* The request's path: the URL up to the first '?', "/" when empty. */
static GHOST_INLINE void
rq_path(const struct ghost_rq *q, const char **p, size_t *l)
{
	const char *qm;

	CHECK_OBJ_NOTNULL(q, GHOST_RQ_MAGIC);
	/* one scan: the first '?' or the end (varnishd's code calls it too) */
	qm = strchrnul(q->url, '?');
	*p = q->url;
	*l = (size_t)(qm - q->url);
	if (*l == 0) {
		*p = "/";
		*l = 1;
	}
}

/* Index of the string s in the msgpack array of strings at *r, or -1. */
static int32_t
str_index(struct mp_r *r, const char *s, size_t l)
{
	const char *v;
	size_t vl;
	uint32_t n, i;
	int32_t found = -1;

	n = mp_r_arr(r);
	for (i = 0; i < n && !r->err; i++) {
		mp_r_str(r, &v, &vl);
		if (found < 0 && vl == l && !memcmp(v, s, l))
			found = (int32_t)i;
	}
	return (found);
}

static void
kb_class(struct kb *k, int32_t c)
{
	char b[5];

	b[0] = 'c';
	memcpy(b + 1, &c, 4);
	kb_put(k, b, sizeof b);
}

/*
 * One header of deps.h in the key. With declared values (hv) and at most
 * one line of it, its class: the index of the value it equals, or -1 for
 * none (absent included); otherwise every raw line as routing saw it.
 */
/*
 * Every line of header hn, raw, for the headers the cache decision reads
 * (deps.c): on every request, cache hits included, so a cheap test of
 * each line ("name:" at its start) instead of splitting them all. Not for
 * the headers ghost.prepare() records (key_header() reads those).
 */
static void
key_lines(struct kb *k, const struct ghost_rq *q, const char *hn, size_t hl)
{
	const txt *t;
	const char *v;
	unsigned u;

	kb_put(k, hn, hl);
	kb_put(k, "r", 1);
	for (u = HTTP_HDR_FIRST; u < q->hp->nhd; u++) {
		t = &q->hp->hd[u];
		if (t->b == NULL || (size_t)(t->e - t->b) <= hl ||
		    t->b[hl] != ':' || (t->b[0] | 0x20) != (hn[0] | 0x20) ||
		    strncasecmp(t->b, hn, hl))
			continue;
		for (v = t->b + hl + 1; v < t->e && (*v == ' ' || *v == '\t');
		    v++)
			continue;
		kb_put(k, v, (size_t)(t->e - v));
	}
	kb_put(k, "", 0);	/* end of this header */
}

static void
key_header(struct kb *k, const struct ghost_rq *q, const char *hn,
    size_t hl, struct mp_r *hv)
{
	const char *n, *v, *v1 = NULL;
	size_t nl, vl, v1l = 0;
	unsigned u, lines = 0;

	kb_put(k, hn, hl);
	if (hv != NULL && !mp_r_nil(hv)) {
		u = HTTP_HDR_FIRST;
		while (lines < 2 && ghost_rq_hdr(q, &u, &n, &nl, &v, &vl))
			if (nl == hl && !strncasecmp(n, hn, hl)) {
				v1 = v;
				v1l = vl;
				lines++;
			}
		if (lines == 0) {
			mp_skip(hv);
			kb_class(k, -1);
			return;
		}
		if (lines == 1) {
			kb_class(k, str_index(hv, v1, v1l));
			return;
		}
		mp_skip(hv);
	}
	kb_put(k, "r", 1);
	u = HTTP_HDR_FIRST;
	while (ghost_rq_hdr(q, &u, &n, &nl, &v, &vl))
		if (nl == hl && !strncasecmp(n, hn, hl))
			kb_put(k, v, vl);
	kb_put(k, "", 0);	/* end of this header */
}

/* The query in the key: each qv parameter's class, else the raw query. */
static void
key_query(struct kb *k, const char *qm, const struct ghost_deps *d)
{
	struct mp_r r;
	const char *n, *v;
	size_t nl, vl;
	uint32_t cnt;

	if (d->qv == NULL) {
		kb_cstr(k, qm);
		return;
	}
	kb_put(k, "c", 1);
	r.p = d->qv;
	r.end = d->qv_end;
	r.err = 0;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		(void)mp_r_arr(&r);
		mp_r_str(&r, &n, &nl);
		if (qm != NULL && ghost_query_param(qm + 1, strlen(qm + 1), n,
		    nl, &v, &vl))
			kb_class(k, str_index(&r, v, vl));
		else {
			mp_skip(&r);
			kb_class(k, -1);
		}
	}
	if (r.err)
		k->err = 1;
}

/*
 * Key of an answer: the raw host and exactly the inputs in deps (headers
 * and query by value class where declared, see key_header()), the path
 * part last: 'S' + the first sc bytes for a scoped answer, else 'E' + the
 * whole path (path, pl: rq_path()). Room is left for the whole path
 * whatever the part, so that memo_find() can probe every scope length in
 * place; *base is where the path part starts.
 */
static char *
memo_key_full(struct ws *ws, const struct ghost_rq *q,
    const struct ghost_deps *d, const char *path, size_t pl, size_t *base,
    size_t *klen, char *buf, size_t bsz)
{
	struct kb k;
	struct mp_r r, hv, *hvp;
	const char *qm, *hn;
	size_t hl;
	uint32_t cnt;

	kb_begin(ws, &k, buf, bsz);
	kb_put(&k, "A", 1);
	kb_cstr(&k, q->host);
	if (GHOST_UNLIKELY(d->m))
		kb_cstr(&k, q->method);
	if (GHOST_UNLIKELY(d->s))
		kb_cstr(&k, ghost_rq_sock(q));
	if (GHOST_UNLIKELY(d->x))
		kb_put(&k, q->https ? "1" : "0", 1);
	if (GHOST_UNLIKELY(d->h != NULL)) {
		r.p = d->h;
		r.end = d->h_end;
		r.err = 0;
		hvp = NULL;
		if (d->hv != NULL) {
			hv.p = d->hv;
			hv.end = d->hv_end;
			hv.err = 0;
			(void)mp_r_arr(&hv);
			hvp = &hv;
		}
		cnt = mp_r_arr(&r);
		while (cnt-- > 0 && !r.err) {
			mp_r_str(&r, &hn, &hl);
			if (hvp != NULL && hvp->p >= hvp->end)
				hvp = NULL;	/* hv shorter than h: raw */
			key_header(&k, q, hn, hl, hvp);
		}
		if (r.err || (hvp != NULL && hvp->err))
			k.err = 1;
	}
	if (GHOST_UNLIKELY(d->c != NULL)) {
		/* headers the cache decision reads: raw lines */
		kb_put(&k, "C", 1);
		r.p = d->c;
		r.end = d->c_end;
		r.err = 0;
		cnt = mp_r_arr(&r);
		while (cnt-- > 0 && !r.err) {
			mp_r_str(&r, &hn, &hl);
			if (q->rec && ghost_hdr_recorded(hn, hl))
				key_header(&k, q, hn, hl, NULL);
			else
				key_lines(&k, q, hn, hl);
		}
		if (r.err)
			k.err = 1;
	}
	if (GHOST_UNLIKELY(d->q)) {
		qm = strchr(q->url, '?');
		key_query(&k, qm, d);
	}
	*base = (size_t)(k.p - k.b);
	if (d->p) {
		kb_put(&k, "E", 1);
		kb_put(&k, path, pl);
	}
	if (GHOST_UNLIKELY(kb_end(&k, klen) == NULL))	/* too long for
							   buf: workspace */
		return (buf != NULL && ws != NULL ?
		    memo_key_full(ws, q, d, path, pl, base, klen, NULL, 0) :
		    NULL);
	return (k.b);
}

/* One kb_put() part at w (l bytes of s after their length): past it. */
static GHOST_INLINE char *
key_part(char *w, const char *s, size_t l)
{
	uint32_t l32 = (uint32_t)l;

	memcpy(w, &l32, 4);
	memcpy(w + 4, s, l);
	return (w + 4 + l);
}

/*
 * The usual key (the Host h, hl bytes, then with p the whole path) into
 * buf, which has room: its length, and *base where the path part starts.
 */
static GHOST_INLINE size_t
key_usual(char *buf, const char *h, size_t hl, int p, const char *path,
    size_t pl, size_t *base)
{
	char *w;

	w = key_part(buf, "A", 1);
	w = key_part(w, h, hl);
	*base = (size_t)(w - buf);
	if (p) {
		w = key_part(w, "E", 1);
		w = key_part(w, path, pl);
	}
	return ((size_t)(w - buf));
}

/*
 * memo_key(): for the usual deps (Host and path only, or Host alone) the
 * same bytes written straight into buf, a few code lines; any other
 * deps, or a key longer than buf, by memo_key_full().
 */
static char *
memo_key(struct ws *ws, const struct ghost_rq *q,
    const struct ghost_deps *d, const char *path, size_t pl, size_t *base,
    size_t *klen, char *buf, size_t bsz)
{
	const char *h;
	size_t hl;

	if (GHOST_UNLIKELY(buf == NULL || d->m || d->s || d->x || d->q ||
	    d->h != NULL || d->c != NULL))
		return (memo_key_full(ws, q, d, path, pl, base, klen, buf,
		    bsz));
	h = q->host != NULL ? q->host : "\377";	/* absent differs from "" */
	hl = strlen(h);
	if (GHOST_UNLIKELY(5 + 4 + hl + (d->p ? 5 + 4 + pl : 0) > bsz))
		return (memo_key_full(ws, q, d, path, pl, base, klen, buf,
		    bsz));
	*klen = key_usual(buf, h, hl, d->p, path, pl, base);
	return (buf);
}

/*
 * Turn the path part of a key built by memo_key() (with deps.p; pl is the
 * path's length) into the scope of length l (0 <= l <= pl), or into the
 * whole path (l < 0). Returns the key's length.
 */
static size_t GHOST_HOT
key_scope(char *key, size_t base, size_t pl, int64_t l)
{
	uint32_t l32;

	assert(l <= (int64_t)pl);
	key[base + 4] = l < 0 ? 'E' : 'S';
	l32 = (uint32_t)(l < 0 ? pl : (size_t)l);
	memcpy(key + base + 5, &l32, 4);
	return (base + 9 + l32);
}

/*
 * Key of a host's deps record: the raw Host itself, or one NUL byte when
 * there is none. Never an answer key (those start with a length
 * prefix, NUL bytes that a Host cannot hold) nor a Host; nothing built.
 */
static const char * GHOST_HOT
deps_key(const struct ghost_rq *q, size_t *klen)
{
	if (q->host == NULL) {
		*klen = 1;
		return ("");
	}
	*klen = strlen(q->host);
	return (q->host);
}

/* Move pointer field f of *o from an object at from onto one at to. */
#define REBASE(o, f)							\
	if ((o)->f != NULL)						\
		(o)->f = (const void *)(to +				\
		    ((uintptr_t)(const void *)(o)->f - from));

/*
 * The deps record of a host is kept decoded too: the struct ghost_deps,
 * the address its pointers were relative to, then the deps map as ghostd
 * sent it.
 */
#define DEPS_PTRS(X) X(h) X(h_end) X(hv) X(hv_end) X(qv) X(qv_end) X(sl) \
	X(sl_end) X(c) X(c_end) X(raw) X(raw_end)

static void
deps_rebase(struct ghost_deps *d, uintptr_t from, const uint8_t *to)
{
#define X(f)	REBASE(d, f)
	DEPS_PTRS(X)
#undef X
}

/*
 * An answer is kept decoded: the struct ghost_ans, the address its
 * pointers were relative to, then the raw answer they point into. A
 * lookup copies all three into the workspace and moves the pointers onto
 * the copy (ghostd's answer is decoded once, not on every reuse).
 */
#define ANS_PTRS(X) X(g) X(g_end) X(ep1) X(rqs) \
	X(rqs_end) X(rqa) X(rqa_end) X(rqr) X(rqr_end) X(rss) X(rss_end) \
	X(rsa) X(rsa_end) X(rsr) X(rsr_end) X(path) X(hst) X(loc) X(pe_with) \
	X(rs) X(bd) X(nc) X(rn) X(kh) X(kh_end) X(qi) X(qi_end) X(qx) X(qx_end) \
	X(hp.u) X(hp.h) X(lb_k) X(lb_k_end) X(sp_n) X(sp_tk) X(sp_tk_end)
/* the cors filter's, only in answers that have one (has_cr) */
#define CR_PTRS(X) X(cr_oe) X(cr_oe_end) X(cr_ow) X(cr_ow_end) X(cr_h) \
	X(cr_h_end) X(cr_v) X(cr_v_end) X(pf_rs) X(pf_rq) X(pf_rq_end) \
	X(pf_h) X(pf_h_end)

static void
ans_rebase(struct ghost_ans *a, uintptr_t from, const uint8_t *to)
{
	deps_rebase(&a->deps, from, to);
#define X(f)	REBASE(a, f)
	ANS_PTRS(X)
	if (a->has_cr) {
		CR_PTRS(X)
	}
#undef X
}

/*
 * A memoised struct (osz bytes, copied to obj) followed by the address
 * its pointers were relative to and the raw data they point into, at v in
 * a memo entry: its pointers moved onto the entry's own raw data (rb),
 * and that address recorded, so that a referenced lookup uses them as
 * they are (memo_answer() with a reference).
 */
static void
fix_in_place(uint8_t *v, size_t vl, void *obj, size_t osz,
    void (*rb)(void *, uintptr_t, const uint8_t *))
{
	uintptr_t from, to;

	assert(vl >= osz + sizeof from);
	memcpy(obj, v, osz);
	memcpy(&from, v + osz, sizeof from);
	to = (uintptr_t)(v + osz + sizeof from);
	rb(obj, from, (const uint8_t *)to);
	memcpy(v, obj, osz);
	memcpy(v + osz, &to, sizeof to);
}

static void
deps_rb(void *o, uintptr_t from, const uint8_t *to)
{
	deps_rebase(o, from, to);
}

static void
ans_rb(void *o, uintptr_t from, const uint8_t *to)
{
	ans_rebase(o, from, to);
}

/* ghost_memo_fix_f of a host's deps record */
static void v_matchproto_(ghost_memo_fix_f)
deps_fix(uint8_t *v, size_t vl)
{
	struct ghost_deps d;

	fix_in_place(v, vl, &d, sizeof d, deps_rb);
}

/*
 * ghost_memo_fix_f of a memoised answer; its generation in decimal too,
 * once, for the decision's log line of every reuse (route.c).
 */
static void v_matchproto_(ghost_memo_fix_f)
ans_fix(uint8_t *v, size_t vl)
{
	struct ghost_ans a;
	char d[20];
	uint64_t g;
	unsigned n = 0, i;

	fix_in_place(v, vl, &a, sizeof a, ans_rb);
	g = a.gen;
	do
		d[n++] = (char)('0' + g % 10);
	while ((g /= 10) != 0);
	for (i = 0; i < n; i++)
		a.gen_d[i] = d[n - 1 - i];
	a.gen_dl = (uint8_t)n;
	memcpy(v, &a, sizeof a);
}

/*
 * Check a fresh answer's scope and path edit against the request it
 * answers, and make a redirect's loc the part before the edited path, so
 * that the answer can serve other paths (docs/protocol.md "Scopes"). An
 * answer that does not add up keeps the values ghostd computed for this
 * path and is reused for this path only.
 */
void
ghost_ans_fit(const struct ghost_rq *q, struct ghost_ans *a)
{
	const char *path, *e;
	size_t pl, el;

	rq_path(q, &path, &pl);
	if (a->sc > (int64_t)pl)
		a->sc = -1;
	if (!a->pe)
		return;
	if (a->pe_cut > pl || (a->sc >= 0 && (int64_t)a->pe_cut > a->sc)) {
		a->pe = 0;
		a->sc = -1;
		return;
	}
	if (a->o != 3) {
		/* URLRewrite: the path is made from pe for each request */
		a->path = NULL;
		a->path_len = 0;
		return;
	}
	/* loc ends with the edited path, "/" when that is empty */
	el = a->pe_with_len + pl - a->pe_cut;
	e = a->loc + a->loc_len;
	if (el == 0 ? (a->loc_len < 1 || e[-1] != '/') :
	    (a->loc_len < el || memcmp(e - el, a->pe_with, a->pe_with_len) ||
	    memcmp(e - el + a->pe_with_len, path + a->pe_cut,
	    pl - a->pe_cut))) {
		a->pe = 0;
		a->sc = -1;
		return;
	}
	a->loc_len -= el == 0 ? 1 : el;
	a->loc_base = 1;
}

/*
 * Apply the path edit of an answer to this request's path: the URLRewrite
 * path, or the redirect location (base + edited path). The results live
 * in the workspace. Returns -1 on workspace overflow.
 */
int GHOST_HOT
ghost_ans_resolve(struct ws *ws, const struct ghost_rq *q,
    struct ghost_ans *a)
{
	const char *path, *p;
	size_t pl;

	if (GHOST_LIKELY(!ghost_ans_edits(a)))
		return (0);
	rq_path(q, &path, &pl);
	if (a->pe_cut > pl)
		return (-1);
	path += a->pe_cut;
	pl -= a->pe_cut;
	if (a->pe_with_len + pl == 0) {
		path = "/";
		pl = 1;
	}
	if (a->o == 0)
		p = WS_Printf(ws, "%.*s%.*s", (int)a->pe_with_len, a->pe_with,
		    (int)pl, path);
	else
		p = WS_Printf(ws, "%.*s%.*s%.*s", (int)a->loc_len, a->loc,
		    (int)a->pe_with_len, a->pe_with, (int)pl, path);
	if (p == NULL)
		return (-1);
	if (a->o == 0) {
		a->path = p;
		a->path_len = strlen(p);
	} else {
		a->loc = p;
		a->loc_len = strlen(p);
		a->loc_base = 0;
	}
	a->pe = 0;
	return (0);
}

/*
 * The scope lengths of deps.sl (at most MEMO_MAX_SCOPES, ascending) into
 * sl; how many. Decoded once, when the deps record is memoised: the
 * record carries them after the raw deps map, so that a lookup does not
 * decode msgpack (memo_find_deps()).
 */
static uint32_t
scopes_decode(const struct ghost_deps *d, int64_t *sl)
{
	struct mp_r r;
	uint32_t n, i;

	if (d->sl == NULL)
		return (0);
	r.p = d->sl;
	r.end = d->sl_end;
	r.err = 0;
	n = mp_r_arr(&r);
	for (i = 0; i < n && i < MEMO_MAX_SCOPES && !r.err; i++)
		sl[i] = mp_r_int(&r);
	return (i);
}

/*
 * The 16 hex digits of the ban line's name of a normalised host (cache.c
 * "X-Ghost-Ban-<hex>"): its hash, each byte's two digits high first.
 */
void
ghost_ban_hex(const char *host, char *hx)
{
	static const char hexd[] = "0123456789abcdef";
	uint64_t h;
	int i;

	h = ghost_hash(host, strlen(host), 0x67686f7374ULL ^ 'b');
	for (i = 7; i >= 0; i--) {
		hx[0] = hexd[(h >> (8 * i + 4)) & 0xf];
		hx[1] = hexd[(h >> (8 * i)) & 0xf];
		hx += 2;
	}
}

/*
 * For a memoised answer (memo_store()): when the request's Host is
 * already in normal form (ghost_norm_host() gives it back as it is), its
 * ban line's hex into hx, and 1. Every request the answer serves has
 * that same Host (the answer key holds it), so cache.c's tag_object()
 * then skips the normalisation and the hash (~470 instructions per
 * stored object). 0: tag_object() computes them.
 */
static int
memo_ban(struct ws *ws, const char *host, char *hx)
{
	if (host == NULL || *host == '\0' || ghost_norm_host(ws, host) != host)
		return (0);
	ghost_ban_hex(host, hx);
	return (1);
}

/* The deps record d is the usual one: the host table can keep it. */
static int
deps_usual(const struct ghost_deps *d)
{
	return (!d->m && !d->s && !d->x && !d->q && d->h == NULL &&
	    d->c == NULL);
}

/*
 * The scope lengths of a deps record (int64, as memo_store() wrote them)
 * as int32 (a length no path can have: -1, never probed).
 */
static void
scopes_32(const uint8_t *v, uint32_t nsl, int32_t *sl)
{
	int64_t l;
	uint32_t i;

	for (i = 0; i < nsl; i++) {
		memcpy(&l, v + i * sizeof l, sizeof l);
		sl[i] = l < 0 || l > INT32_MAX ? -1 : (int32_t)l;
	}
}

/*
 * The memo hash of an answer key (ak, kl bytes): its path part (from base,
 * memo_key()) hashed on top of the hash of what comes before it (hp), so
 * that the probes of one lookup hash only their path parts.
 */
static GHOST_INLINE uint64_t
akey_hash(const char *ak, size_t base, size_t kl, uint64_t hp)
{
	return (ghost_hash(ak + base, kl - base, hp));
}

/*
 * The keys hold a copy of the path (up to http_req_size): ghost_memo_store()
 * and a missing ghost_memo_find() give their workspace back, so that a
 * long URL does not cost it two or three times over (a 31.5 KB URL with a
 * 14 KB answer overflowed workspace_backend).
 */
static void
memo_store(struct ghost_vcl *gv, struct ws *ws,
    const struct ghost_rq *q, const struct ghost_ans *a, const uint8_t *raw,
    size_t rawlen)
{
	const char *dk, *path;
	char *ak;
	size_t dkl, akl, base, pl, dl, tail;
	uint8_t *buf;
	uintptr_t base_addr;
	int64_t sl[MEMO_MAX_SCOPES];
	int32_t sl32[MEMO_MAX_SCOPES];
	uint64_t hp;
	uint32_t nsl;
	unsigned sz;
	struct ghost_ans ma;

	if (a->deps.raw == NULL || a->deps.raw_end <= a->deps.raw)
		return;
	rq_path(q, &path, &pl);
	dk = deps_key(q, &dkl);
	ak = memo_key(ws, q, &a->deps, path, pl, &base, &akl, NULL, 0);
	if (dk == NULL || ak == NULL)
		return;
	if (a->deps.p)
		akl = key_scope(ak, base, pl, a->sc);
	hp = ghost_hash(ak, base, 0);
	/*
	 * What every request this answer serves shares (the key holds the
	 * Host): the ban line's name, when the Host is in normal form
	 * (before the reservation: the normalisation may use the workspace)
	 */
	ma = *a;
	ma.ban_ok = (uint8_t)memo_ban(ws, q->host, ma.ban_hx);
	dl = (size_t)(a->deps.raw_end - a->deps.raw);
	nsl = scopes_decode(&a->deps, sl);
	tail = sizeof sl[0] * nsl + sizeof nsl;
	sz = WS_ReserveAll(ws);
	if (sz >= sizeof a->deps + sizeof base_addr + dl + tail) {
		buf = WS_Reservation(ws);
		base_addr = (uintptr_t)a->deps.raw;
		memcpy(buf, &a->deps, sizeof a->deps);
		memcpy(buf + sizeof a->deps, &base_addr, sizeof base_addr);
		memcpy(buf + sizeof a->deps + sizeof base_addr, a->deps.raw, dl);
		memcpy(buf + sizeof a->deps + sizeof base_addr + dl, sl,
		    sizeof sl[0] * nsl);
		memcpy(buf + sizeof a->deps + sizeof base_addr + dl +
		    sizeof sl[0] * nsl, &nsl, sizeof nsl);
		ghost_memo_insert(gv, a->gen, dk, dkl, ghost_hash(dk, dkl, 0),
		    buf, sizeof a->deps + sizeof base_addr + dl + tail,
		    deps_fix);
		if (q->host != NULL && deps_usual(&a->deps)) {
			scopes_32((const uint8_t *)sl, nsl, sl32);
			ghost_memo_vh_put(gv, a->gen, dk, dkl, a->deps.p,
			    sl32, nsl);
		}
	}
	if (sz >= sizeof *a + sizeof base_addr + rawlen) {
		buf = WS_Reservation(ws);
		base_addr = (uintptr_t)raw;
		memcpy(buf, &ma, sizeof ma);
		memcpy(buf + sizeof *a, &base_addr, sizeof base_addr);
		memcpy(buf + sizeof *a + sizeof base_addr, raw, rawlen);
		ghost_memo_insert(gv, a->gen, ak, akl, akey_hash(ak, base, akl,
		    hp), buf, sizeof *a + sizeof base_addr + rawlen, ans_fix);
	}
	WS_Release(ws, 0);
}

/*
 * A memoised answer (value v) in *ap. v in the entry itself (referenced,
 * ref): *ap is the entry's answer, read in place, never written (the
 * memo aligns the value for it; the pointers are already there:
 * ans_fix()). Otherwise copied into *a, pointers onto the copy, and *ap
 * is a; for a cache decision only (q->cache_only) just those it reads:
 * kh, qi, qx (every other pointer of *a is left as it was memoised,
 * unusable).
 */
static int GHOST_HOT
memo_answer(const struct ghost_rq *q, const uint8_t *v, size_t vl,
    struct ghost_ans *a, const struct ghost_ans **ap, const uint8_t **raw,
    size_t *rawlen, int ref)
{
	uintptr_t base, from;
	const uint8_t *to;

	if (vl < sizeof *a + sizeof base)
		return (0);
	*raw = v + sizeof *a + sizeof base;
	*rawlen = vl - sizeof *a - sizeof base;
	if (ref) {
		/* (base, after the struct, is not read: one line less) */
		assert(((uintptr_t)v & (_Alignof(struct ghost_ans) - 1)) == 0);
		*ap = (const struct ghost_ans *)(const void *)v;
		return (1);
	}
	memcpy(&base, v + sizeof *a, sizeof base);
	memcpy(a, v, sizeof *a);
	*ap = a;
	if (!q->cache_only) {
		ans_rebase(a, base, *raw);
		return (1);
	}
	from = base;
	to = *raw;
	REBASE(a, kh)
	REBASE(a, kh_end)
	REBASE(a, qi)
	REBASE(a, qi_end)
	REBASE(a, qx)
	REBASE(a, qx_end)
	return (1);
}

/*
 * A fetch about to read a memoised answer in place (v, in memo entry ref)
 * will next read its first and third cache lines (route.c: ops, the
 * endpoint; gen_d, the route name, hp) and the backend map entry the memo
 * entry caches (ghost_be_get_memo()): on a long tail all are cold, and
 * asked for now their misses overlap instead of following each other. A
 * prefetch never faults: the side word is read without its sequence (a
 * stale or torn pointer only fetches a useless line).
 */
static GHOST_INLINE void
memo_prefetch(void *ref, const uint8_t *v)
{
	uint64_t e;

	/* (v itself: asked for by memo_slot(), memo.h, before the key
	 * compare) */
	__builtin_prefetch(v + 128);
	e = __atomic_load_n(&ghost_memo_hdr(ref)->side[0], __ATOMIC_RELAXED);
	if (e != 0)
		__builtin_prefetch((const void *)(uintptr_t)e);
}

/*
 * One answer lookup of memo_probe(): a workspace copy, or with ref a
 * reference to the entry (*ref, for ghost_memo_unref()).
 */
static GHOST_INLINE int
memo_get(struct ghost_vcl *gv, struct ws *ws, uint64_t gen,
    const struct ghost_rq *q, const char *ak, size_t base, size_t kl,
    uint64_t hp, struct ghost_ans *a, const struct ghost_ans **ap,
    const uint8_t **raw, size_t *rawlen, void **ref)
{
	const uint8_t *v;
	size_t vl;
	uint64_t h = akey_hash(ak, base, kl, hp);

	if (ref == NULL)
		return (ghost_memo_lookup(gv, ws, gen, ak, kl, h, NULL, 0, &v,
		    &vl) && memo_answer(q, v, vl, a, ap, raw, rawlen, 0));
	*ref = ghost_memo_ref(gv, gen, ak, kl, h, &v, &vl);
	if (*ref == NULL)
		return (0);
	memo_prefetch(*ref, v);
	if (memo_answer(q, v, vl, a, ap, raw, rawlen, 1))
		return (1);
	ghost_memo_unref(*ref);
	*ref = NULL;
	return (0);
}

/*
 * Find a memoised answer for q under generation gen, its key built by
 * memo_key() at ak (the path part from base, pl the path's length; hp:
 * the hash of what comes before it): with the path (p), the path part
 * probed at each scope length of deps.sl (nsl of them at slv) that fits
 * in the path (longest first), then as the whole path. At most 16 + 1
 * lookups; no routing rule here. ref (not for a cache decision): the
 * answer is referenced, not copied.
 */
static GHOST_INLINE int
memo_probe(struct ghost_vcl *gv, struct ws *ws, uint64_t gen,
    const struct ghost_rq *q, char *ak, size_t base, size_t pl, uint64_t hp,
    int p, const int32_t *slv, uint32_t nsl, struct ghost_ans *a,
    const struct ghost_ans **ap, const uint8_t **raw, size_t *rawlen,
    void **ref)
{
	size_t kl;
	int32_t sl;
	uint32_t i;

	/*
	 * One loop, one memo_get() in line (its lookup's code once, not
	 * three times: fewer code lines): i > 0 probes scope i - 1, i = 0
	 * the whole path; without the path in the key, one probe of it.
	 */
	i = p ? nsl + 1 : 1;
	while (i-- > 0) {
		if (!p)
			kl = base;
		else if (i == 0)
			kl = key_scope(ak, base, pl, -1);
		else {
			sl = slv[i - 1];
			if (sl < 0 || (size_t)sl > pl)
				continue;
			kl = key_scope(ak, base, pl, sl);
		}
		if (memo_get(gv, ws, gen, q, ak, base, kl, hp, a, ap, raw,
		    rawlen, ref))
			return (1);
	}
	return (0);
}

/*
 * memo_probe() under the host's deps record (key k, kl: deps_key()):
 * referenced in the memo entry (its pointers moved there by deps_fix()),
 * or copied for a cache decision, whose answers are copied too. With
 * vh (the host was looked up in the host table: memo_find_host()), a
 * usual record goes into the host table, and the lookup is counted
 * (GHOST.memo_host_miss: the only sign outside that the table is used).
 */
static int GHOST_COLD
memo_find_deps(struct ghost_vcl *gv, struct ws *ws, uint64_t gen,
    const struct ghost_rq *q, const char *k, size_t kl, int vh,
    struct ghost_ans *a, const struct ghost_ans **ap, const uint8_t **raw,
    size_t *rawlen, void **ref, uintptr_t *snap)
{
	struct ghost_deps d;
	const uint8_t *v;
	const char *path;
	char *ak;
	size_t vl, base, akl, pl;
	uintptr_t dbase;
	void *dref = NULL;
	uint32_t nsl;
	int32_t sl[MEMO_MAX_SCOPES];
	int r;
	uint8_t drec[512];		/* the deps record, when it fits:
					   read here only, no copy kept */
	char abuf[512];			/* the answer key, when it fits */

	/* here, off the host table's path: nothing counted on a hit */
	if (vh)
		GHOST_STAT(memo_host_miss);
	if (ref != NULL)
		dref = ghost_memo_ref(gv, gen, k, kl, ghost_hash(k, kl, 0), &v,
		    &vl);
	if (dref == NULL && (ref != NULL || !ghost_memo_lookup(gv, ws, gen, k,
	    kl, ghost_hash(k, kl, 0), drec, sizeof drec, &v, &vl)))
		return (0);
	r = 0;
	/* after the raw deps: the scope lengths (int64), then how many */
	nsl = MEMO_MAX_SCOPES + 1;
	if (vl >= sizeof d + sizeof dbase + sizeof nsl)
		memcpy(&nsl, v + vl - sizeof nsl, sizeof nsl);
	if (nsl > MEMO_MAX_SCOPES || vl < sizeof d + sizeof dbase +
	    sizeof nsl + nsl * sizeof(int64_t))
		goto done;
	memcpy(&d, v, sizeof d);
	memcpy(&dbase, v + sizeof d, sizeof dbase);
	if (dref == NULL)
		deps_rebase(&d, dbase, v + sizeof d + sizeof dbase);
	else
		assert(dbase == (uintptr_t)(v + sizeof d + sizeof dbase));
	scopes_32(v + vl - sizeof nsl - nsl * sizeof(int64_t), nsl, sl);
	if (vh && deps_usual(&d))
		ghost_memo_vh_put(gv, gen, k, kl, d.p, sl, nsl);
	rq_path(q, &path, &pl);
	ak = memo_key(NULL, q, &d, path, pl, &base, &akl, abuf, sizeof abuf);
	if (ak == NULL) {
		/* too long for abuf: in the workspace, given back on a miss */
		if (snap != NULL && *snap == 0)
			*snap = WS_Snapshot(ws);
		ak = memo_key(ws, q, &d, path, pl, &base, &akl, NULL, 0);
	}
	if (ak != NULL)
		r = memo_probe(gv, ws, gen, q, ak, base, pl,
		    ghost_hash(ak, base, 0), d.p, sl, nsl, a, ap, raw, rawlen,
		    ref);
  done:
	if (dref != NULL)
		ghost_memo_unref(dref);
	return (r);
}

/*
 * Find a memoised answer for q under generation gen: the host's usual
 * deps record from the host table (no lock, no reference: one memo
 * lookup per decision instead of two), else from the memo
 * (memo_find_deps()). The host table's entry is read first: on a long
 * tail it is in DRAM (~300 ns), and its index needs only the Host
 * (ghost_vh_index(): a few instructions), so the key's building and
 * hashing, which do not need the entry, run while its line comes
 * (they ran before it, when the entry was indexed by the key head's
 * hash: the miss then followed them).
 */
static GHOST_INLINE int
memo_find_host(struct ghost_vcl *gv, struct ws *ws, uint64_t gen,
    const struct ghost_rq *q, struct ghost_ans *a,
    const struct ghost_ans **ap, const uint8_t **raw, size_t *rawlen,
    void **ref, uintptr_t *snap)
{
	struct ghost_vh vh;
	const char *k, *path;
	size_t kl, base, pl;
	uint64_t hh;
	int found;
	char abuf[512];		/* the key, when it fits */

	k = deps_key(q, &kl);
	if (GHOST_UNLIKELY(q->host == NULL))
		return (memo_find_deps(gv, ws, gen, q, k, kl, 0, a, ap, raw,
		    rawlen, ref, snap));
	found = ghost_memo_vh_get(gv, gen, k, kl, &vh);
	rq_path(q, &path, &pl);
	/*
	 * the usual key with the whole path, as memo_key() builds it: its
	 * head is that of any key
	 */
	if (GHOST_UNLIKELY(9 + kl + 9 + pl > sizeof abuf))
		return (memo_find_deps(gv, ws, gen, q, k, kl, 0, a, ap, raw,
		    rawlen, ref, snap));
	(void)key_usual(abuf, k, kl, 1, path, pl, &base);
	hh = ghost_hash(abuf, base, 0);
	if (GHOST_LIKELY(found))
		return (memo_probe(gv, ws, gen, q, abuf, base, pl, hh, vh.p,
		    vh.sl, vh.nsl, a, ap, raw, rawlen, ref));
	return (memo_find_deps(gv, ws, gen, q, k, kl, 1, a, ap, raw, rawlen,
	    ref, snap));
}

void
ghost_memo_store(struct ghost_vcl *gv, struct ws *ws,
    const struct ghost_rq *q, const struct ghost_ans *a, const uint8_t *raw,
    size_t rawlen)
{
	uintptr_t snap;

	snap = WS_Snapshot(ws);
	memo_store(gv, ws, q, a, raw, rawlen);
	WS_Reset(ws, snap);
}

/*
 * ghost_memo_find() without a reference (a copy in the workspace): a
 * function of its own, so that the fetch's referenced lookup is one
 * straight stretch of code in ghost_memo_find().
 */
static int __attribute__((__noinline__))
memo_find_copy(struct ghost_vcl *gv, struct ws *ws, uint64_t gen,
    const struct ghost_rq *q, struct ghost_ans *a,
    const struct ghost_ans **ap, const uint8_t **raw, size_t *rawlen)
{
	uintptr_t snap;

	snap = WS_Snapshot(ws);
	if (memo_find_host(gv, ws, gen, q, a, ap, raw, rawlen, NULL, NULL))
		return (1);
	WS_Reset(ws, snap);
	return (0);
}

int GHOST_HOT
ghost_memo_find(struct ghost_vcl *gv, struct ws *ws, uint64_t gen,
    const struct ghost_rq *q, struct ghost_ans *a,
    const struct ghost_ans **ap, const uint8_t **raw, size_t *rawlen,
    void **ref)
{
	uintptr_t snap = 0;

	assert(ref == NULL || !q->cache_only);
	/*
	 * Referenced (a fetch's decision): nothing is copied into the
	 * workspace, only a key too long for the stack takes some, and
	 * memo_find() takes the snapshot then (WS_Snapshot(): ~65
	 * instructions per lookup otherwise).
	 */
	if (ref != NULL) {
		*ref = NULL;
		if (memo_find_host(gv, ws, gen, q, a, ap, raw, rawlen, ref,
		    &snap))
			return (1);
		if (snap != 0)
			WS_Reset(ws, snap);
		return (0);
	}
	return (memo_find_copy(gv, ws, gen, q, a, ap, raw, rawlen));
}

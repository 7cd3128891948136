/*
 * Decision reuse, request side: memo keys built from exactly the inputs
 * an answer depends on (docs/protocol.md "Reuse"), lookup and insertion
 * of answers and of each host's deps. The table itself is in memo.c.
 */

#include "config.h"

#include <string.h>
#include <strings.h>

#include "cache/cache.h"

#include "msgpack.h"
#include "ghost.h"

struct kb {
	char		*p;
	char		*b;
	char		*e;
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

/* Build a key in the rest of the workspace (kb_end() keeps it). */
static void
kb_begin(struct ws *ws, struct kb *k)
{
	unsigned sz;

	sz = WS_ReserveAll(ws);
	k->b = k->p = WS_Reservation(ws);
	k->e = k->b + sz;
	k->err = 0;
}

/* Keep the key built since kb_begin(); NULL (nothing kept) on overflow. */
static const char *
kb_end(struct ws *ws, struct kb *k, size_t *klen)
{
	if (k->err) {
		WS_Release(ws, 0);
		return (NULL);
	}
	*klen = (size_t)(k->p - k->b);
	WS_Release(ws, (unsigned)*klen);
	return (k->b);
}

/*
 * Key of an answer: the raw host and exactly the inputs in deps (the
 * whole query string, every line of a header separately, as routing saw
 * it: recorded client values on the backend side, see ghost_rq_hdr()).
 */
static const char *
memo_key(struct ws *ws, const struct ghost_rq *q,
    const struct ghost_ans *d, size_t *klen)
{
	struct kb k;
	struct mp_r r;
	const char *qm, *n, *v, *hn;
	size_t nl, vl, hl;
	uint32_t cnt;
	unsigned u;

	kb_begin(ws, &k);
	kb_put(&k, "A", 1);
	kb_cstr(&k, q->host);
	qm = strchr(q->url, '?');
	if (d->deps.p)
		kb_put(&k, q->url, qm != NULL ? (size_t)(qm - q->url) :
		    strlen(q->url));
	if (d->deps.q)
		kb_cstr(&k, qm);
	if (d->deps.m)
		kb_cstr(&k, q->method);
	if (d->deps.s)
		kb_cstr(&k, q->sock);
	if (d->deps.x)
		kb_put(&k, q->https ? "1" : "0", 1);
	if (d->deps.h != NULL) {
		r.p = d->deps.h;
		r.end = d->deps.h_end;
		r.err = 0;
		cnt = mp_r_arr(&r);
		while (cnt-- > 0 && !r.err) {
			mp_r_str(&r, &hn, &hl);
			kb_put(&k, hn, hl);
			u = HTTP_HDR_FIRST;
			while (ghost_rq_hdr(q, &u, &n, &nl, &v, &vl))
				if (nl == hl && !strncasecmp(n, hn, hl))
					kb_put(&k, v, vl);
			kb_put(&k, "", 0);	/* end of this header */
		}
		if (r.err)
			k.err = 1;
	}
	return (kb_end(ws, &k, klen));
}

static const char *
deps_key(struct ws *ws, const struct ghost_rq *q, size_t *klen)
{
	struct kb k;

	kb_begin(ws, &k);
	kb_put(&k, "D", 1);
	kb_cstr(&k, q->host);
	return (kb_end(ws, &k, klen));
}

/*
 * The deps record of a host: one flags byte (DEP_*), then, with DEP_H,
 * the answer's msgpack array of header names as it came.
 */
#define DEP_P	0x01
#define DEP_M	0x02
#define DEP_Q	0x04
#define DEP_S	0x08
#define DEP_X	0x10
#define DEP_H	0x20

/*
 * An answer is kept decoded: the struct ghost_ans, the address its
 * pointers were relative to, then the raw answer they point into. A
 * lookup copies all three into the workspace and moves the pointers onto
 * the copy (ghostd's answer is decoded once, not on every reuse).
 */
#define ANS_PTRS(X) X(deps.h) X(deps.h_end) X(g) X(g_end) X(rqs) \
	X(rqs_end) X(rqa) X(rqa_end) X(rqr) X(rqr_end) X(rss) X(rss_end) \
	X(rsa) X(rsa_end) X(rsr) X(rsr_end) X(path) X(hst) X(loc)

static void
ans_rebase(struct ghost_ans *a, uintptr_t from, const uint8_t *to)
{
#define X(f)								\
	if (a->f != NULL)						\
		a->f = (const void *)(to + ((uintptr_t)(const void *)a->f - from));
	ANS_PTRS(X)
#undef X
}

void
ghost_memo_store(struct ghost_vcl *gv, struct ws *ws,
    const struct ghost_rq *q, const struct ghost_ans *a, const uint8_t *raw,
    size_t rawlen)
{
	const char *dk, *ak;
	size_t dkl, akl, hl = 0;
	uint8_t *buf;
	uintptr_t base;
	unsigned sz;

	dk = deps_key(ws, q, &dkl);
	ak = memo_key(ws, q, a, &akl);
	if (dk == NULL || ak == NULL)
		return;
	if (a->deps.h != NULL)
		hl = (size_t)(a->deps.h_end - a->deps.h);
	sz = WS_ReserveAll(ws);
	if (sz < 1 + hl) {
		WS_Release(ws, 0);
		return;
	}
	buf = WS_Reservation(ws);
	buf[0] = (uint8_t)((a->deps.p ? DEP_P : 0) | (a->deps.m ? DEP_M : 0) |
	    (a->deps.q ? DEP_Q : 0) | (a->deps.s ? DEP_S : 0) |
	    (a->deps.x ? DEP_X : 0) | (a->deps.h != NULL ? DEP_H : 0));
	if (hl > 0)
		memcpy(buf + 1, a->deps.h, hl);
	ghost_memo_insert(gv, a->gen, dk, dkl, buf, 1 + hl);
	if (sz >= sizeof *a + sizeof base + rawlen) {
		base = (uintptr_t)raw;
		memcpy(buf, a, sizeof *a);
		memcpy(buf + sizeof *a, &base, sizeof base);
		memcpy(buf + sizeof *a + sizeof base, raw, rawlen);
		ghost_memo_insert(gv, a->gen, ak, akl, buf,
		    sizeof *a + sizeof base + rawlen);
	}
	WS_Release(ws, 0);
}

int
ghost_memo_find(struct ghost_vcl *gv, struct ws *ws, uint64_t gen,
    const struct ghost_rq *q, struct ghost_ans *a, const uint8_t **raw,
    size_t *rawlen)
{
	struct ghost_ans d;
	const uint8_t *v;
	const char *k;
	size_t kl, vl;
	uintptr_t base;

	k = deps_key(ws, q, &kl);
	if (k == NULL || !ghost_memo_lookup(gv, ws, gen, k, kl, &v, &vl) ||
	    vl < 1)
		return (0);
	memset(&d, 0, sizeof d);
	d.deps.p = (v[0] & DEP_P) != 0;
	d.deps.m = (v[0] & DEP_M) != 0;
	d.deps.q = (v[0] & DEP_Q) != 0;
	d.deps.s = (v[0] & DEP_S) != 0;
	d.deps.x = (v[0] & DEP_X) != 0;
	if (v[0] & DEP_H) {
		d.deps.h = v + 1;
		d.deps.h_end = v + vl;
	}
	k = memo_key(ws, q, &d, &kl);
	if (k == NULL || !ghost_memo_lookup(gv, ws, gen, k, kl, &v, &vl) ||
	    vl < sizeof *a + sizeof base)
		return (0);
	memcpy(a, v, sizeof *a);
	memcpy(&base, v + sizeof *a, sizeof base);
	*raw = v + sizeof *a + sizeof base;
	*rawlen = vl - sizeof *a - sizeof base;
	ans_rebase(a, base, *raw);
	return (1);
}

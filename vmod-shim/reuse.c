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
	unsigned u, sz;

	sz = WS_ReserveAll(ws);
	k.b = k.p = WS_Reservation(ws);
	k.e = k.b + sz;
	k.err = 0;
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
	if (k.err) {
		WS_Release(ws, 0);
		return (NULL);
	}
	*klen = (size_t)(k.p - k.b);
	WS_Release(ws, (unsigned)*klen);
	return (k.b);
}

static const char *
deps_key(struct ws *ws, const struct ghost_rq *q, size_t *klen)
{
	struct kb k;
	unsigned sz;

	sz = WS_ReserveAll(ws);
	k.b = k.p = WS_Reservation(ws);
	k.e = k.b + sz;
	k.err = 0;
	kb_put(&k, "D", 1);
	kb_cstr(&k, q->host);
	if (k.err) {
		WS_Release(ws, 0);
		return (NULL);
	}
	*klen = (size_t)(k.p - k.b);
	WS_Release(ws, (unsigned)*klen);
	return (k.b);
}

/*
 * The deps record of a host: the answer's deps, kept as a tiny answer of
 * its own ({"t":"route","o":1,"deps":...}) so that it decodes with
 * ghost_ans_decode().
 */
void
ghost_memo_store(struct ghost_vcl *gv, struct ws *ws,
    const struct ghost_rq *q, const struct ghost_ans *a, const uint8_t *raw,
    size_t rawlen)
{
	const char *dk, *ak;
	size_t dkl, akl;
	uint8_t *buf;
	struct mp_w w;
	struct mp_r r;
	const char *s;
	size_t sl;
	uint32_t n;
	unsigned sz;

	dk = deps_key(ws, q, &dkl);
	ak = memo_key(ws, q, a, &akl);
	if (dk == NULL || ak == NULL)
		return;
	/* Re-encode only the deps map of the answer. */
	sz = WS_ReserveAll(ws);
	buf = WS_Reservation(ws);
	w.p = buf;
	w.end = buf + sz;
	w.err = 0;
	mp_w_map(&w, 3);
	mp_w_cstr(&w, "t");
	mp_w_cstr(&w, "route");
	mp_w_cstr(&w, "o");
	mp_w_uint(&w, 1);
	mp_w_cstr(&w, "deps");
	mp_w_map(&w, 6);
	mp_w_cstr(&w, "p"); mp_w_bool(&w, a->deps.p);
	mp_w_cstr(&w, "m"); mp_w_bool(&w, a->deps.m);
	mp_w_cstr(&w, "q"); mp_w_bool(&w, a->deps.q);
	mp_w_cstr(&w, "s"); mp_w_bool(&w, a->deps.s);
	mp_w_cstr(&w, "x"); mp_w_bool(&w, a->deps.x);
	mp_w_cstr(&w, "h");
	if (a->deps.h == NULL)
		mp_w_nil(&w);
	else {
		r.p = a->deps.h;
		r.end = a->deps.h_end;
		r.err = 0;
		n = mp_r_arr(&r);
		mp_w_arr(&w, n);
		while (n-- > 0 && !r.err) {
			mp_r_str(&r, &s, &sl);
			mp_w_str(&w, s, sl);
		}
	}
	if (!w.err) {
		ghost_memo_insert(gv, a->gen, dk, dkl, buf,
		    (size_t)(w.p - buf));
		ghost_memo_insert(gv, a->gen, ak, akl, raw, rawlen);
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
	char why[64];

	k = deps_key(ws, q, &kl);
	if (k == NULL || !ghost_memo_lookup(gv, ws, gen, k, kl, &v, &vl))
		return (0);
	if (ghost_ans_decode(v, vl, &d, why, sizeof why))
		return (0);
	k = memo_key(ws, q, &d, &kl);
	if (k == NULL || !ghost_memo_lookup(gv, ws, gen, k, kl, &v, &vl))
		return (0);
	if (ghost_ans_decode(v, vl, a, why, sizeof why))
		return (0);
	*raw = v;
	*rawlen = vl;
	return (1);
}

/*
 * Layer 1: decoding of a `route` answer (docs/protocol.md). Zero copy:
 * the decoded struct points into the answer bytes, which live in the task
 * workspace.
 * Arrays (groups, header ops, deps.h) are validated here once and walked
 * again where they are used.
 */

#include "config.h"

#include <stdio.h>
#include <string.h>

#include "cache/cache.h"

#include "msgpack.h"
#include "ghost.h"
#include "answer.h"

/* Validate an array of strings; remember where it starts and ends. */
static void
arr_str(struct mp_r *r, const uint8_t **b, const uint8_t **e)
{
	const char *s;
	size_t l;
	uint32_t n;

	*b = r->p;
	n = mp_r_arr(r);
	while (n-- > 0 && !r->err)
		mp_r_str(r, &s, &l);
	*e = r->p;
}

/* Validate [[name, value], ...], each value checked by val. */
static void
arr_named(struct mp_r *r, const uint8_t **b, const uint8_t **e,
    void (*val)(struct mp_r *))
{
	const char *s;
	size_t l;
	uint32_t n;

	*b = r->p;
	n = mp_r_arr(r);
	while (n-- > 0 && !r->err) {
		if (mp_r_arr(r) != 2)
			r->err = 1;
		mp_r_str(r, &s, &l);
		val(r);
	}
	*e = r->p;
}

static void
val_str(struct mp_r *r)
{
	const char *s;
	size_t l;

	mp_r_str(r, &s, &l);
}

static void
val_strs(struct mp_r *r)
{
	const uint8_t *b, *e;

	arr_str(r, &b, &e);
}

/* Validate an array of [name, value] pairs (header ops). */
static void
arr_pairs(struct mp_r *r, const uint8_t **b, const uint8_t **e)
{
	arr_named(r, b, e, val_str);
}

/* Validate [[weight, [[addr, port], ...]], ...]. */
static void
arr_groups(struct mp_r *r, const uint8_t **b, const uint8_t **e)
{
	const char *s;
	size_t l;
	uint32_t n, m;
	int64_t port;

	*b = r->p;
	n = mp_r_arr(r);
	while (n-- > 0 && !r->err) {
		if (mp_r_arr(r) != 2)
			r->err = 1;
		(void)mp_r_uint(r);
		m = mp_r_arr(r);
		while (m-- > 0 && !r->err) {
			if (mp_r_arr(r) != 2)
				r->err = 1;
			mp_r_str(r, &s, &l);
			port = mp_r_int(r);
			if (port < 1 || port > 65535 || l == 0 || l > 45)
				r->err = 1;
		}
	}
	*e = r->p;
}

/* Validate deps "hv": [nil | [str, ...], ...]. */
static void
arr_hv(struct mp_r *r, const uint8_t **b, const uint8_t **e)
{
	const uint8_t *x, *y;
	uint32_t n;

	*b = r->p;
	n = mp_r_arr(r);
	while (n-- > 0 && !r->err)
		if (!mp_r_nil(r))
			arr_str(r, &x, &y);
	*e = r->p;
}

/* Validate deps "qv": [[name, [str, ...]], ...]. */
static void
arr_qv(struct mp_r *r, const uint8_t **b, const uint8_t **e)
{
	arr_named(r, b, e, val_strs);
}

/* Validate deps "sl": ascending lengths below 2^31. */
static void
arr_sl(struct mp_r *r, const uint8_t **b, const uint8_t **e)
{
	int64_t v, last = -1;
	uint32_t n;

	*b = r->p;
	n = mp_r_arr(r);
	while (n-- > 0 && !r->err) {
		v = mp_r_int(r);
		if (v <= last || v > INT32_MAX)
			r->err = 1;
		last = v;
	}
	*e = r->p;
}

static int v_matchproto_(mp_field_f)
deps_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ghost_deps *d = priv;
	int *flag;

	if (kl == 2 && k[1] == 'v' && (k[0] == 'h' || k[0] == 'q')) {
		if (k[0] == 'h')
			arr_hv(r, &d->hv, &d->hv_end);
		else
			arr_qv(r, &d->qv, &d->qv_end);
		return (1);
	}
	if (kl == 2 && k[0] == 's' && k[1] == 'l') {
		arr_sl(r, &d->sl, &d->sl_end);
		return (1);
	}
	if (kl != 1)
		return (0);
	switch (*k) {
	case 'p': flag = &d->p; break;
	case 'm': flag = &d->m; break;
	case 'q': flag = &d->q; break;
	case 's': flag = &d->s; break;
	case 'x': flag = &d->x; break;
	case 'h':
		arr_str(r, &d->h, &d->h_end);
		return (1);
	case 'c':
		arr_str(r, &d->c, &d->c_end);
		return (1);
	default: return (0);
	}
	if (mp_peek(r) != MP_BOOL)
		return (0);
	*flag = mp_r_bool(r);
	return (1);
}

static void
deps(struct mp_r *r, struct ghost_deps *d)
{
	d->raw = r->p;
	mp_r_fields(r, deps_field, d);
	d->raw_end = r->p;
}

/* Validate "pe": [cut, with]. */
static void
path_edit(struct mp_r *r, struct ghost_ans *a)
{
	int64_t cut;

	if (mp_r_arr(r) != 2)
		r->err = 1;
	cut = mp_r_int(r);
	mp_r_str(r, &a->pe_with, &a->pe_with_len);
	if (cut < 0 || cut > INT32_MAX)
		r->err = 1;
	a->pe_cut = (size_t)cut;
	a->pe = !r->err;
}

/* The route's cache_policy "cp": {ttl, f, gr, kp, kh, qi, qx}. */
static int v_matchproto_(mp_field_f)
policy_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ghost_ans *a = priv;

	if (mp_streq(k, kl, "ttl"))
		a->ttl = mp_r_int(r);
	else if (mp_streq(k, kl, "f") && mp_peek(r) == MP_BOOL)
		a->forced = mp_r_bool(r);
	else if (mp_streq(k, kl, "gr"))
		a->grace = mp_r_int(r);
	else if (mp_streq(k, kl, "kp"))
		a->keep = mp_r_int(r);
	else if (mp_streq(k, kl, "kh"))
		arr_str(r, &a->kh, &a->kh_end);
	else if (mp_streq(k, kl, "qi"))
		arr_str(r, &a->qi, &a->qi_end);
	else if (mp_streq(k, kl, "qx"))
		arr_str(r, &a->qx, &a->qx_end);
	else
		return (0);
	return (1);
}

/* A probe "hp": {id, u, h, iv, to, w, th, in, x} (a route's, or the
 * cluster's for members' backends). */
int v_matchproto_(mp_field_f)
ghost_probe_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ghost_hp *h = priv;
	uint64_t v;

	if (mp_streq(k, kl, "u")) {
		mp_r_str(r, &h->u, &h->u_len);
		return (1);
	}
	if (mp_streq(k, kl, "h")) {
		mp_r_str(r, &h->h, &h->h_len);
		return (1);
	}
	if (!mp_streq(k, kl, "id") && !mp_streq(k, kl, "iv") &&
	    !mp_streq(k, kl, "to") && !mp_streq(k, kl, "w") &&
	    !mp_streq(k, kl, "th") && !mp_streq(k, kl, "in") &&
	    !mp_streq(k, kl, "x"))
		return (0);
	v = mp_r_uint(r);
	if (v > UINT32_MAX)
		r->err = 1;
	if (mp_streq(k, kl, "id"))
		h->id = (uint32_t)v;
	else if (mp_streq(k, kl, "iv"))
		h->iv_ms = (unsigned)v;
	else if (mp_streq(k, kl, "to"))
		h->to_ms = (unsigned)v;
	else if (mp_streq(k, kl, "w"))
		h->w = (unsigned)v;
	else if (mp_streq(k, kl, "th"))
		h->th = (unsigned)v;
	else if (mp_streq(k, kl, "in"))
		h->in = (unsigned)v;
	else
		h->x = (unsigned)v;
	return (1);
}

/* The route's ejection rule "ol": {n, be, me, mp}. */
static int v_matchproto_(mp_field_f)
outlier_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ghost_ans *a = priv;

	if (mp_streq(k, kl, "n"))
		a->ol_n = (unsigned)mp_r_uint(r);
	else if (mp_streq(k, kl, "be"))
		a->ol_be = mp_r_uint(r);
	else if (mp_streq(k, kl, "me"))
		a->ol_me = mp_r_uint(r);
	else if (mp_streq(k, kl, "mp"))
		a->ol_mp = (unsigned)mp_r_uint(r);
	else
		return (0);
	return (1);
}

/* A route's timeouts "tm": {r, b} in ms. */
static int v_matchproto_(mp_field_f)
timeouts_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ghost_ans *a = priv;

	if (mp_streq(k, kl, "r"))
		a->tm_req = mp_r_int(r);
	else if (mp_streq(k, kl, "b"))
		a->tm_be = mp_r_int(r);
	else
		return (0);
	return (1);
}

/* A route's retry "rt": {a, c: [status, ...], b}. */
static int v_matchproto_(mp_field_f)
retry_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ghost_ans *a = priv;
	int64_t c;
	uint32_t n;

	if (mp_streq(k, kl, "a"))
		a->rt_att = (int)mp_r_int(r);
	else if (mp_streq(k, kl, "b"))
		a->rt_backoff = mp_r_int(r);
	else if (mp_streq(k, kl, "c")) {
		n = mp_r_arr(r);
		while (n-- > 0 && !r->err) {
			c = mp_r_int(r);
			if (c < 400 || c > 599)
				r->err = 1;
			else
				a->rt_codes[(c - 400) / 64] |=
				    1ULL << ((c - 400) % 64);
		}
	} else
		return (0);
	return (1);
}

/* Validate lb "k": [[kind, name], ...], kinds known, names as needed. */
static void
arr_keys(struct mp_r *r, const uint8_t **b, const uint8_t **e)
{
	const char *s;
	size_t l;
	uint32_t n;
	int64_t k;

	*b = r->p;
	n = mp_r_arr(r);
	if (n == 0)
		r->err = 1;
	while (n-- > 0 && !r->err) {
		if (mp_r_arr(r) != 2)
			r->err = 1;
		k = mp_r_int(r);
		mp_r_str(r, &s, &l);
		if (k < GHOST_KEY_URL || k > GHOST_KEY_SOURCE_IP ||
		    ((k == GHOST_KEY_HEADER || k == GHOST_KEY_COOKIE) &&
		    (l == 0 || l > 126)))
			r->err = 1;
	}
	*e = r->p;
}

/* The consistent-hash load balancer "lb": {r, k}. */
static int v_matchproto_(mp_field_f)
lb_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ghost_ans *a = priv;

	if (mp_streq(k, kl, "r"))
		a->lb_ring = mp_r_uint(r);
	else if (mp_streq(k, kl, "k"))
		arr_keys(r, &a->lb_k, &a->lb_k_end);
	else
		return (0);
	return (1);
}

/* Session persistence "sp": {t, n, a, i, tk}. */
static int v_matchproto_(mp_field_f)
sp_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ghost_ans *a = priv;

	if (mp_streq(k, kl, "t"))
		a->sp_t = (int)mp_r_int(r);
	else if (mp_streq(k, kl, "n"))
		mp_r_str(r, &a->sp_n, &a->sp_nl);
	else if (mp_streq(k, kl, "a"))
		a->sp_a = mp_r_int(r);
	else if (mp_streq(k, kl, "i"))
		a->sp_i = mp_r_int(r);
	else if (mp_streq(k, kl, "tk"))
		arr_str(r, &a->sp_tk, &a->sp_tk_end);
	else
		return (0);
	return (1);
}

/* The preflight answer "pf": {st, rs, rq, h, em, eh}. */
static int v_matchproto_(mp_field_f)
preflight_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ghost_ans *a = priv;

	if (mp_streq(k, kl, "st"))
		a->pf_st = (int)mp_r_int(r);
	else if (mp_streq(k, kl, "rs"))
		mp_r_str(r, &a->pf_rs, &a->pf_rs_len);
	else if (mp_streq(k, kl, "rq"))
		arr_str(r, &a->pf_rq, &a->pf_rq_end);
	else if (mp_streq(k, kl, "h"))
		arr_pairs(r, &a->pf_h, &a->pf_h_end);
	else if (mp_streq(k, kl, "em") && mp_peek(r) == MP_BOOL)
		a->pf_em = mp_r_bool(r);
	else if (mp_streq(k, kl, "eh") && mp_peek(r) == MP_BOOL)
		a->pf_eh = mp_r_bool(r);
	else
		return (0);
	return (1);
}

/* The route's cors filter "cr": {oe, ow, oa, e, h, v, pf}. */
static int v_matchproto_(mp_field_f)
cors_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ghost_ans *a = priv;

	if (mp_streq(k, kl, "oe"))
		arr_str(r, &a->cr_oe, &a->cr_oe_end);
	else if (mp_streq(k, kl, "ow"))
		arr_named(r, &a->cr_ow, &a->cr_ow_end, val_str);
	else if (mp_streq(k, kl, "oa") && mp_peek(r) == MP_BOOL)
		a->cr_any = mp_r_bool(r);
	else if (mp_streq(k, kl, "e") && mp_peek(r) == MP_BOOL)
		a->cr_echo = mp_r_bool(r);
	else if (mp_streq(k, kl, "h"))
		arr_pairs(r, &a->cr_h, &a->cr_h_end);
	else if (mp_streq(k, kl, "v"))
		arr_str(r, &a->cr_v, &a->cr_v_end);
	else if (mp_streq(k, kl, "pf")) {
		a->has_pf = 1;
		mp_r_fields(r, preflight_field, a);
	} else
		return (0);
	return (1);
}

/* The fields of a route (or error) answer. */
struct ans_dec {
	struct ghost_ans	*a;
	const char		*t, *msg;
	size_t			tl, ml;
	int64_t			o;
	int			have_o;
};

static int v_matchproto_(mp_field_f)
ans_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct ans_dec *d = priv;
	struct ghost_ans *a = d->a;

	if (mp_streq(k, kl, "t"))
		mp_r_str(r, &d->t, &d->tl);
	else if (mp_streq(k, kl, "gen"))
		a->gen = mp_r_uint(r);
	else if (mp_streq(k, kl, "o")) {
		d->o = mp_r_int(r);
		d->have_o = 1;
	} else if (mp_streq(k, kl, "st"))
		a->st = (int)mp_r_int(r);
	else if (mp_streq(k, kl, "deps"))
		deps(r, &a->deps);
	else if (mp_streq(k, kl, "sc")) {
		a->sc = mp_r_int(r);
		if (a->sc < 0 || a->sc > INT32_MAX)
			a->sc = -1;
	} else if (mp_streq(k, kl, "pe"))
		path_edit(r, a);
	else if (mp_streq(k, kl, "g"))
		arr_groups(r, &a->g, &a->g_end);
	else if (mp_streq(k, kl, "rqs"))
		arr_pairs(r, &a->rqs, &a->rqs_end);
	else if (mp_streq(k, kl, "rqa"))
		arr_pairs(r, &a->rqa, &a->rqa_end);
	else if (mp_streq(k, kl, "rqr"))
		arr_str(r, &a->rqr, &a->rqr_end);
	else if (mp_streq(k, kl, "rss"))
		arr_pairs(r, &a->rss, &a->rss_end);
	else if (mp_streq(k, kl, "rsa"))
		arr_pairs(r, &a->rsa, &a->rsa_end);
	else if (mp_streq(k, kl, "rsr"))
		arr_str(r, &a->rsr, &a->rsr_end);
	else if (mp_streq(k, kl, "path"))
		mp_r_str(r, &a->path, &a->path_len);
	else if (mp_streq(k, kl, "hst"))
		mp_r_str(r, &a->hst, &a->hst_len);
	else if (mp_streq(k, kl, "loc"))
		mp_r_str(r, &a->loc, &a->loc_len);
	else if (mp_streq(k, kl, "rs"))
		mp_r_str(r, &a->rs, &a->rs_len);
	else if (mp_streq(k, kl, "bd"))
		mp_r_str(r, &a->bd, &a->bd_len);
	else if (mp_streq(k, kl, "nc"))
		mp_r_str(r, &a->nc, &a->nc_len);
	else if (mp_streq(k, kl, "rn"))
		mp_r_str(r, &a->rn, &a->rn_len);
	else if (mp_streq(k, kl, "cm"))
		a->cm = (int)mp_r_int(r);
	else if (mp_streq(k, kl, "sh"))
		a->sh = mp_r_uint(r);
	else if (mp_streq(k, kl, "cp")) {
		a->has_cp = 1;
		mp_r_fields(r, policy_field, a);
	} else if (mp_streq(k, kl, "tm"))
		mp_r_fields(r, timeouts_field, a);
	else if (mp_streq(k, kl, "rt"))
		mp_r_fields(r, retry_field, a);
	else if (mp_streq(k, kl, "hp"))
		mp_r_fields(r, ghost_probe_field, &a->hp);
	else if (mp_streq(k, kl, "ol"))
		mp_r_fields(r, outlier_field, a);
	else if (mp_streq(k, kl, "pn"))
		a->pn = (int)mp_r_int(r);
	else if (mp_streq(k, kl, "lb"))
		mp_r_fields(r, lb_field, a);
	else if (mp_streq(k, kl, "sp")) {
		a->has_sp = 1;
		mp_r_fields(r, sp_field, a);
	} else if (mp_streq(k, kl, "cr")) {
		a->has_cr = 1;
		mp_r_fields(r, cors_field, a);
	} else if (mp_streq(k, kl, "msg"))
		mp_r_str(r, &d->msg, &d->ml);
	else
		return (0);
	return (1);
}

int
ghost_ans_decode(const uint8_t *p, size_t len, struct ghost_ans *a,
    char *why, size_t wl)
{
	struct mp_r r = { p, p + len, 0 };
	struct ans_dec d;

	memset(a, 0, sizeof *a);
	a->sc = -1;
	a->ttl = a->grace = a->keep = -1;
	a->pn = -1;
	memset(&d, 0, sizeof d);
	d.a = a;
	mp_r_fields(&r, ans_field, &d);
	if (!r.err && r.p != r.end)
		r.err = 1;
	if (r.err) {
		snprintf(why, wl, "bad answer (msgpack)");
		return (-1);
	}
	if (d.t != NULL && mp_streq(d.t, d.tl, "error")) {
		snprintf(why, wl, "ghostd error: %.*s", (int)d.ml,
		    d.msg != NULL ? d.msg : "");
		return (-1);
	}
	if (d.t == NULL || !mp_streq(d.t, d.tl, "route") || !d.have_o) {
		snprintf(why, wl, "bad answer (not a route answer)");
		return (-1);
	}
	if (d.o < GHOST_ROUTE || d.o > GHOST_REDIRECT || a->rs == NULL ||
	    a->st < 200 || a->st > 599 ||
	    (d.o == GHOST_ROUTE && a->st != 200) ||
	    (d.o == GHOST_REDIRECT && a->loc == NULL) ||
	    (d.o == GHOST_REDIRECT && (a->st < 300 || a->st > 399))) {
		snprintf(why, wl, "bad answer (outcome %d, status %d)",
		    (int)d.o, a->st);
		return (-1);
	}
	if (a->cm < GHOST_CM_ORIGIN || a->cm > GHOST_CM_LOOKUP ||
	    a->ttl < -1 || a->grace < -1 || a->keep < -1) {
		snprintf(why, wl, "bad answer (cache mode %d)", a->cm);
		return (-1);
	}
	if (a->tm_req < 0 || a->tm_be < 0 || a->rt_backoff < 0 ||
	    a->rt_att < 0 || a->rt_att > GHOST_MAX_TRIES - 1) {
		snprintf(why, wl, "bad answer (timeouts or retry)");
		return (-1);
	}
	if (a->pn < -1 || a->pn > 100 || (a->hp.id != 0 && (a->hp.u == NULL ||
	    a->hp.u_len == 0 || a->hp.u_len > 1024 || a->hp.iv_ms == 0 ||
	    a->hp.w == 0 || a->hp.w > 64 || a->hp.th == 0 ||
	    a->hp.th > a->hp.w || a->hp.h_len > 253)) || a->ol_mp > 100 ||
	    ((a->hp.id != 0 || a->ol_n != 0) && a->pn < 0)) {
		snprintf(why, wl, "bad answer (endpoint health)");
		return (-1);
	}
	if ((a->lb_k != NULL && a->lb_ring == 0) || (a->has_sp &&
	    (a->sp_t < GHOST_SP_COOKIE || a->sp_t > GHOST_SP_HEADER ||
	    a->sp_n == NULL || a->sp_nl == 0 || a->sp_nl > 126 ||
	    a->sp_a < 0 || a->sp_i < 0 || a->sp_tk == NULL))) {
		snprintf(why, wl, "bad answer (lb or sp)");
		return (-1);
	}
	if (a->has_pf && (a->pf_st < 200 || a->pf_st > 299 ||
	    a->pf_rs == NULL)) {
		snprintf(why, wl, "bad answer (preflight status %d)",
		    a->pf_st);
		return (-1);
	}
	a->o = (enum ghost_outcome)d.o;
	/*
	 * What ghost.response() has to do, tested once here: a memoised
	 * answer is read in place (reuse.c), and these flags share its first
	 * cache line with what ghost.route() reads, where the fields they
	 * sum up are spread over three more. Nothing changes them later.
	 */
	a->ops = 0;
	if (a->rss != NULL || a->rsa != NULL || a->rsr != NULL ||
	    a->has_cr || a->deps.h != NULL || a->cr_v != NULL || a->nc != NULL)
		a->ops |= GHOST_OPS_RESP;
	if (a->tm_req != 0 || a->tm_be != 0 || a->rt_att != 0)
		a->ops |= GHOST_OPS_RETRY;
	/* decoded once here, not at every pick of a memoised answer */
	if (a->o != GHOST_ROUTE || mp_one_endpoint(a->g, a->g_end, &a->ep1,
	    &a->ep1_len, &a->ep1_port))
		a->ep1 = NULL;
	/*
	 * The plain route (ghost.route()'s short lane, route.c route_plain()):
	 * one endpoint, no health rules (pn < 0: no probe, no outlier
	 * detection), no path edit, affinity, session, cors, request filter,
	 * rewrite, timeout or retry. Nothing changes those fields later in a
	 * way that makes a plain answer less plain (ghost_ans_fit() only
	 * clears pe, path).
	 */
	if (a->o == GHOST_ROUTE && a->ep1 != NULL && a->pn < 0 && !a->pe &&
	    !a->has_sp && !a->has_cr && a->lb_k == NULL &&
	    !ghost_req_ops(a) && !(a->ops & GHOST_OPS_RETRY))
		a->ops |= GHOST_OPS_PLAIN;
	/*
	 * The answer's half of ghost_cache_resp()'s usual stored object
	 * (cache.c): not a pass, no cache_policy, no query filter, no key
	 * headers. Read with ops, in the task's copy (ghost_task.ans_ops),
	 * so that a stored object reads only ban_ok and ban_hx from the
	 * answer. An answer without it may still be one (an empty key
	 * list): ghost_cache_resp() then tests the fields themselves.
	 */
	if (a->cm != GHOST_CM_PASS && !a->has_cp && a->qi == NULL &&
	    a->qx == NULL && a->kh == NULL)
		a->ops |= GHOST_OPS_STORE;
	return (0);
}

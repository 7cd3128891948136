/*
 * route(): gather the request's inputs, find a decision (memo or a round
 * trip to ghostd), pick the endpoint, hand out the native backend and
 * apply the request side of the decision.
 */

#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cache/cache.h"
#include "vrt_obj.h"

#include "msgpack.h"
#include "ghost.h"

#define X_GHOST		"x-ghost-"
#define X_GHOST_LEN	8
#define X_GHOST_REQ	"x-ghost-req-"
#define X_GHOST_REQ_LEN	12

/* Is header line t one of ours (X-Ghost-*, any case)? */
int
ghost_is_internal(const txt *t)
{
	return (t->b != NULL && (size_t)(t->e - t->b) >= X_GHOST_LEN &&
	    (t->b[0] | 0x20) == 'x' && t->b[1] == '-' &&
	    (t->b[2] | 0x20) == 'g' &&
	    strncasecmp(t->b, X_GHOST, X_GHOST_LEN) == 0);
}

/* Split "Name: value" into name and value. */
void
ghost_hdr_split(const txt *t, const char **n, size_t *nl, const char **v,
    size_t *vl)
{
	const char *c = memchr(t->b, ':', (size_t)(t->e - t->b));

	*n = t->b;
	if (c == NULL) {
		*nl = (size_t)(t->e - t->b);
		*v = t->e;
		*vl = 0;
		return;
	}
	*nl = (size_t)(c - t->b);
	for (c++; c < t->e && (*c == ' ' || *c == '\t'); c++)
		continue;
	*v = c;
	*vl = (size_t)(t->e - c);
}

/* ---- the header lines routing sees ---------------------------------- */

/*
 * Request headers a fetch's backend request does not carry as the client
 * sent them: every header varnishd filters from a fetch (HTTPH_R_FETCH in
 * its own table: conditionals, Range, If-Range, hop-by-hop headers, ...),
 * Accept-Encoding (forced to gzip, or unset, with http_gzip_support) and
 * X-Varnish (varnishd adds its own). ghost.recv() records the client's
 * lines of these as X-Ghost-Req-<name>; a backend-side route() reads the
 * recorded lines instead of the bereq's.
 */
#define GHOST_NREC	48
static struct {
	const char	*n;
	size_t		l;
} rec_tbl[GHOST_NREC];
static unsigned rec_n;
#define REC_BITS	7
static uint8_t rec_slot[1U << REC_BITS];	/* 1 + index in rec_tbl, 0 = free;
						   open addressing by name hash */

void
ghost_hdr_init(void)
{
	static const struct {
		const char	*n;
		unsigned	f;
	} tbl[] = {
#define HTTPH(s, e, f)	{ s, f },
#include "tbl/http_headers.h"
		{ "Accept-Encoding", HTTPH_R_FETCH },
		{ "X-Varnish", HTTPH_R_FETCH },
	};
	unsigned i, k, n = 0;

	if (rec_n != 0)
		return;
	for (i = 0; i < sizeof tbl / sizeof tbl[0]; i++) {
		if (!(tbl[i].f & HTTPH_R_FETCH))
			continue;
		assert(n < GHOST_NREC);
		rec_tbl[n].n = tbl[i].n;
		rec_tbl[n].l = strlen(tbl[i].n);
		k = ghost_name_hash(rec_tbl[n].n, rec_tbl[n].l, REC_BITS);
		while (rec_slot[k] != 0)
			k = (k + 1) & ((1U << REC_BITS) - 1);
		rec_slot[k] = (uint8_t)(n + 1);
		n++;
	}
	rec_n = n;
}

int
ghost_hdr_recorded(const char *n, size_t nl)
{
	unsigned k, i;

	if (nl == 0)
		return (0);
	for (k = ghost_name_hash(n, nl, REC_BITS); rec_slot[k] != 0;
	    k = (k + 1) & ((1U << REC_BITS) - 1)) {
		i = rec_slot[k] - 1U;
		if (rec_tbl[i].l == nl && !strncasecmp(rec_tbl[i].n, n, nl))
			return (1);
	}
	return (0);
}

/*
 * Next header line routing sees, from *u on: the request's own lines,
 * except internal ones; on the backend side after ghost.recv() (q->rec),
 * the recorded X-Ghost-Req-<name> lines replace the bereq's lines of
 * those names (absent on the client = absent here).
 */
int
ghost_rq_hdr(const struct ghost_rq *q, unsigned *u, const char **n,
    size_t *nl, const char **v, size_t *vl)
{
	const txt *t;

	CHECK_OBJ_NOTNULL(q, GHOST_RQ_MAGIC);
	for (; *u < q->hp->nhd; (*u)++) {
		t = &q->hp->hd[*u];
		if (t->b == NULL)
			continue;
		ghost_hdr_split(t, n, nl, v, vl);
		if (ghost_is_internal(t)) {
			if (!q->rec || *nl <= X_GHOST_REQ_LEN ||
			    strncasecmp(*n, X_GHOST_REQ, X_GHOST_REQ_LEN))
				continue;
			*n += X_GHOST_REQ_LEN;
			*nl -= X_GHOST_REQ_LEN;
		} else if (q->rec && ghost_hdr_recorded(*n, *nl))
			continue;
		(*u)++;
		return (1);
	}
	return (0);
}

static void
enc_route(struct mp_w *w, void *arg)
{
	const struct ghost_rq *q;
	const char *n, *v;
	size_t nl, vl;
	unsigned u, cnt = 0;

	CAST_OBJ_NOTNULL(q, arg, GHOST_RQ_MAGIC);
	mp_w_map(w, 7);
	mp_w_cstr(w, "t");
	mp_w_cstr(w, "route");
	mp_w_cstr(w, "host");
	if (q->host != NULL)
		mp_w_cstr(w, q->host);
	else
		mp_w_nil(w);
	mp_w_cstr(w, "method");
	mp_w_cstr(w, q->method);
	mp_w_cstr(w, "url");
	mp_w_cstr(w, q->url);
	mp_w_cstr(w, "sock");
	if (q->sock != NULL)
		mp_w_cstr(w, q->sock);
	else
		mp_w_nil(w);
	mp_w_cstr(w, "https");
	mp_w_bool(w, q->https);
	mp_w_cstr(w, "hdrs");
	u = HTTP_HDR_FIRST;
	while (ghost_rq_hdr(q, &u, &n, &nl, &v, &vl))
		cnt++;
	mp_w_arr(w, cnt);
	u = HTTP_HDR_FIRST;
	while (ghost_rq_hdr(q, &u, &n, &nl, &v, &vl)) {
		mp_w_arr(w, 2);
		mp_w_str(w, n, nl);
		mp_w_str(w, v, vl);
	}
}

static size_t
enc_max(const struct ghost_rq *q)
{
	size_t s = 128;
	unsigned u;

	s += MP_STR_MAX(q->host != NULL ? strlen(q->host) : 0);
	s += MP_STR_MAX(strlen(q->url)) + MP_STR_MAX(strlen(q->method));
	s += MP_STR_MAX(q->sock != NULL ? strlen(q->sock) : 0);
	for (u = HTTP_HDR_FIRST; u < q->hp->nhd; u++)
		if (q->hp->hd[u].b != NULL)
			s += 12 + (size_t)(q->hp->hd[u].e - q->hp->hd[u].b);
	return (s);
}

/* ---- weighted pick -------------------------------------------------- */

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

static int
pick(struct ghost_vcl *gv, const struct ghost_ans *a, const char **addr,
    size_t *al, unsigned *port)
{
	struct mp_r r;
	uint64_t total = 0, wt, x;
	uint32_t n, m, i;
	const char *s;
	size_t sl;

	if (a->g == NULL)
		return (-1);
	r.p = a->g;
	r.end = a->g_end;
	r.err = 0;
	n = mp_r_arr(&r);
	for (i = 0; i < n && !r.err; i++) {
		(void)mp_r_arr(&r);
		wt = mp_r_uint(&r);
		m = mp_r_arr(&r);
		if (m > 0 && total + wt >= total)
			total += wt;
		while (m-- > 0 && !r.err)
			mp_skip(&r);
	}
	if (r.err || total == 0)
		return (-1);
	x = rng(gv) % total;
	r.p = a->g;
	r.err = 0;
	n = mp_r_arr(&r);
	for (i = 0; i < n && !r.err; i++) {
		(void)mp_r_arr(&r);
		wt = mp_r_uint(&r);
		m = mp_r_arr(&r);
		if (m == 0 || x >= wt) {
			if (m > 0)
				x -= wt;
			while (m-- > 0 && !r.err)
				mp_skip(&r);
			continue;
		}
		x = rng(gv) % m;
		while (x-- > 0)
			mp_skip(&r);
		(void)mp_r_arr(&r);
		mp_r_str(&r, &s, &sl);
		*addr = s;
		*al = sl;
		*port = (unsigned)mp_r_int(&r);
		return (r.err ? -1 : 0);
	}
	return (-1);
}

/* ---- route() -------------------------------------------------------- */

static const char *
redirect_reason(int st)
{
	switch (st) {
	case 301: return ("Moved Permanently");
	case 302: return ("Found");
	case 303: return ("See Other");
	case 307: return ("Temporary Redirect");
	case 308: return ("Permanent Redirect");
	default: return ("Redirect");
	}
}

/*
 * Value of header line t (after the blanks) if its name is name, given
 * lower case with its ':' in n bytes; NULL otherwise.
 */
const char *
ghost_line_val(const txt *t, const char *name, size_t n)
{
	const char *v;

	if ((size_t)(t->e - t->b) < n || strncasecmp(t->b, name, n))
		return (NULL);
	for (v = t->b + n; v < t->e && (*v == ' ' || *v == '\t'); v++)
		continue;
	return (v);
}

/*
 * One pass over the request for Host and, on the backend side, what
 * ghost.prepare() recorded (X-Ghost-Method: the client's method, and its
 * presence says the X-Ghost-Req-* lines are there; X-Ghost-Socket) and
 * X-Ghost-Proto (set in vcl_recv). First line of a name wins, as with
 * http_GetHdr().
 */
static void
rq_scan(struct ghost_rq *q, int bside)
{
	const txt *t;
	const char *v;
	unsigned u;

	for (u = HTTP_HDR_FIRST; u < q->hp->nhd; u++) {
		t = &q->hp->hd[u];
		if (t->b == NULL)
			continue;
		if (q->host == NULL && (*t->b == 'H' || *t->b == 'h')) {
			q->host = ghost_line_val(t, "host:", 5);
			continue;
		}
		if (!ghost_is_internal(t))
			continue;
		if (!q->https &&
		    (v = ghost_line_val(t, "x-ghost-proto:", 14)) != NULL)
			q->https = !strcasecmp(v, "https");
		if (!bside)
			continue;
		if (!q->rec &&
		    (v = ghost_line_val(t, "x-ghost-method:", 15)) != NULL) {
			q->method = v;
			q->rec = 1;	/* ghost.prepare() ran */
		} else if (q->sock == NULL)
			q->sock = ghost_line_val(t, "x-ghost-socket:", 15);
	}
}

/* ---- the decision's log line ---------------------------------------- */

struct lb {
	char		*p;
	char		*e;
};

static void
lb_str(struct lb *b, const char *s)
{
	size_t l = strlen(s);

	if (l > (size_t)(b->e - b->p))
		l = (size_t)(b->e - b->p);
	memcpy(b->p, s, l);
	b->p += l;
}

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

static __thread uint64_t tl_gen;
static __thread char tl_gen_s[24];

/*
 * VCL_Log "ghost: <status> <backend or reason> (<memo|ghostd>, gen <g>)",
 * built by hand: a VSLb() format costs more than the rest of a memoised
 * decision.
 */
static void
log_decision(VRT_CTX, int status, const char *what, const char *src,
    uint64_t gen)
{
	char buf[256];
	struct lb b = { buf, buf + sizeof buf };
	txt t;

	lb_str(&b, "ghost: ");
	lb_uint(&b, (uint64_t)status);
	lb_str(&b, " ");
	lb_str(&b, what);
	lb_str(&b, " (");
	lb_str(&b, src);
	lb_str(&b, ", gen ");
	/* the generation is the same for a long while: format it once */
	if (gen != tl_gen || tl_gen_s[0] == '\0') {
		struct lb g = { tl_gen_s, tl_gen_s + sizeof tl_gen_s - 1 };

		lb_uint(&g, gen);
		*g.p = '\0';
		tl_gen = gen;
	}
	lb_str(&b, tl_gen_s);
	lb_str(&b, ")");
	t.b = buf;
	t.e = b.p;
	VSLbt(ctx->vsl, SLT_VCL_Log, t);
}

/* The inputs of a decision for hp (req or bereq, per ctx). */
void
ghost_rq_init(VRT_CTX, struct ghost_rq *q, const struct http *hp)
{
	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	INIT_OBJ(q, GHOST_RQ_MAGIC);
	q->hp = hp;
	q->url = hp->hd[HTTP_HDR_URL].b;
	q->method = hp->hd[HTTP_HDR_METHOD].b;
	rq_scan(q, ctx->http_bereq != NULL);
	if (ctx->http_bereq == NULL)
		q->sock = VRT_r_local_socket(ctx);
	AN(q->url);
	AN(q->method);
}

/*
 * The decision for the request q, in *a: from the memo (docs/protocol.md
 * "Reuse"), else from a round trip to ghostd, then memoised; a path edit
 * is applied to q's own path. Only reads q (req on the client side, bereq
 * on the backend side), so any task may call it; nothing is applied.
 * Returns 0 with *src "memo", "memo, ghostd silent" or "ghostd", or -1
 * with why when ghostd did not give a usable answer.
 */
int
ghost_decide(VRT_CTX, struct ghost_vcl *gv, const struct ghost_rq *q,
    struct ghost_ans *a, const char **src, char *why, size_t wl)
{
	struct ghost_rt rt;
	const uint8_t *raw = NULL;
	size_t rawlen = 0;
	uint64_t sgen = 0, seen;
	int fresh;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	CHECK_OBJ_NOTNULL(q, GHOST_RQ_MAGIC);
	fresh = ghost_state_read(gv, ctx->now, &sgen);
	if (gv->memo != NULL && fresh >= 0 &&
	    ghost_memo_find(gv, ctx->ws, sgen, q, a, &raw, &rawlen))
		*src = fresh ? "memo" : "memo, ghostd silent";
	else {
		*src = "ghostd";
		memset(&rt, 0, sizeof rt);
		rt.enc = enc_route;
		rt.arg = TRUST_ME(q);
		rt.enc_max = enc_max(q);
		rt.timeout = gv->timeout;
		if (ghost_roundtrip(gv, ctx->ws, &rt) ||
		    ghost_ans_decode(rt.ans, rt.ans_len, a, rt.why,
		    sizeof rt.why)) {
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
		if (gv->memo != NULL)
			ghost_memo_store(gv, ctx->ws, q, a, raw, rawlen);
	}
	if (ghost_ans_resolve(ctx->ws, q, a)) {
		snprintf(why, wl, "workspace overflow");
		return (-1);
	}
	return (0);
}

VCL_BACKEND
ghost_route(VRT_CTX, struct ghost_vcl *gv, struct ghost_task *t)
{
	struct http *hp;
	struct ghost_rq q;
	size_t al;
	const char *addr, *qm, *src = "ghostd";
	char why[256];
	unsigned port;
	VCL_BACKEND be;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	CHECK_OBJ_NOTNULL(t, GHOST_TASK_MAGIC);
	hp = ctx->http_bereq != NULL ? ctx->http_bereq : ctx->http_req;
	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);

	/*
	 * A second route() in the same backend task (return (retry)): the
	 * bereq was already changed by the first, so keep that decision and
	 * only pick an endpoint again. On the client side (restarts) the
	 * request is routed anew.
	 */
	if (ctx->http_bereq != NULL && t->have_ans && t->status == 200 &&
	    t->ans.o == 0 &&
	    !pick(gv, &t->ans, &addr, &al, &port)) {
		be = ghost_be_get(ctx, gv, t, addr, al, port, t->ans.gen);
		if (be != NULL) {
			VSLb(ctx->vsl, SLT_VCL_Log, "ghost: 200 %s (retry)",
			    VRT_BACKEND_string(be));
			return (be);
		}
	}
	t->have_ans = 0;
	t->location = "";

	ghost_rq_init(ctx, &q, hp);

	if (ghost_decide(ctx, gv, &q, &t->ans, &src, why, sizeof why)) {
		ghost_strip_internal(hp);
		ghost_unreachable(ctx, t, why);
		return (NULL);
	}
	t->have_ans = 1;

	if (t->ans.gen > __atomic_load_n(&gv->live_gen, __ATOMIC_ACQUIRE))
		ghost_be_live(ctx, gv, t->ans.gen);

	be = NULL;
	switch (t->ans.o) {
	case 0:
		if (pick(gv, &t->ans, &addr, &al, &port)) {
			t->status = 500;
			t->reason = "no backends available";
			break;
		}
		be = ghost_be_get(ctx, gv, t, addr, al, port, t->ans.gen);
		if (be == NULL) {
			/* VCL cooling, or a bad address: not ghostd's fault */
			snprintf(why, sizeof why,
			    "cannot create a backend for %.*s port %u",
			    (int)al, addr, port);
			t->status = 503;
			t->reason = WS_Copy(ctx->ws, why, -1);
			if (t->reason == NULL)
				t->reason = "cannot create a backend";
			VSLb(ctx->vsl, SLT_Error, "ghost: %s", t->reason);
			break;
		}
		t->status = 200;
		t->reason = "OK";
		ghost_apply_req(ctx, hp, t);
		break;
	case 1:
		t->status = 404;
		t->reason = "no route";
		break;
	case 2:
		t->status = 500;
		t->reason = "no backends available";
		break;
	default:
		t->status = t->ans.st;
		t->reason = redirect_reason(t->ans.st);
		qm = strchr(q.url, '?');
		t->location = WS_Printf(ctx->ws, "%.*s%s",
		    (int)t->ans.loc_len, t->ans.loc, qm != NULL ? qm : "");
		if (t->location == NULL) {
			ghost_unreachable(ctx, t, "workspace overflow");
			t->location = "";
		}
		break;
	}
	ghost_strip_internal(hp);
	log_decision(ctx, t->status,
	    be != NULL ? VRT_BACKEND_string(be) : t->reason, src, t->ans.gen);
	return (be);
}

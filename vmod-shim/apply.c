/*
 * Applying a decision to HTTP headers: request and response header
 * modifiers (set / add / remove), URLRewrite, Vary, removal of the
 * internal X-Ghost-* headers, and the synthetic responses.
 */

#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cache/cache.h"
#include "vrt_obj.h"

#include "msgpack.h"
#include "ghost.h"

/* Build the "\<len>Name:" form; -1 if the name is too long. */
int
ghost_hdr_fmt(char *buf, size_t bl, const char *name, size_t nl)
{
	if (nl == 0 || nl + 1 > 126 || nl + 3 > bl)
		return (-1);
	buf[0] = (char)(nl + 1);
	memcpy(buf + 1, name, nl);
	buf[nl + 1] = ':';
	buf[nl + 2] = '\0';
	return (0);
}

unsigned
ghost_hdr_is(const struct http *hp, unsigned u, const char *name, size_t nl)
{
	const txt *t = &hp->hd[u];

	return (t->b != NULL && (size_t)(t->e - t->b) > nl &&
	    t->b[nl] == ':' && strncasecmp(t->b, name, nl) == 0);
}

void
ghost_strip_internal(struct http *hp)
{
	char hdr[128];
	const char *c;
	unsigned u;

	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	u = HTTP_HDR_FIRST;
	while (u < hp->nhd) {
		const txt *t = &hp->hd[u];

		if (t->b == NULL || (size_t)(t->e - t->b) < 8 ||
		    strncasecmp(t->b, "x-ghost-", 8) != 0) {
			u++;
			continue;
		}
		c = memchr(t->b, ':', (size_t)(t->e - t->b));
		if (c == NULL || ghost_hdr_fmt(hdr, sizeof hdr, t->b,
		    (size_t)(c - t->b))) {
			/* too long to name: drop this line by hand */
			memmove(&hp->hd[u], &hp->hd[u + 1],
			    (hp->nhd - u - 1) * sizeof hp->hd[0]);
			memmove(&hp->hdf[u], &hp->hdf[u + 1],
			    (hp->nhd - u - 1) * sizeof hp->hdf[0]);
			hp->nhd--;
			continue;
		}
		http_Unset(hp, hdr);	/* every line of it; compacts hd[] */
	}
}

/*
 * One line per request header: repeated lines of a name are joined into
 * the first, in order, with "," (no space: the join routing uses), Cookie
 * lines with "; " (RFC 6265 5.4; what varnishd does for HTTP/2). Varnish's
 * Vary compares only the first line of a header; after this it is the
 * whole value. Names too long for "\<len>Name:" (> 125) are left alone.
 */
void
ghost_merge_lines(struct http *hp)
{
	char hdr[128];
	const txt *t;
	const char *c;
	size_t nl;
	unsigned u, w;

	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	for (u = HTTP_HDR_FIRST; u < hp->nhd; u++) {
		t = &hp->hd[u];
		if (t->b == NULL)
			continue;
		c = memchr(t->b, ':', (size_t)(t->e - t->b));
		if (c == NULL)
			continue;
		nl = (size_t)(c - t->b);
		for (w = u + 1; w < hp->nhd; w++)
			if (ghost_hdr_is(hp, w, t->b, nl))
				break;
		if (w == hp->nhd || ghost_hdr_fmt(hdr, sizeof hdr, t->b, nl))
			continue;
		http_CollectHdrSep(hp, hdr,
		    nl == 6 && !strncasecmp(hdr + 1, "cookie", 6) ? "; " : ",");
	}
}

/*
 * Record the client's lines of the headers a fetch's bereq does not carry
 * as sent (ghost_hdr_recorded()) as X-Ghost-Req-<name>: <value>. A header
 * the client did not send gets no line (absent stays absent, an empty
 * value stays empty).
 */
void
ghost_record(struct http *hp)
{
	const char *n, *v;
	size_t nl, vl;
	unsigned u, nhd;

	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	nhd = hp->nhd;
	for (u = HTTP_HDR_FIRST; u < nhd; u++) {
		if (hp->hd[u].b == NULL)
			continue;
		ghost_hdr_split(&hp->hd[u], &n, &nl, &v, &vl);
		if (ghost_hdr_recorded(n, nl))
			http_PrintfHeader(hp, "X-Ghost-Req-%.*s: %.*s",
			    (int)nl, n, (int)vl, v);
	}
}

static void
op_set(struct http *hp, const char *n, size_t nl, const char *v, size_t vl)
{
	char hdr[128];

	if (ghost_hdr_fmt(hdr, sizeof hdr, n, nl))
		return;
	http_Unset(hp, hdr);
	http_PrintfHeader(hp, "%.*s: %.*s", (int)nl, n, (int)vl, v);
}

static void
op_add(struct http *hp, const char *n, size_t nl, const char *v, size_t vl)
{
	char hdr[128];
	const char *old, *line;

	if (ghost_hdr_fmt(hdr, sizeof hdr, n, nl))
		return;
	if (nl == 10 && !strncasecmp(n, "set-cookie", 10)) {
		http_PrintfHeader(hp, "%.*s: %.*s", (int)nl, n, (int)vl, v);
		return;
	}
	http_CollectHdrSep(hp, hdr, ",");
	if (!http_GetHdr(hp, hdr, &old) || *old == '\0') {
		op_set(hp, n, nl, v, vl);
		return;
	}
	line = WS_Printf(hp->ws, "%.*s: %s,%.*s", (int)nl, n, old, (int)vl, v);
	if (line == NULL)
		return;
	http_Unset(hp, hdr);
	http_SetHeader(hp, line);
}

static void
op_remove(struct http *hp, const char *n, size_t nl)
{
	char hdr[128];

	if (ghost_hdr_fmt(hdr, sizeof hdr, n, nl))
		return;
	http_Unset(hp, hdr);
}

typedef void pair_op_f(struct http *, const char *, size_t, const char *,
    size_t);

/* Apply op to each [name, value] pair of a msgpack array in [p, e). */
static void
apply_pairs(struct http *hp, const uint8_t *p, const uint8_t *e,
    pair_op_f *op)
{
	struct mp_r r = { p, e, 0 };
	const char *n, *v;
	size_t nl, vl;
	uint32_t cnt;

	if (p == NULL)
		return;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		(void)mp_r_arr(&r);
		mp_r_str(&r, &n, &nl);
		mp_r_str(&r, &v, &vl);
		if (!r.err)
			op(hp, n, nl, v, vl);
	}
}

static void
apply_ops(struct http *hp, const uint8_t *s, const uint8_t *se,
    const uint8_t *a, const uint8_t *ae, const uint8_t *rm,
    const uint8_t *rme)
{
	struct mp_r r = { rm, rme, 0 };
	const char *n;
	size_t nl;
	uint32_t cnt;

	apply_pairs(hp, s, se, op_set);
	apply_pairs(hp, a, ae, op_add);
	if (rm == NULL)
		return;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		mp_r_str(&r, &n, &nl);
		if (!r.err)
			op_remove(hp, n, nl);
	}
}

void
ghost_apply_req(VRT_CTX, struct http *hp, struct ghost_task *t)
{
	const struct ghost_ans *a;
	const char *url, *qm, *nu;

	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	CHECK_OBJ_NOTNULL(t, GHOST_TASK_MAGIC);
	a = &t->ans;
	apply_ops(hp, a->rqs, a->rqs_end, a->rqa, a->rqa_end, a->rqr,
	    a->rqr_end);
	if (a->path != NULL && a->path_len > 0) {
		url = hp->hd[HTTP_HDR_URL].b;
		qm = url != NULL ? strchr(url, '?') : NULL;
		nu = WS_Printf(ctx->ws, "%.*s%s", (int)a->path_len, a->path,
		    qm != NULL ? qm : "");
		if (nu != NULL)
			http_SetH(hp, HTTP_HDR_URL, nu);
	}
	if (a->hst != NULL && a->hst_len > 0) {
		http_Unset(hp, H_Host);
		http_PrintfHeader(hp, "Host: %.*s", (int)a->hst_len, a->hst);
	}
}

/* Is token (length tl) in the comma separated list v? */
static int
has_token(const char *v, const char *tok, size_t tl)
{
	const char *b, *e;

	while (*v != '\0') {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		b = v;
		while (*v != '\0' && *v != ',')
			v++;
		e = v;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - b) == tl && !strncasecmp(b, tok, tl))
			return (1);
	}
	return (0);
}

static void
merge_vary(struct http *hp, const struct ghost_ans *a)
{
	struct mp_r r;
	const char *old, *n, *nv;
	size_t nl;
	uint32_t cnt;

	if (a->deps.h == NULL)
		return;
	http_CollectHdrSep(hp, H_Vary, ", ");
	if (!http_GetHdr(hp, H_Vary, &old))
		old = "";
	if (has_token(old, "*", 1))
		return;
	nv = old;
	r.p = a->deps.h; r.end = a->deps.h_end; r.err = 0;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		mp_r_str(&r, &n, &nl);
		if (r.err || has_token(nv, n, nl))
			continue;
		nv = WS_Printf(hp->ws, "%s%s%.*s", nv, *nv ? ", " : "",
		    (int)nl, n);
		if (nv == NULL)
			return;
	}
	if (nv == old)
		return;
	http_Unset(hp, H_Vary);
	http_PrintfHeader(hp, "Vary: %s", nv);
}

/* Does the request header op list (pairs: [[n, v]..], else [n..]) name n? */
static int
ops_name(const uint8_t *p, const uint8_t *e, int pairs, const char *n,
    size_t nl)
{
	struct mp_r r;
	const char *s;
	size_t sl;
	uint32_t cnt;

	if (p == NULL)
		return (0);
	r.p = p; r.end = e; r.err = 0;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		if (pairs)
			(void)mp_r_arr(&r);
		mp_r_str(&r, &s, &sl);
		if (pairs)
			mp_skip(&r);
		if (!r.err && sl == nl && !strncasecmp(s, n, nl))
			return (1);
	}
	return (0);
}

/*
 * Vary cannot keep apart what the vhost routes on when varnishd stores a
 * different value for it than the request had: it takes an object's Vary
 * values from the bereq after vcl_backend_fetch. That is so for the
 * recorded headers (Range, the conditionals, ... are missing or its own
 * there; with http_gzip_support it also washes the request's
 * Accept-Encoding and never compares it) and for a routed header this
 * route's request filters set, add to or remove. Such an object must not
 * be served from cache at all: make it uncacheable (a hit-for-miss, every
 * request routed by itself).
 */
static void
vary_guard(VRT_CTX, const struct ghost_ans *a)
{
	struct mp_r r;
	const char *n, *why;
	size_t nl;
	uint32_t cnt;

	if (a->deps.h == NULL)
		return;
	r.p = a->deps.h; r.end = a->deps.h_end; r.err = 0;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		mp_r_str(&r, &n, &nl);
		if (r.err)
			break;
		if (ghost_hdr_recorded(n, nl))
			why = "routes on";
		else if (ops_name(a->rqs, a->rqs_end, 1, n, nl) ||
		    ops_name(a->rqa, a->rqa_end, 1, n, nl) ||
		    ops_name(a->rqr, a->rqr_end, 0, n, nl))
			why = "request filter changes routed header";
		else
			continue;
		VRT_l_beresp_uncacheable(ctx, 1);
		VSLb(ctx->vsl, SLT_VCL_Log, "ghost: uncacheable: %s %.*s",
		    why, (int)nl, n);
		return;
	}
}

void
ghost_apply_resp(VRT_CTX, struct http *hp, const struct ghost_task *t)
{
	const struct ghost_ans *a;

	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	CHECK_OBJ_NOTNULL(t, GHOST_TASK_MAGIC);
	a = &t->ans;
	apply_ops(hp, a->rss, a->rss_end, a->rsa, a->rsa_end, a->rsr,
	    a->rsr_end);
	merge_vary(hp, a);
	if (hp == ctx->http_beresp)
		vary_guard(ctx, a);
}

void
ghost_synth(VRT_CTX, struct http *hp, const struct ghost_task *t)
{
	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	CHECK_OBJ_NOTNULL(t, GHOST_TASK_MAGIC);
	http_SetStatus(hp, (uint16_t)t->status, t->reason);
	http_Unset(hp, H_Location);
	if (t->location != NULL && *t->location != '\0')
		http_PrintfHeader(hp, "Location: %s", t->location);
	http_Unset(hp, H_Content_Type);
	http_SetHeader(hp, "Content-Type: text/plain");
	http_Unset(hp, H_Cache_Control);
	http_SetHeader(hp, "Cache-Control: no-store");
	if (ctx->http_beresp == hp) {
		/*
		 * Never delivered from cache, but leave a short hit-for-miss
		 * marker: without one, requests for the same object keep
		 * coalescing on the waiting list and get their answers
		 * rush_exponent at a time (each one a fetch, a 503 each a
		 * full ghostd timeout). Found by test/fault.
		 */
		VRT_l_beresp_ttl(ctx, GHOST_HFM_TTL);
		VRT_l_beresp_grace(ctx, 0);
		VRT_l_beresp_keep(ctx, 0);
		VRT_l_beresp_uncacheable(ctx, 1);
	}
}

/*
 * Layer 2: applying a decision to HTTP headers: request and response
 * header modifiers (set / add / remove), URLRewrite, Vary, removal of the
 * internal X-Ghost-* headers, the client side's recording, and the
 * synthetic responses.
 */

#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cache/cache.h"
#include "vrt_obj.h"

#include "msgpack.h"
#include "ghost.h"
#include "answer.h"
#include "hdr.h"
#include "cors.h"
#include "apply.h"

static unsigned
hdr_is(const struct http *hp, unsigned u, const char *name, size_t nl)
{
	const txt *t = &hp->hd[u];

	return (t->b != NULL && (size_t)(t->e - t->b) > nl &&
	    t->b[nl] == ':' && strncasecmp(t->b, name, nl) == 0);
}

/*
 * Remove every X-Ghost-* line in one pass (http_Unset() would rescan the
 * whole header array once per name), logged as unset like http_Unset().
 */
void
ghost_strip_internal(struct http *hp)
{
	ghost_strip_if(hp, ghost_is_internal);
}

/*
 * One line per request header: repeated lines of a name are joined into
 * the first, in order, with "," (no space: the join routing uses), Cookie
 * lines with "; " (RFC 6265 5.4; what varnishd does for HTTP/2). Varnish's
 * Vary compares only the first line of a header; after this it is the
 * whole value. Names too long for "\<len>Name:" (> 126) are left alone:
 * ghostd refuses to route on such names.
 *
 * This runs on every request, cache hits included, so a first pass only
 * looks for candidates: a 256-bit filter on (name length, first, middle
 * and last character), checked exactly on a collision. Most requests
 * repeat no header and stop there.
 */
void
ghost_merge_lines(struct http *hp)
{
	char hdr[GHOST_HDR_BUF];
	uint64_t seen[4] = { 0, 0, 0, 0 };
	const txt *t;
	const char *c;
	size_t nl;
	unsigned u, w, k, dup = 0;

	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	for (u = HTTP_HDR_FIRST; u < hp->nhd && !dup; u++) {
		t = &hp->hd[u];
		if (t->b == NULL)
			continue;
		c = memchr(t->b, ':', (size_t)(t->e - t->b));
		if (c == NULL || c == t->b)
			continue;
		nl = (size_t)(c - t->b);
		k = ghost_name_hash(t->b, nl, 8);
		if ((seen[k >> 6] >> (k & 63)) & 1) {
			/* a candidate: is it really a name seen before? */
			for (w = HTTP_HDR_FIRST; w < u && !dup; w++)
				dup = hdr_is(hp, w, t->b, nl);
		}
		seen[k >> 6] |= 1ULL << (k & 63);
	}
	if (!dup)
		return;
	for (u = HTTP_HDR_FIRST; u < hp->nhd; u++) {
		t = &hp->hd[u];
		if (t->b == NULL)
			continue;
		c = memchr(t->b, ':', (size_t)(t->e - t->b));
		if (c == NULL)
			continue;
		nl = (size_t)(c - t->b);
		for (w = u + 1; w < hp->nhd; w++)
			if (hdr_is(hp, w, t->b, nl))
				break;
		if (w == hp->nhd || ghost_hdr_fmt(hdr, sizeof hdr, t->b, nl))
			continue;
		http_CollectHdrSep(hp, hdr,
		    nl == 6 && !strncasecmp(hdr + 1, "cookie", 6) ? "; " : ",");
	}
}

/*
 * Add "<prefix><a>" as a header line, built in the workspace. Never
 * inline: it stays out of ghost_recv_fast()'s lines.
 */
static void __attribute__((__noinline__))
hdr_add(struct http *hp, const char *pfx, size_t pl, const char *a,
    size_t al)
{
	char *l;

	l = WS_Alloc(hp->ws, (unsigned)(pl + al + 1));
	if (l == NULL) {
		if (hp->vsl != NULL)
			VSLb(hp->vsl, SLT_LostHeader, "%.*s%.*s", (int)pl,
			    pfx, (int)al, a);
		return;
	}
	memcpy(l, pfx, pl);
	memcpy(l + pl, a, al);
	l[pl + al] = '\0';
	http_SetHeader(hp, l);
}

static inline int
is_ae(const char *n, size_t nl)
{
	return (nl == 15 && !strncasecmp(n, "Accept-Encoding", 15));
}

/* Does [b, e) contain tok (lower case), ASCII case-insensitively? */
static int
has_ci(const char *b, const char *e, const char *tok, size_t tl)
{
	const char *p;
	size_t i;

	for (p = b; (size_t)(e - p) >= tl; p++) {
		for (i = 0; i < tl; i++)
			if (((unsigned char)p[i] | 0x20U) != (unsigned char)tok[i])
				break;
		if (i == tl)
			return (1);
	}
	return (0);
}

/*
 * What ghost.recv() looks for in request line t: X-Forwarded-Proto
 * "https" (*xfp), an Upgrade naming websocket (*ws); true when t is the
 * Accept-Encoding line and rec_ae (the caller records it). Always
 * inlined: ghost_recv_fast() runs it on every line of every request
 * (cache hits included), and a call per line cost ~25 instructions.
 */
static inline __attribute__((always_inline)) int
scan_line(const txt *t, int *xfp, int *ws, int rec_ae)
{
	const char *v;

	if (t->e - t->b < 8)
		return (0);
	switch (*t->b | 0x20) {
	case 'a':
		return (rec_ae && t->e - t->b > 15 && t->b[15] == ':' &&
		    is_ae(t->b, 15));
	case 'u':
		if (t->b[7] != ':')
			return (0);
		v = ghost_line_val(t, "upgrade:", 8);
		if (v != NULL && has_ci(v, t->e, "websocket", 9))
			*ws = 1;
		return (0);
	case 'x':
		if (t->e - t->b < 18 || t->b[17] != ':')
			return (0);
		v = ghost_line_val(t, "x-forwarded-proto:", 18);
		if (v != NULL && t->e - v == 5 && !memcmp(v, "https", 5))
			*xfp = 1;
		return (0);
	default:
		return (0);
	}
}

/*
 * In vcl_recv, after ghost_strip_internal() and ghost_merge_lines(), one
 * pass over the request:
 * - with rec_ae, record the client's Accept-Encoding now: varnishd
 *   rewrites it in the request itself (to "gzip", or unset) when vcl_recv
 *   returns hash with http_gzip_support, before vcl_miss (the caller
 *   passes 0 while no decision reads it: ghost_fetch_plain());
 * - X-Forwarded-Proto "https" (exactly, as a front sends it): *xfp;
 * - an Upgrade naming websocket: *ws.
 */
void
ghost_recv_scan(struct http *hp, int *xfp, int *ws, int rec_ae)
{
	const txt *t;
	unsigned u, nhd;

	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	*xfp = *ws = 0;
	nhd = hp->nhd;
	for (u = HTTP_HDR_FIRST; u < nhd; u++) {
		t = &hp->hd[u];
		if (t->b != NULL && scan_line(t, xfp, ws, rec_ae))
			hdr_add(hp, "X-Ghost-Req-", 12, t->b,
			    (size_t)(t->e - t->b));
	}
}

/*
 * The calls of ghost_recv_fast() (vmod_ghost.c, inline in
 * ghost.recv_action()): what only some request lines need, out of its
 * loop's code lines.
 */

/* Was the name [b, b + nl) seen before line u? (the filter said maybe) */
int __attribute__((__noinline__))
ghost_recv_name_before(const struct http *hp, unsigned u, const char *b,
    size_t nl)
{
	unsigned w;

	for (w = HTTP_HDR_FIRST; w < u; w++)
		if (hdr_is(hp, w, b, nl))
			return (1);
	return (0);
}

/* X-Forwarded-Proto line t says exactly "https". */
int __attribute__((__noinline__))
ghost_recv_xfp_https(const txt *t)
{
	const char *v;

	v = ghost_line_val(t, "x-forwarded-proto:", 18);
	return (v != NULL && t->e - v == 5 && !memcmp(v, "https", 5));
}

/* Upgrade line t names websocket. */
int __attribute__((__noinline__))
ghost_recv_upgrade_ws(const txt *t)
{
	const char *v;

	v = ghost_line_val(t, "upgrade:", 8);
	return (v != NULL && has_ci(v, t->e, "websocket", 9));
}

/* Line t (a name 15 long) is Accept-Encoding. */
int __attribute__((__noinline__))
ghost_recv_is_ae(const txt *t)
{
	return (is_ae(t->b, 15));
}

/* Record the client's Accept-Encoding line ae as X-Ghost-Req-<line>. */
void __attribute__((__noinline__))
ghost_recv_add_ae(struct http *hp, const txt *ae)
{
	hdr_add(hp, "X-Ghost-Req-", 12, ae->b, (size_t)(ae->e - ae->b));
}

/*
 * ghost.prepare()'s record on the client request hp before a fetch. hdrs:
 * the client's lines of the headers varnishd rewrites or drops on a fetch
 * as X-Ghost-Req-<name>, and X-Ghost-Method, whose presence tells the
 * backend side that the recorded lines replace the bereq's.
 * Accept-Encoding is recorded by ghost.recv() (varnishd washes it in the
 * request after vcl_recv); when recv did not (ghostd's table did not
 * need it then, and a reload since does), the client's lines are taken
 * from h0, the request as received (varnishd's req->http0). Without hdrs
 * (no decision reads those headers, or a pass, whose bereq keeps its
 * method): only the method, and only when the fetch changes it (a miss
 * fetches with GET). A second call does nothing.
 */
void
ghost_record(struct http *hp, const struct http *h0, int hdrs,
    int get_fetch)
{
	const char *c, *m;
	size_t nl;
	unsigned u, nhd;
	int ae = 0;

	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	m = hp->hd[HTTP_HDR_METHOD].b;
	AN(m);
	if (!hdrs && (!get_fetch || !strcmp(m, "GET")))
		return;
	if (http_GetHdr(hp, "\017X-Ghost-Method:", NULL))
		return;
	nhd = hp->nhd;
	for (u = HTTP_HDR_FIRST; hdrs && u < nhd; u++) {
		if (hp->hd[u].b == NULL)
			continue;
		c = memchr(hp->hd[u].b, ':',
		    (size_t)(hp->hd[u].e - hp->hd[u].b));
		if (c == NULL)
			continue;
		nl = (size_t)(c - hp->hd[u].b);
		if (nl == 12 + 15 && !strncasecmp(hp->hd[u].b, X_GHOST_REQ,
		    X_GHOST_REQ_LEN) && is_ae(hp->hd[u].b + 12, 15))
			ae = 1;
		else if (ghost_hdr_recorded(hp->hd[u].b, nl) &&
		    !is_ae(hp->hd[u].b, nl))
			hdr_add(hp, "X-Ghost-Req-", 12, hp->hd[u].b,
			    (size_t)(hp->hd[u].e - hp->hd[u].b));
	}
	for (u = HTTP_HDR_FIRST; hdrs && !ae && h0 != NULL && u < h0->nhd;
	    u++)
		if (h0->hd[u].b != NULL &&
		    h0->hd[u].e - h0->hd[u].b > 15 &&
		    h0->hd[u].b[15] == ':' && is_ae(h0->hd[u].b, 15))
			hdr_add(hp, "X-Ghost-Req-", 12, h0->hd[u].b,
			    (size_t)(h0->hd[u].e - h0->hd[u].b));
	hdr_add(hp, "X-Ghost-Method: ", 16, m, strlen(m));
}

static void
op_add(struct http *hp, const char *n, size_t nl, const char *v, size_t vl)
{
	char hdr[GHOST_HDR_BUF];
	const char *old, *line;

	if (ghost_hdr_fmt(hdr, sizeof hdr, n, nl))
		return;
	if (nl == 10 && !strncasecmp(n, "set-cookie", 10)) {
		http_PrintfHeader(hp, "%.*s: %.*s", (int)nl, n, (int)vl, v);
		return;
	}
	http_CollectHdrSep(hp, hdr, ",");
	if (!http_GetHdr(hp, hdr, &old) || *old == '\0') {
		ghost_hdr_set(hp, n, nl, v, vl);
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
	char hdr[GHOST_HDR_BUF];

	if (ghost_hdr_fmt(hdr, sizeof hdr, n, nl))
		return;
	http_Unset(hp, hdr);
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

	ghost_hdr_pairs(hp, s, se, ghost_hdr_set);
	ghost_hdr_pairs(hp, a, ae, op_add);
	if (rm == NULL)
		return;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		mp_r_str(&r, &n, &nl);
		if (!r.err)
			op_remove(hp, n, nl);
	}
}

void GHOST_HOT
ghost_apply_req(VRT_CTX, struct http *hp, const struct ghost_ans *a)
{
	const char *url, *qm, *nu;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	AN(a);
	/* no request filter and no rewrite (most routes) */
	if (GHOST_LIKELY(!ghost_req_ops(a)))
		return;
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

/*
 * Add the header names of the msgpack array [hb, he) (the routed headers,
 * the cors filter's) to Vary, in one workspace reservation (the line is
 * built once, not once per name). 0 on success; -1 when it does not fit:
 * the caller must not let the object be shared then.
 */
static int
merge_vary(struct http *hp, const uint8_t *hb, const uint8_t *he)
{
	struct mp_r r;
	const char *old, *n;
	char *b;
	size_t nl, l, sz, ol;
	uint32_t cnt;

	if (hb == NULL)
		return (0);
	http_CollectHdrSep(hp, H_Vary, ", ");
	if (!http_GetHdr(hp, H_Vary, &old))
		old = "";
	if (has_token(old, "*", 1))
		return (0);
	ol = strlen(old);
	sz = WS_ReserveAll(hp->ws);
	b = WS_Reservation(hp->ws);
	if (sz < sizeof "Vary: " + ol) {
		WS_Release(hp->ws, 0);
		return (-1);
	}
	memcpy(b, "Vary: ", 6);
	memcpy(b + 6, old, ol);
	l = 6 + ol;
	b[l] = '\0';
	r.p = hb; r.end = he; r.err = 0;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		mp_r_str(&r, &n, &nl);
		if (r.err || has_token(b + 6, n, nl))
			continue;
		if (l + 2 + nl + 1 > sz) {
			WS_Release(hp->ws, 0);
			return (-1);
		}
		if (l > 6) {
			memcpy(b + l, ", ", 2);
			l += 2;
		}
		memcpy(b + l, n, nl);
		l += nl;
		b[l] = '\0';
	}
	if (l == 6 + ol) {
		WS_Release(hp->ws, 0);
		return (0);
	}
	WS_Release(hp->ws, (unsigned)(l + 1));
	http_Unset(hp, H_Vary);
	http_SetHeader(hp, b);
	return (0);
}

void
ghost_apply_resp(VRT_CTX, struct http *hp, const struct ghost_ans *a)
{
	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	AN(a);
	/* nothing to apply (most routes): ~120 instructions per fetch */
	if (!ghost_resp_ops(a))
		return;
	apply_ops(hp, a->rss, a->rss_end, a->rsa, a->rsa_end, a->rsr,
	    a->rsr_end);
	/* the cors filter: after the response filter, it owns its headers */
	ghost_cors_headers(hp, hp == ctx->http_beresp ? ctx->http_bereq :
	    ctx->http_req, a, 0);
	if (merge_vary(hp, a->deps.h, a->deps.h_end) != 0 ||
	    merge_vary(hp, a->cr_v, a->cr_v_end) != 0) {
		VSLb(ctx->vsl, SLT_Error, "ghost: workspace overflow "
		    "adding routed (or Origin) headers to Vary");
		if (hp == ctx->http_beresp)
			VRT_l_beresp_uncacheable(ctx, 1);
		return;
	}
	/*
	 * ghostd says when Vary cannot keep this response apart from the
	 * routes it must not reach (docs/protocol.md, "nc"): then it is
	 * not cached at all (a hit-for-miss, every request routed by
	 * itself).
	 */
	if (hp == ctx->http_beresp && a->nc != NULL) {
		VRT_l_beresp_uncacheable(ctx, 1);
		VSLb(ctx->vsl, SLT_VCL_Log, "ghost: uncacheable: %.*s",
		    (int)a->nc_len, a->nc);
	}
}

/* The reason phrase of t's status: the shim's own, or the answer's. */
const char *
ghost_reason(VRT_CTX, const struct ghost_task *t)
{
	const char *r;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(t, GHOST_TASK_MAGIC);
	if (t->reason != NULL)
		return (t->reason);
	if (t->have_ans && t->preflight) {
		r = WS_Printf(ctx->ws, "%.*s", (int)t->ans->pf_rs_len,
		    t->ans->pf_rs);
		return (r != NULL ? r : "");
	}
	if (!t->have_ans || t->ans->rs == NULL)
		return ("");
	r = WS_Printf(ctx->ws, "%.*s", (int)t->ans->rs_len, t->ans->rs);
	return (r != NULL ? r : "");
}

/*
 * The body of t's synthetic response: the answer's, or for the shim's
 * own 503 its reason and a newline.
 */
static void
synth_body(VRT_CTX, struct http *hp, const struct ghost_task *t)
{
	struct vrt_blob b;
	struct strands s;
	const char *p[2];

	if (t->reason == NULL) {
		b.type = 0;
		b.len = t->ans->bd_len;
		b.blob = t->ans->bd != NULL ? t->ans->bd : "";
		if (hp == ctx->http_beresp)
			VRT_l_beresp_body(ctx, LBODY_SET_BLOB, NULL, &b);
		else
			VRT_l_resp_body(ctx, LBODY_SET_BLOB, NULL, &b);
		return;
	}
	p[0] = t->reason;
	p[1] = "\n";
	s.n = 2;
	s.p = p;
	if (hp == ctx->http_beresp)
		VRT_l_beresp_body(ctx, LBODY_SET_STRING, NULL, &s);
	else
		VRT_l_resp_body(ctx, LBODY_SET_STRING, NULL, &s);
}

void
ghost_synth(VRT_CTX, struct http *hp, const struct ghost_task *t)
{
	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	CHECK_OBJ_NOTNULL(t, GHOST_TASK_MAGIC);
	http_SetStatus(hp, (uint16_t)t->status, ghost_reason(ctx, t));
	http_Unset(hp, H_Location);
	if (t->location != NULL && *t->location != '\0')
		http_PrintfHeader(hp, "Location: %s", t->location);
	http_Unset(hp, H_Content_Type);
	if (t->preflight)	/* no body; the CORS headers as decided */
		ghost_cors_headers(hp, hp == ctx->http_beresp ?
		    ctx->http_bereq : ctx->http_req, t->ans, 1);
	else
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
	synth_body(ctx, hp, t);
}

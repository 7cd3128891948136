/*
 * Layer 1: a route's cors filter applied, as ghostd compiled it (the
 * answer's "cr", docs/protocol.md; the rules and their reference
 * implementation are route/cors.go): whether a request is a preflight
 * the answer answers, whether its Origin is one of the strings or
 * prefix/suffix patterns ghostd sent, and the CORS response headers.
 * The decision does not depend on the Origin, so one memoised answer
 * serves every origin.
 */

#include "config.h"

#include <string.h>

#include "cache/cache.h"

#include "msgpack.h"
#include "ghost.h"
#include "hdr.h"
#include "cors.h"

#define ACAO	"Access-Control-Allow-Origin"
#define ACAM	"Access-Control-Allow-Methods"
#define ACAH	"Access-Control-Allow-Headers"
#define ACRM	"Access-Control-Request-Method"
#define ACRH	"Access-Control-Request-Headers"
#define ORIGIN	"Origin"
#define LEN(s)	(sizeof (s) - 1)

/* The value of header n (nl bytes) in hp, or NULL. */
static const char *
hdr_val(const struct http *hp, const char *n, size_t nl)
{
	char hdr[GHOST_HDR_BUF];
	const char *v;

	if (ghost_hdr_fmt(hdr, sizeof hdr, n, nl) ||
	    !http_GetHdr(hp, hdr, &v))
		return (NULL);
	return (v);
}

/*
 * Is req an OPTIONS request (the answer has "pf" only for those) with
 * every header of pf.rq?
 */
int
ghost_cors_preflight(const struct ghost_ans *a, const struct http *req)
{
	struct mp_r r;
	const char *n;
	size_t nl;
	uint32_t cnt;

	AN(a);
	CHECK_OBJ_NOTNULL(req, HTTP_MAGIC);
	if (!a->has_cr || !a->has_pf || a->pf_rq == NULL)
		return (0);
	r.p = a->pf_rq;
	r.end = a->pf_rq_end;
	r.err = 0;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		mp_r_str(&r, &n, &nl);
		if (r.err || hdr_val(req, n, nl) == NULL)
			return (0);
	}
	return (!r.err);
}

/* One or more of a-z, 0-9, '-', '.': a host as a browser's Origin has. */
static int
is_host(const char *b, const char *e)
{
	const char *p;

	if (b >= e)
		return (0);
	for (p = b; p < e; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.'))
			return (0);
	return (1);
}

/* Is Origin o one of the answer's exact origins or patterns? */
static int
origin_allowed(const struct ghost_ans *a, const char *o)
{
	struct mp_r r;
	const char *p, *s;
	size_t ol, pl, sl;
	uint32_t cnt;

	ol = strlen(o);
	if (ol == 0)
		return (0);
	if (a->cr_any)
		return (1);
	if (a->cr_oe != NULL) {
		r.p = a->cr_oe;
		r.end = a->cr_oe_end;
		r.err = 0;
		cnt = mp_r_arr(&r);
		while (cnt-- > 0 && !r.err) {
			mp_r_str(&r, &p, &pl);
			if (!r.err && pl == ol && !memcmp(p, o, ol))
				return (1);
		}
	}
	if (a->cr_ow != NULL) {
		r.p = a->cr_ow;
		r.end = a->cr_ow_end;
		r.err = 0;
		cnt = mp_r_arr(&r);
		while (cnt-- > 0 && !r.err) {
			(void)mp_r_arr(&r);
			mp_r_str(&r, &p, &pl);
			mp_r_str(&r, &s, &sl);
			if (!r.err && ol > pl + sl && !memcmp(o, p, pl) &&
			    !memcmp(o + ol - sl, s, sl) &&
			    is_host(o + pl, o + ol - sl))
				return (1);
		}
	}
	return (0);
}

/*
 * The CORS headers of resp, the response to req: an actual response
 * (preflight 0) or ghost's answer to a preflight. Nothing when the
 * Origin is not allowed (route.CORS.ResponseHeaders, PreflightAnswer).
 */
void
ghost_cors_headers(struct http *resp, const struct http *req,
    const struct ghost_ans *a, int preflight)
{
	const char *o, *v;

	CHECK_OBJ_NOTNULL(resp, HTTP_MAGIC);
	CHECK_OBJ_NOTNULL(req, HTTP_MAGIC);
	AN(a);
	if (!a->has_cr)
		return;
	if (!a->cr_echo) {
		ghost_hdr_set(resp, ACAO, LEN(ACAO), "*", 1);
	} else {
		o = hdr_val(req, ORIGIN, LEN(ORIGIN));
		if (o == NULL || !origin_allowed(a, o))
			return;
		ghost_hdr_set(resp, ACAO, LEN(ACAO), o, strlen(o));
	}
	if (!preflight) {
		ghost_hdr_pairs(resp, a->cr_h, a->cr_h_end, ghost_hdr_set);
		return;
	}
	if (a->pf_em) {
		v = hdr_val(req, ACRM, LEN(ACRM));
		if (v == NULL)
			v = "";
		ghost_hdr_set(resp, ACAM, LEN(ACAM), v, strlen(v));
	}
	if (a->pf_eh && (v = hdr_val(req, ACRH, LEN(ACRH))) != NULL)
		ghost_hdr_set(resp, ACAH, LEN(ACAH), v, strlen(v));
	ghost_hdr_pairs(resp, a->pf_h, a->pf_h_end, ghost_hdr_set);
}

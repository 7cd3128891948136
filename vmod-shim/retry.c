/*
 * Layer 2: a routed fetch's timeouts and retries, as the route's answer
 * says (tm, rt: docs/protocol.md); route/resilience.go decides them, this
 * file applies them to Varnish's own machinery: the bereq timeouts of
 * each attempt, return (retry) from vcl_backend_response and
 * vcl_backend_error, and the 504 of a spent request timeout.
 *
 * The request timeout is a budget that starts with the fetch (the
 * busyobj's first timestamp) and covers every attempt and backoff; each
 * attempt gets the smaller of backend_request and what is left of it.
 */

#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cache/cache_varnishd.h"	/* cache_param: max_retries,
					   connect_timeout */
#include "vcl.h"
#include "vrt_obj.h"
#include "vtim.h"

#include "ghost.h"
#include "retry.h"
#include "stats.h"

/* Slack for timers that fire a little early or late (s). */
#define SLACK	0.005

/* The fetch's start, when its budget began. */
static double
fetch_start(VRT_CTX, double now)
{
	double t = ctx->bo->t_first;

	return (isnan(t) || t <= 0. || t > now ? now : t);
}

void
ghost_fetch_limits(VRT_CTX, struct ghost_task *t)
{
	const struct ghost_ans *a;
	double now, lim = 0., left, conn;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(t, GHOST_TASK_MAGIC);
	CHECK_OBJ_NOTNULL(ctx->bo, BUSYOBJ_MAGIC);
	a = t->ans;
	if (!ghost_retry_on(a))
		return;		/* nothing for ghost_retry() to judge */
	now = VTIM_real();
	t->att_start = now;
	t->att_limit = 0.;
	t->att_hdrbytes = ctx->bo->acct.bereq_hdrbytes;
	if (a->tm_be > 0)
		lim = a->tm_be * 1e-3;
	if (a->tm_req > 0) {
		left = fetch_start(ctx, now) + a->tm_req * 1e-3 - now;
		if (left < 1e-3)
			left = 1e-3;
		if (lim == 0. || left < lim)
			lim = left;
	}
	if (lim == 0.)
		return;
	t->att_limit = lim;
	/* connecting keeps Varnish's shorter connect_timeout */
	conn = ctx->bo->connect_timeout > 0. ? ctx->bo->connect_timeout :
	    cache_param->connect_timeout;
	VRT_l_bereq_connect_timeout(ctx, conn < lim ? conn : lim);
	VRT_l_bereq_first_byte_timeout(ctx, lim);
	VRT_l_bereq_between_bytes_timeout(ctx, lim);
}

/* RFC 9110 9.2.2: a method that may be sent again without harm. */
static int
idempotent(const char *m)
{
	static const char * const ok[] = {
		"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", NULL
	};
	unsigned i;

	if (m == NULL)
		return (0);
	for (i = 0; ok[i] != NULL; i++)
		if (!strcmp(m, ok[i]))
			return (1);
	return (0);
}

static int
code_in(const struct ghost_ans *a, int st)
{
	if (st < 400 || st > 599)
		return (0);
	return ((a->rt_codes[(st - 400) / 64] >> ((st - 400) % 64)) & 1);
}

/* The attempt's backend, for the log. */
static const char *
be_name(VRT_CTX)
{
	VCL_BACKEND be = ctx->bo->director_resp;

	if (be == NULL)
		be = ctx->bo->director_req;
	return (be != NULL ? VRT_BACKEND_string(be) : "(none)");
}

/* "1500ms" or "2s" into buf. */
static const char *
ms_str(char *buf, size_t l, int64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(buf, l, "%llds", (long long)(ms / 1000));
	else
		snprintf(buf, l, "%lldms", (long long)ms);
	return (buf);
}

int
ghost_retry(VRT_CTX, struct ghost_task *t)
{
	const struct ghost_ans *a;
	struct busyobj *bo;
	double now, spent, backoff;
	unsigned retries;
	int fail, timed_out = 0;
	char cause[96], d[24];
	const char *be, *no = NULL;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	bo = ctx->bo;
	CHECK_OBJ_NOTNULL(bo, BUSYOBJ_MAGIC);
	if (t == NULL || !t->have_ans || t->status != 200 ||
	    t->ans->o != GHOST_ROUTE)
		return (0);
	CHECK_OBJ_NOTNULL(t, GHOST_TASK_MAGIC);
	a = t->ans;
	if (!ghost_retry_on(a))
		return (0);
	fail = (ctx->method == VCL_MET_BACKEND_ERROR);
	now = VTIM_real();
	spent = now - fetch_start(ctx, now);
	be = be_name(ctx);
	retries = bo->retries;

	if (fail) {
		if (a->tm_req > 0 && spent >= a->tm_req * 1e-3 - SLACK) {
			/* Gateway API: a timeout error once request is spent */
			http_SetStatus(ctx->http_beresp, 504, "Gateway Timeout");
			VSLb(ctx->vsl, SLT_VCL_Log, "ghost: 504: request timeout "
			    "%s reached after %u attempt%s (last: %s)",
			    ms_str(d, sizeof d, a->tm_req), retries + 1,
			    retries > 0 ? "s" : "", be);
			GHOST_STAT(timeout_request);
			return (0);
		}
		if (t->att_limit > 0. &&
		    now - t->att_start >= t->att_limit - SLACK) {
			timed_out = 1;
			GHOST_STAT(timeout_backend);
			snprintf(cause, sizeof cause,
			    "backend_request timeout %s from %s",
			    ms_str(d, sizeof d, a->tm_be), be);
		} else
			snprintf(cause, sizeof cause, "fetch failed from %s "
			    "(connection failure or reset)", be);
	} else {
		if (!code_in(a, ctx->http_beresp->status))
			return (0);
		snprintf(cause, sizeof cause, "status %u from %s",
		    ctx->http_beresp->status, be);
	}
	backoff = a->rt_backoff * 1e-3;
	if (a->rt_att == 0)
		no = "no retry";
	else if (retries >= (unsigned)a->rt_att)
		no = "retry.attempts used";
	else if (retries >= cache_param->max_retries)
		no = "varnishd's max_retries reached";
	else if (bo->no_retry != NULL)
		no = "the request body cannot be replayed (not cached: "
		    "std.cache_req_body() makes it replayable)";
	else if (fail && bo->acct.bereq_hdrbytes > t->att_hdrbytes &&
	    !idempotent(http_GetMethod(ctx->http_bereq)))
		no = "the request was sent and its method is not idempotent";
	else if (a->tm_req > 0 && spent + backoff >= a->tm_req * 1e-3)
		no = "the request timeout leaves no time for it";
	if (no != NULL) {
		if (a->rt_att > 0) {
			VSLb(ctx->vsl, SLT_VCL_Log, "ghost: no retry after "
			    "%s: %s (%u retr%s done)", cause, no, retries,
			    retries == 1 ? "y" : "ies");
			GHOST_STAT(retry_refused);
		}
		/* an attempt that ran out of time is a gateway timeout */
		if (timed_out) {
			http_SetStatus(ctx->http_beresp, 504,
			    "Gateway Timeout");
			VSLb(ctx->vsl, SLT_VCL_Log, "ghost: 504: %s", cause);
		}
		return (0);
	}
	VSLb(ctx->vsl, SLT_VCL_Log, "ghost: retry %u/%d after %s (backoff %s)",
	    retries + 1, a->rt_att, cause, ms_str(d, sizeof d, a->rt_backoff));
	if (fail)
		GHOST_STAT(retry_failed);
	else
		GHOST_STAT(retry_status);
	if (backoff > 0.)
		VTIM_sleep(backoff);
	return (1);
}

/*
 * Layer 1: the inputs of a decision (struct ghost_rq): the header lines
 * routing sees, Host, method, listener, https, and the route request
 * that carries them to ghostd.
 */

#include "config.h"

#include <string.h>
#include <strings.h>

#include "cache/cache.h"
#include "vrt_obj.h"

#include "msgpack.h"
#include "ghost.h"
#include "hdr.h"
#include "rq.h"

/* Split "Name: value" into name and value. */
static void
hdr_split(const txt *t, const char **n, size_t *nl, const char **v,
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
		hdr_split(t, n, nl, v, vl);
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

void v_matchproto_(ghost_enc_f)
ghost_rq_enc(struct mp_w *w, void *arg)
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
	mp_w_cstr_nil(w, q->host);
	mp_w_cstr(w, "method");
	mp_w_cstr(w, q->method);
	mp_w_cstr(w, "url");
	mp_w_cstr(w, q->url);
	mp_w_cstr(w, "sock");
	mp_w_cstr_nil(w, ghost_rq_sock(q));
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

size_t
ghost_rq_enc_max(const struct ghost_rq *q)
{
	size_t s = 128;
	const char *sock;
	unsigned u;

	s += MP_STR_MAX(q->host != NULL ? strlen(q->host) : 0);
	s += MP_STR_MAX(strlen(q->url)) + MP_STR_MAX(strlen(q->method));
	sock = ghost_rq_sock(q);
	s += MP_STR_MAX(sock != NULL ? strlen(sock) : 0);
	for (u = HTTP_HDR_FIRST; u < q->hp->nhd; u++)
		if (q->hp->hd[u].b != NULL)
			s += 12 + (size_t)(q->hp->hd[u].e - q->hp->hd[u].b);
	return (s);
}

/*
 * An internal line t (X-Ghost-*) of the request: counted, and on the
 * backend side what ghost.prepare() recorded (X-Ghost-Method: the
 * client's method, and its presence says the X-Ghost-Req-* lines are
 * there), X-Ghost-Proto (set in vcl_recv), X-Ghost-Cache-Unknown
 * (vcl_recv could not decide) and X-Ghost-Shard (a clustered node's
 * owner). First line of a name wins, as with http_GetHdr(). Internal
 * lines are told apart by the character after "X-Ghost-".
 */
static GHOST_INLINE void
rq_internal(struct ghost_rq *q, const txt *t, int bside)
{
	const char *v;

	q->n_internal++;
	if (t->e - t->b < X_GHOST_LEN + 1)
		return;
	switch (t->b[X_GHOST_LEN] | 0x20) {
	case 'p':
		if (!q->https && ghost_is_https(t))
			q->https = 1;
		break;
	case 'm':
		if (bside && !q->rec && (v = ghost_line_val(t,
		    "x-ghost-method:", 15)) != NULL) {
			q->method = v;
			q->rec = 1;	/* ghost.prepare() ran */
		}
		break;
	case 's':
		if (bside && q->shard == NULL)
			q->shard = ghost_line_val(t, "x-ghost-shard:", 14);
		break;
	case 'c':
		if (bside && q->cache_unknown == NULL)
			q->cache_unknown = ghost_line_val(t,
			    "x-ghost-cache-unknown:", 22);
		break;
	default:
		break;
	}
}

/*
 * A line that starts "X-G" (either case): ghost_is_internal() and
 * rq_internal() out of line. Few requests have one (a routed bereq of
 * the long tail none), so the scan's loops (rq.h) stay a few code lines.
 */
void GHOST_COLD
ghost_rq_x_g(struct ghost_rq *q, const txt *t, int bside)
{
	if (ghost_is_internal(t))
		rq_internal(q, t, bside);
}

/* The inputs of a decision on request hp (rq.h ghost_rq_init_in()). */
void
ghost_rq_init(VRT_CTX, struct ghost_rq *q, const struct http *hp)
{
	ghost_rq_init_in(ctx, q, hp);
}

/*
 * The listener's name (local.socket; on the backend side the client
 * session's), NULL when unknown. Read when asked, not by ghost_rq_init():
 * few decisions depend on it (deps.s), and a memoised pass never does.
 */
const char *
ghost_rq_sock(const struct ghost_rq *q)
{
	CHECK_OBJ_NOTNULL(q, GHOST_RQ_MAGIC);
	if (q->sock_ctx == NULL)
		return (q->sock);
	return (VRT_r_local_socket(q->sock_ctx));
}

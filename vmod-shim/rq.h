/*
 * Layer 1: the inputs of a decision and the route request (rq.c). See
 * ghost.h.
 */

#ifndef GHOST_RQ_H
#define GHOST_RQ_H

struct ghost_rq {
	unsigned		magic;
#define GHOST_RQ_MAGIC		0x5e17c0a2
	const struct http	*hp;
	const char		*host;		/* NULL when absent */
	const char		*url;
	const char		*method;
	const char		*sock;		/* NULL when unknown; read
						   through ghost_rq_sock() */
	const struct vrt_ctx	*sock_ctx;	/* not NULL: sock unread, ask
						   local.socket in this ctx */
	int			https;
	int			rec;		/* use X-Ghost-Req-* lines */
	const char		*memo_only;	/* not NULL: no round trip, this
						   is why (vcl_recv timed out) */
	const char		*cache_unknown;	/* X-Ghost-Cache-Unknown (backend
						   side), NULL when absent */
	const char		*shard;		/* X-Ghost-Shard (backend side),
						   NULL when absent */
	unsigned		n_internal;	/* X-Ghost-* lines in hp */
	struct ghost_st		st;		/* set by a caller that read it */
	int			cache_only;	/* the client's cache decision:
						   of a memoised answer only gen,
						   cm, sh, has_cp, kh, qi, qx */
};

void ghost_rq_init(VRT_CTX, struct ghost_rq *, const struct http *);
void ghost_rq_x_g(struct ghost_rq *, const txt *, int bside);
int ghost_rq_hdr(const struct ghost_rq *, unsigned *u, const char **n,
    size_t *nl, const char **v, size_t *vl);
ghost_enc_f ghost_rq_enc;
size_t ghost_rq_enc_max(const struct ghost_rq *);
const char *ghost_rq_sock(const struct ghost_rq *);

/*
 * ghost_rq_init() in line: the fetch path (route.c ghost_route()) runs
 * it once per routed fetch, without a call and its frame; the client
 * side calls ghost_rq_init().
 */

/*
 * ghost_line_val(t, "host:", 5), inline: the one line every decision
 * reads, compared as one word (ASCII case-insensitive, as strncasecmp()
 * in the C locale: | 0x20 maps only 'H' to 'h', 'O' to 'o' and so on;
 * both words memory images, so in either byte order) rather than with a
 * call and libc's strncasecmp().
 */
static inline const char *
ghost_rq_host_val(const txt *t)
{
	const char *v;
	uint32_t w, h;

	if (t->e - t->b < 5 || t->b[4] != ':')
		return (NULL);
	memcpy(&w, t->b, sizeof w);
	memcpy(&h, "host", sizeof h);
	if ((w | 0x20202020U) != h)
		return (NULL);
	for (v = t->b + 5; v < t->e && (*v == ' ' || *v == '\t'); v++)
		continue;
	return (v);
}

/*
 * t starts "x-g", either case, and can be internal (8 bytes, "X-Ghost-",
 * or more). The first byte is read first (a line has its NUL), so that
 * most lines cost one test.
 */
static inline int
ghost_rq_is_x_g(const txt *t)
{
	return ((t->b[0] | 0x20) == 'x' && t->e - t->b >= 8 &&
	    t->b[1] == '-' && (t->b[2] | 0x20) == 'g');
}

/*
 * One pass over the request for Host (the first Host line) and its
 * internal lines (ghost_rq_x_g(), rq.c), which it counts, so that a
 * request without any is not stripped. Two loops: until Host is found,
 * then only what an internal line starts with: the lines after Host
 * cost a test each.
 */
static inline void
ghost_rq_scan(struct ghost_rq *q, int bside)
{
	const txt *t, *te;

	t = &q->hp->hd[HTTP_HDR_FIRST];
	te = &q->hp->hd[q->hp->nhd];
	for (; t < te; t++) {
		if (t->b == NULL)
			continue;
		if ((q->host = ghost_rq_host_val(t)) != NULL) {
			t++;
			break;
		}
		if (GHOST_UNLIKELY(ghost_rq_is_x_g(t)))
			ghost_rq_x_g(q, t, bside);
	}
	for (; t < te; t++)
		if (t->b != NULL && GHOST_UNLIKELY(ghost_rq_is_x_g(t)))
			ghost_rq_x_g(q, t, bside);
}

/*
 * The inputs of a decision on request hp (ctx->http_req, or the bereq on
 * the backend side, where local.socket is the client session's too).
 */
static inline __attribute__((__always_inline__)) void
ghost_rq_init_in(VRT_CTX, struct ghost_rq *q, const struct http *hp)
{
	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	INIT_OBJ(q, GHOST_RQ_MAGIC);
	q->hp = hp;
	q->url = hp->hd[HTTP_HDR_URL].b;
	q->method = hp->hd[HTTP_HDR_METHOD].b;
	ghost_rq_scan(q, ctx->http_bereq != NULL);
	/* the listener: only when asked (ghost_rq_sock()) */
	q->sock_ctx = ctx;
	AN(q->url);
	AN(q->method);
}

#endif /* GHOST_RQ_H */

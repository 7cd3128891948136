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
int ghost_rq_hdr(const struct ghost_rq *, unsigned *u, const char **n,
    size_t *nl, const char **v, size_t *vl);
ghost_enc_f ghost_rq_enc;
size_t ghost_rq_enc_max(const struct ghost_rq *);
const char *ghost_rq_sock(const struct ghost_rq *);

#endif /* GHOST_RQ_H */

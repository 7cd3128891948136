/*
 * vmod ghost: shared declarations.
 *
 * Per VCL state (PRIV_VCL) is one struct ghost_vcl. Per task state
 * (PRIV_TASK, WS_Alloc'ed) is one struct ghost_task.
 *
 * LOCK ORDER (a thread holding a lock may only take locks further down
 * this list; most code paths hold one lock at a time):
 *
 *   1. gv->live_mtx    (trylock only; held across the `live` round trip
 *                       and the deletion of dead backends)
 *   2. gv->be_lock     (rwlock: endpoint -> native backend map)
 *   3. gv->pool_mtx    (connection pool; never held during I/O)
 *   4. memo stripe     (one of gv->memo->mtx[]; never held during I/O)
 *   5. gv->st_lock     (rwlock: state file mapping)
 *   6. gv->reap_mtx    (reaper thread's condition variable)
 *   7. gv->err_mtx     (last reload error text)
 *
 * In practice: live_mtx -> be_lock (marking and sweeping), live_mtx ->
 * pool_mtx (the live round trip). reap_mtx is never held while taking
 * another lock. No path
 * takes be_lock and then a memo stripe, or a memo stripe and then
 * anything else. Nothing is locked while VRT_delete_backend() runs.
 */

#ifndef GHOST_H
#define GHOST_H

#include <pthread.h>
#include <stdint.h>
#include <stddef.h>

#include "msgpack.h"

#ifndef PTOK
#define PTOK(e)		AZ(e)	/* pthread call must succeed */
#endif

#define GHOST_PROTO_VERSION	1
#define GHOST_CLIENT		"vmod-ghost 0.1"
#define GHOST_MAX_FRAME		(1024U * 1024U)
#define GHOST_POOL_MAX		32
#define GHOST_BE_BUCKETS	256
#define GHOST_DEAD_GRACE	1.0	/* s before a dead backend is retired */
#define GHOST_DRAIN		65.0	/* s from retiring to the final release,
					   > backend_idle_timeout (60 s) */
#define GHOST_RELOAD_TMO	5.0	/* s, minimum timeout of reload() */
#define GHOST_HFM_TTL		1.0	/* s, hit-for-miss marker of synth */
#define GHOST_ERRLEN		1088	/* > route.MaxErrorLen (1024): whole */

struct ghost_conn;
struct ghost_memo;
struct ghost_be;

struct ghost_vcl {
	unsigned		magic;
#define GHOST_VCL_MAGIC		0x6a05e7c1
	int			inited;
	int			warm;
	char			*sock;		/* malloc'ed */
	char			*state_path;	/* malloc'ed */
	double			timeout;
	const char		*vcl_name;

	/* connection pool (conn.c) */
	pthread_mutex_t		pool_mtx;
	struct ghost_conn	*pool[GHOST_POOL_MAX];
	unsigned		npool;

	/* native backends (backend.c) */
	pthread_rwlock_t	be_lock;
	struct ghost_be		*be_hash[GHOST_BE_BUCKETS];
	unsigned		n_be;
	unsigned		n_dead;		/* atomic */
	uint64_t		dead_deadline;	/* atomic, Unix ms */
	uint64_t		live_gen;	/* atomic */
	pthread_mutex_t		live_mtx;
	pthread_mutex_t		reap_mtx;
	pthread_cond_t		reap_cond;
	pthread_t		reap_thr;
	int			reap_running;
	int			reap_stop;
	struct ghost_be		*drain;		/* reaper only; FIFO */
	struct ghost_be		**drain_tail;

	/* memo + state file (memo.c) */
	struct ghost_memo	*memo;
	pthread_rwlock_t	st_lock;
	const volatile uint64_t	*st_map;	/* 64 bytes, read only */
	uint64_t		st_ino;
	uint64_t		st_dev;
	uint64_t		st_next_try;	/* atomic, Unix ms */
	uint64_t		seen_gen;	/* atomic: gen of the newest answer */

	/* reload() */
	pthread_mutex_t		err_mtx;
	char			last_error[GHOST_ERRLEN];

	uint64_t		rng;		/* atomic counter for splitmix64 */
};

/*
 * What a decision depends on (docs/protocol.md "deps"); arrays point into
 * the answer (or a memoised deps record) and were validated on decoding.
 */
struct ghost_deps {
	int			p, m, q, s, x;
	const uint8_t		*h, *h_end;	/* [name, ...] */
	const uint8_t		*hv, *hv_end;	/* [nil | [value, ...], ...] */
	const uint8_t		*qv, *qv_end;	/* [[name, [value, ...]], ...] */
	const uint8_t		*sl, *sl_end;	/* [scope length, ...] */
	const uint8_t		*raw, *raw_end;	/* the whole deps map */
};

/* A decoded route answer; strings and arrays point into `raw`. */
struct ghost_ans {
	uint64_t		gen;
	int			o;		/* outcome */
	int			st;		/* status */
	struct ghost_deps	deps;
	int64_t			sc;		/* scope length, -1: this path */
	int			pe;		/* path edit [pe_cut, pe_with] */
	size_t			pe_cut;
	const char		*pe_with;
	size_t			pe_with_len;
	int			loc_base;	/* loc lacks the edited path */
	const uint8_t		*g, *g_end;	/* groups */
	const uint8_t		*rqs, *rqs_end, *rqa, *rqa_end,
				*rqr, *rqr_end;
	const uint8_t		*rss, *rss_end, *rsa, *rsa_end,
				*rsr, *rsr_end;
	const char		*path;
	size_t			path_len;
	const char		*hst;
	size_t			hst_len;
	const char		*loc;
	size_t			loc_len;
};

struct ghost_task {
	unsigned		magic;
#define GHOST_TASK_MAGIC	0x9a3c41d7
	int			status;		/* 0 = route() not called */
	const char		*reason;	/* in ctx->ws */
	const char		*location;	/* in ctx->ws, "" if none */
	int			have_ans;
	struct ghost_ans	ans;		/* points into ctx->ws */
};

/* vmod_ghost.c */
struct ghost_task *ghost_task_get(VRT_CTX, struct vmod_priv *, int create);
struct ghost_vcl *ghost_vcl_get(VRT_CTX, struct vmod_priv *, const char *fn);
void ghost_unreachable(VRT_CTX, struct ghost_task *, const char *why);

/* conn.c */
struct ghost_rt {
	/* in: encoder callback fills the request into w */
	void			(*enc)(struct mp_w *w, void *arg);
	void			*arg;
	size_t			enc_max;	/* upper bound of encoded size */
	double			timeout;
	int			fresh;		/* do not use a pooled connection */
	/* out */
	const uint8_t		*ans;		/* copied into ws when ws != NULL */
	size_t			ans_len;
	char			why[256];
};
int ghost_roundtrip(struct ghost_vcl *, struct ws *, struct ghost_rt *);
void ghost_pool_flush(struct ghost_vcl *);

/* backend.c */
VCL_BACKEND ghost_be_get(VRT_CTX, struct ghost_vcl *, struct ghost_task *,
    const char *addr, size_t addr_len, unsigned port, uint64_t gen);
int ghost_reaper_start(struct ghost_vcl *);
void ghost_reaper_stop(struct ghost_vcl *);
void ghost_be_live(VRT_CTX, struct ghost_vcl *, uint64_t gen);
void ghost_be_fini(VRT_CTX, struct ghost_vcl *);

/* memo.c */
int ghost_memo_new(struct ghost_vcl *, unsigned slots);
void ghost_memo_free(struct ghost_vcl *);
int ghost_state_read(struct ghost_vcl *, double now, uint64_t *gen);
void ghost_state_unmap(struct ghost_vcl *);
int ghost_memo_lookup(struct ghost_vcl *, struct ws *, uint64_t gen,
    const char *key, size_t klen, const uint8_t **val, size_t *vlen);
void ghost_memo_insert(struct ghost_vcl *, uint64_t gen, const char *key,
    size_t klen, const uint8_t *val, size_t vlen);
uint64_t ghost_hash(const void *, size_t, uint64_t seed);

/* answer.c */
int ghost_ans_decode(const uint8_t *, size_t, struct ghost_ans *,
    char *why, size_t whylen);
int ghost_deps_decode(const uint8_t *, size_t, struct ghost_deps *);

/* route.c: the inputs of a decision */
struct ghost_rq {
	unsigned		magic;
#define GHOST_RQ_MAGIC		0x5e17c0a2
	const struct http	*hp;
	const char		*host;		/* NULL when absent */
	const char		*url;
	const char		*method;
	const char		*sock;		/* NULL when unknown */
	int			https;
	int			rec;		/* use X-Ghost-Req-* lines */
};
void ghost_rq_init(VRT_CTX, struct ghost_rq *, const struct http *);
int ghost_decide(VRT_CTX, struct ghost_vcl *, const struct ghost_rq *,
    struct ghost_ans *, const char **src, char *why, size_t whylen);
VCL_BACKEND ghost_route(VRT_CTX, struct ghost_vcl *, struct ghost_task *);
void ghost_hdr_split(const txt *, const char **n, size_t *nl,
    const char **v, size_t *vl);
void ghost_hdr_init(void);
int ghost_hdr_recorded(const char *n, size_t nl);
const char *ghost_line_val(const txt *, const char *name, size_t n);
int ghost_is_internal(const txt *);
int ghost_rq_hdr(const struct ghost_rq *, unsigned *u, const char **n,
    size_t *nl, const char **v, size_t *vl);

/* reuse.c */
void ghost_rq_path(const struct ghost_rq *, const char **p, size_t *l);
int ghost_memo_find(struct ghost_vcl *, struct ws *, uint64_t gen,
    const struct ghost_rq *, struct ghost_ans *, const uint8_t **raw,
    size_t *rawlen);
void ghost_memo_store(struct ghost_vcl *, struct ws *,
    const struct ghost_rq *, const struct ghost_ans *, const uint8_t *raw,
    size_t rawlen);
void ghost_ans_fit(const struct ghost_rq *, struct ghost_ans *);
int ghost_ans_resolve(struct ws *, const struct ghost_rq *,
    struct ghost_ans *);

/* apply.c */
struct http;
void ghost_apply_req(VRT_CTX, struct http *, struct ghost_task *);
void ghost_strip_internal(struct http *);
void ghost_merge_lines(struct http *);
void ghost_record(struct http *, const char *sock);
void ghost_recv_scan(struct http *, int *xfp, int *ws);
void ghost_apply_resp(VRT_CTX, struct http *, const struct ghost_task *);
void ghost_synth(VRT_CTX, struct http *, const struct ghost_task *);
/*
 * Varnish 7.1 header names as "\<len>Name:": the length byte (name + 1) is
 * a signed char, so at most 126 bytes (route.MaxHeaderName in ghostd).
 */
#define GHOST_HDR_MAX	126
#define GHOST_HDR_BUF	(GHOST_HDR_MAX + 3)
int ghost_hdr_fmt(char *buf, size_t bl, const char *name, size_t nl);
unsigned ghost_hdr_is(const struct http *, unsigned u, const char *name,
    size_t nl);

/*
 * Hash of a header name in [0, 2^bits) from its length and its first,
 * middle and last characters, ASCII case-insensitive (nl > 0). Cheap
 * enough for every header of every request.
 */
static inline unsigned
ghost_name_hash(const char *n, size_t nl, unsigned bits)
{
	uint32_t k;

	k = (uint32_t)(nl & 0xff) |
	    ((uint32_t)((unsigned char)n[0] | 0x20U) << 8) |
	    ((uint32_t)((unsigned char)n[nl / 2] | 0x20U) << 16) |
	    ((uint32_t)((unsigned char)n[nl - 1] | 0x20U) << 24);
	return ((k * 0x9e3779b1U) >> (32 - bits));
}

#endif /* GHOST_H */

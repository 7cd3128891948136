/*
 * vmod ghost: the types every file shares. Per VCL state (PRIV_VCL) is
 * one struct ghost_vcl, per task state (PRIV_TASK, WS_Alloc'ed) one
 * struct ghost_task, a decoded answer one struct ghost_ans.
 *
 * LAYERS. Each .c file below the top has a header of the same name
 * declaring what it offers; a file includes ghost.h and the headers of
 * layers below its own, never of its own layer or above, so calls only
 * go down and there are no cycles (test/shim-layers.sh checks this, in
 * make test):
 *
 *   5  vmod_ghost.c   the VCL interface: events, ghost.*() functions
 *   4  cache.c        caching: the cache decision's hash, TTLs, tags,
 *                     PURGE/BAN
 *   3  route.c        one decision: inputs, memo or ghostd, endpoint,
 *                     outcome
 *   2  reuse.c        memo keys and lookup/store of decisions
 *      apply.c        a decision applied to HTTP headers, synth
 *      backend.c      native backends per endpoint, their retirement
 *      retry.c        a fetch's timeouts and retries
 *      affinity.c     consistent-hash keys and rings, session tokens
 *      cluster.c      self-sharding: the members, the ring, the hop
 *                     mark, owners that failed
 *   1  rq.c           the inputs of a decision (struct ghost_rq) and
 *                     the route request
 *      conn.c         connections and round trips to ghostd
 *      answer.c       decoding of a route answer
 *      cors.c         the cors filter applied: preflight test, Origin
 *                     test, CORS response headers
 *      memo.c         the memo table and ghostd's state file
 *      pick.c         weighted selection of an endpoint
 *   0  hdr.c          header line helpers
 *      cachekey.c     the cache-key URL, the normalised host
 *      query.c        query string parameters
 *      ring.c         consistent-hash ring lookup and key hash
 *      stats.c        the VSC counters (varnishstat GHOST.*, ghost.vsc)
 *      msgpack.h      the msgpack codec (header only)
 *
 * A helper used by one file is static in it; one used by two files goes
 * in the lowest layer both may include. A new concern (counters, say) is
 * a new file, entered in this table at the lowest layer its calls allow.
 *
 * LOCK ORDER (a thread holding a lock may only take locks further down
 * this list; most code paths hold one lock at a time). The mutexes are
 * varnishd's Lck_* (ownership asserted on unlock, statistics in
 * varnishstat as LCK.ghost.<name>.*), except the memo sets' locks: they are
 * taken on every routed fetch, and Lck_* (an error-checking mutex, owner
 * bookkeeping, a shared counter) cost ~400 instructions per pass request
 * there under callgrind, a pthread mutex ~60 (memo.c: spinlocks). The
 * rwlocks are pthread's (7.1 has no Lck rwlock):
 *
 *   0. gv->cl_mtx      (pthread: one request fetching the cluster;
 *                       held across that round trip, never waited for)
 *   1. gv->live_mtx    (LCK.ghost.live; taken by the reaper thread
 *                       only: held across the `live` round trips and
 *                       while sweeping)
 *   1b. gv->cl_lock    (rwlock: the cluster; read side held for an owner
 *                       lookup or a hop check, write side to replace it;
 *                       the owner lookup reads be_lock's read side for
 *                       the members' probe state, cluster.c/cache.c)
 *   2. gv->be_lock     (rwlock: endpoint -> native backend map)
 *   3. gv->pool_mtx    (LCK.ghost.pool; connection pool; never held
 *                       during I/O)
 *   4. memo set lock   (a spinlock, memo.c: a bit in the set's first
 *                       slot; held for that set's scan only, never
 *                       during I/O)
 *   5. gv->st_lock     (rwlock: its write side orders remapping the
 *                       state file; requests read the mapping
 *                       without it, memo.c st_open())
 *   6. gv->reap_mtx    (LCK.ghost.reap; reaper thread's condition
 *                       variable)
 *   7. gv->err_mtx     (LCK.ghost.err; last reload error text)
 *   7b. gv->vsc_mtx    (LCK.ghost.vsc; the VSM cluster that takes the
 *                       next native backend's VSC segment, backend.c;
 *                       taken with no other ghost lock held, and held
 *                       across VRT_VSM_Cluster_New(), which takes
 *                       varnishd's VSC and VSM locks: varnishd never
 *                       calls the VMOD holding those)
 *   8. gv->ring_lock   (rwlock: the consistent-hash rings' slots,
 *                       affinity.c; a walk holds a reference, not
 *                       the lock)
 *
 * In practice: live_mtx -> be_lock (marking and sweeping), live_mtx ->
 * pool_mtx (the live round trip). reap_mtx is never held while taking
 * another lock (nor across VRT_VCL_Prevent_Cold()/VRT_VCL_Allow_Cold()
 * or VRT_VCL_Prevent_Discard()/VRT_VCL_Allow_Discard(), which take
 * varnishd's vcl_mtx). No path takes be_lock and then a memo set lock, or a
 * memo set lock and then anything else. Nothing is locked while
 * VRT_new_backend_clustered(), VRT_delete_backend() or
 * VRT_VSM_Cluster_Destroy() run.
 */

#ifndef GHOST_H
#define GHOST_H

#include <pthread.h>
#include <stdint.h>
#include <stddef.h>

#include "msgpack.h"

/*
 * Everything the shim's headers declare from here on is internal to
 * libvmod_ghost.so (hidden): a call from one file to another is a direct
 * call, not one through the PLT (a stub and a GOT load, i.e. more code
 * lines per request and an indirect jump). varnishd finds the VMOD by
 * Vmod_ghost_Data alone (build/vmod/vcc_ghost_if.c, which does not
 * include this file) and its functions through that table. No file
 * includes a system or varnishd header after this one
 * (test/shim-layers.sh checks that).
 */
#pragma GCC visibility push(hidden)

#ifndef PTOK
#define PTOK(e)		AZ(e)	/* pthread call must succeed */
#endif

/*
 * Code layout of the fetch path. Every routed fetch runs ~3,500
 * instructions of the shim once, and the rest of a request evicts them
 * from the CPU's L1 instruction cache before the next fetch: each
 * 64-byte line of code it touches is a cache miss (callgrind's simulated
 * I1, docs/benchmarks.md "the fetch path's code footprint"). So the
 * common path is kept dense: rare branches are marked GHOST_UNLIKELY
 * (the compiler moves their blocks out of the straight line) and rare
 * helpers GHOST_COLD (placed in .text.unlikely, away from the hot code);
 * the functions every fetch runs are GHOST_HOT (.text.hot, together).
 * Layout only: no behaviour depends on these.
 */
#define GHOST_LIKELY(x)		__builtin_expect(!!(x), 1)
#define GHOST_UNLIKELY(x)	__builtin_expect(!!(x), 0)
#define GHOST_COLD		__attribute__((__cold__, __noinline__))
#define GHOST_HOT		__attribute__((__hot__))
/*
 * A function whose straight line is a few code lines long and runs on
 * every request starts on a line of its own: it then touches
 * ceil(bytes / 64) lines, not one more (docs/benchmarks.md, tenth
 * session).
 */
#define GHOST_LINE		__attribute__((__aligned__(64)))
/* a static helper of the fetch path folded into its caller: one frame */
#define GHOST_INLINE		inline __attribute__((__always_inline__))

#define GHOST_PROTO_VERSION	1
#define GHOST_CLIENT		"vmod-ghost 0.1"
#define GHOST_MAX_FRAME		(1024U * 1024U)
#define GHOST_POOL_MAX		32
#define GHOST_BE_BUCKETS	2	/* initial; doubles past 2 per bucket */
#define GHOST_LIVE_PAGE		4096	/* endpoints per `live` request */
#define GHOST_LIVE_PAGE_MAX	8192	/* x 64 bytes < GHOST_MAX_FRAME */
#define GHOST_LIVE_TMO		1.0	/* s, minimum timeout of one page */
#define GHOST_LIVE_RETRY	1.0	/* s between failed live passes */
#define GHOST_MAX_BE_AUTO	262144	/* most max_backends from the
					   descriptor limit (the default) */
#define GHOST_REPLACE_MIN	4096	/* replace_min's default */
#define GHOST_VSC_PAGES		4	/* pages of a VSM cluster of backends'
					   VSC segments (vsc_cluster = 0) */
#define GHOST_IDLE		2	/* s unused before LRU may retire */
#define GHOST_DEAD_GRACE	1.0	/* s before a dead backend is retired */
#define GHOST_HEALTH_TICK	0.25	/* s between the reaper's looks at
					   probed and ejected backends */
#define GHOST_DRAIN_MARGIN	5.0	/* s from retiring to the final release:
					   backend_idle_timeout + this */
#define GHOST_COLD_DESC		"ghost: the release of its native " \
				"backends, backend_idle_timeout + 1 s " \
				"after it went cold"
#define GHOST_RELOAD_TMO	5.0	/* s, minimum timeout of reload() */
#define GHOST_RELOAD_MARGIN	1.0	/* s, ghostd answers this much earlier */
#define GHOST_HFM_TTL		1.0	/* s, hit-for-miss marker of synth */
#define GHOST_ERRLEN		1088	/* > route.MaxErrorLen (1024): whole */
#define GHOST_503_REASON	"Service Unavailable"	/* what clients see */
#define GHOST_MAX_TRIES		11	/* endpoints a fetch remembers trying:
					   1 + route.MaxRetryAttempts */

struct ghost_conn;
struct ghost_memo;
struct ghost_be;
struct ghost_vsc;
struct ghost_rings;
struct ghost_cluster;
struct ghost_peer;

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
	struct lock		pool_mtx;
	struct ghost_conn	*pool[GHOST_POOL_MAX];
	unsigned		npool;

	/* native backends (backend.c) */
	pthread_rwlock_t	be_lock;
	struct ghost_be		**be_hash;	/* malloc'ed, be_nb buckets */
	unsigned		be_nb;		/* 0 or a power of 2; grows */
	unsigned		n_be;
	unsigned		n_dead;		/* atomic */
	unsigned		n_drain;	/* atomic: retired, not released */
	uint64_t		dead_deadline;	/* atomic, Unix ms */
	uint64_t		live_gen;	/* atomic: last gen checked */
	uint64_t		be_epoch;	/* atomic, written under be_lock's
						   write side: entries that left
						   the map, ever (backend.c,
						   ghost_be_get_memo()) */
	uint64_t		live_want;	/* atomic: newest gen seen */
	unsigned		live_page;	/* endpoints per live request */
	unsigned		max_be;		/* ceiling of n_be + n_drain,
						   0: none */
	struct lock		live_mtx;
	struct lock		reap_mtx;
	pthread_cond_t		reap_cond;
	pthread_t		reap_thr;
	int			reap_running;
	int			reap_stop;
	struct ghost_be		*drain;		/* reaper only; FIFO */
	struct ghost_be		**drain_tail;
	/* VSM clusters of their VSC segments */
	struct lock		vsc_mtx;
	struct ghost_vsc	*vsc_cur;	/* under vsc_mtx; NULL: take a
						   new cluster */
	unsigned		vsc_per;	/* backends per cluster, 0: auto */
	unsigned		replace_min;	/* see be_replace(), 0: never */
	struct vcl		*vcl;		/* this VCL (the reaper's ctx) */
	struct vclref		*mk_ref;	/* under reap_mtx: a request's
						   hold on the VCL's temperature
						   for the reaper (be_replace()) */
	struct vclref		*cold_ref;	/* under reap_mtx: held from
						   WARM until the cold release
						   (ghost_be_cold()) */
	double			cold_at;	/* under reap_mtx: when the VCL
						   went cold, 0: warm or done */
	int			cold;		/* atomic: cold_at != 0 */

	/* memo + state file (memo.c) */
	struct ghost_memo	*memo;
	pthread_rwlock_t	st_lock;
	const volatile uint64_t	*st_map;	/* 64 bytes, read only */
	uint64_t		st_ino;
	uint64_t		st_dev;
	uint64_t		st_next_try;	/* atomic, Unix ms */
	uint64_t		seen_gen;	/* atomic: gen of the newest answer */

	/* client side (cache.c) */
	int			cd_lookup;	/* atomic: 1 once a request was
						   decided lookup (ghost.hash()
						   looks for a policy key only
						   then), never reset */

	/* reload() */
	struct lock		err_mtx;
	char			last_error[GHOST_ERRLEN];

	uint64_t		rng;		/* atomic counter for splitmix64 */

	/* endpoint health (backend.c): what the reaper last saw */
	unsigned		n_probed;	/* atomic: backends with a probe */
	unsigned		n_ejected;	/* atomic: backends ejected */
	unsigned		n_bad;		/* atomic: sick or ejected */
	double			health_next;	/* reaper only: next look */
	/* self-sharding (cluster.c) */
	pthread_mutex_t		cl_mtx;
	pthread_rwlock_t	cl_lock;
	struct ghost_cluster	*cl;		/* NULL: none fetched */
	uint64_t		cl_ver;		/* atomic: cl's version */
	int			cl_state;	/* atomic: GHOST_CL_* */
	double			cl_next_try;	/* under cl_mtx */

	/* consistent-hash rings (affinity.c) */
	pthread_rwlock_t	ring_lock;
	struct ghost_rings	*rings;		/* malloc'ed on first use */
	uint64_t		ring_retry;	/* atomic, Unix ms: no ring
						   fetch before (one failed) */

};

/*
 * The VCL's struct ghost_vcl from the VMOD's priv at an entry point (fn:
 * its name, for the error): NULL, the VCL failed, when the VMOD is not
 * loaded or ghost.init() has not run. Inline: the client side calls it
 * on every request, hits included.
 */
void ghost_vcl_get_fail(VRT_CTX, const struct vmod_priv *, const char *fn);

static inline __attribute__((__always_inline__)) struct ghost_vcl *
ghost_vcl_get(VRT_CTX, struct vmod_priv *priv, const char *fn)
{
	struct ghost_vcl *gv;

	/* priv: VCC's pointer to the VCL's own vmod_priv, never NULL */
	gv = priv->priv;
	if (__builtin_expect(gv != NULL, 1)) {
		CHECK_OBJ(gv, GHOST_VCL_MAGIC);
		if (__builtin_expect(gv->inited, 1))
			return (gv);
	}
	ghost_vcl_get_fail(ctx, priv, fn);
	return (NULL);
}

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
	const uint8_t		*c, *c_end;	/* [name, ...]: cache decision */
	const uint8_t		*raw, *raw_end;	/* the whole deps map */
};

/* Outcome of a decision (the answer's "o", docs/protocol.md). */
enum ghost_outcome {
	GHOST_ROUTE = 0,	/* to a backend of the groups */
	GHOST_NO_ROUTE = 1,	/* 404 */
	GHOST_NO_BACKEND = 2,	/* 500 */
	GHOST_REDIRECT = 3,	/* st, loc */
};

/* A route's active probe (the answer's "hp"); id 0: none. */
struct ghost_hp {
	uint32_t		id;
	const char		*u;		/* path, u_len bytes */
	size_t			u_len;
	const char		*h;		/* Host, h_len bytes; NULL:
						   the endpoint's address */
	size_t			h_len;
	unsigned		iv_ms, to_ms, w, th, in, x;
};

/*
 * A decoded route answer; strings and arrays point into `raw`. A fetch
 * reads a memoised answer in place, in its memo entry (64-byte aligned:
 * memo.c), so the fields are in the order the backend side reads them:
 * what the fetch of the usual route reads (ghost.route(): the outcome,
 * the endpoint, the tests that gate the rare paths, the log line) in the
 * first three cache lines, ghost.response()'s tests of a pass in the
 * first (ops), what storing an object reads in the next two, then the
 * rest.
 */
struct ghost_ans {
	/*
	 * The first cache line (a memoised answer is 64-byte aligned, memo.c):
	 * what decide() and the plain lane (route.c route_plain()) read of
	 * an answer, so that a long-tail fetch touches one line of it.
	 */
	uint64_t		gen;
	const char		*ep1;		/* g's only endpoint (one group
						   of one, weighted), NULL if
						   not: mp_one_endpoint() */
	size_t			ep1_len;
	size_t			rn_len;		/* rn's (below) */
	unsigned		ep1_port;
	int			pe;		/* path edit [pe_cut, pe_with] */
	uint8_t			ops;		/* GHOST_OPS_*, set on decoding */
	uint8_t			gen_dl;		/* gen in decimal: gen_dl
						   bytes of gen_d; 0: none
						   (set in memoised answers) */
	char			gen_d[20];
	/* ghost.route() */
	enum ghost_outcome	o;
	int			st;		/* status */
	int			pn;		/* panic %, -1: no health rules */
	int			has_sp;		/* session persistence (sp) */
	int			has_cr;		/* the route's cors filter */
	int			rt_att;		/* retries, 0: none */
	unsigned		ol_n;		/* consecutive failures, 0: no ol */
	/* consistent hashing (lb): keys [[kind, name], ...] (lb_k_end
	 * below), ring ID lb_ring */
	const uint8_t		*lb_k;
	/* timeouts and retry (tm, rt), ms; 0: none */
	int64_t			tm_req, tm_be;
	/* request filters (their ends below) */
	const uint8_t		*rqs, *rqa, *rqr;
	const char		*path;
	size_t			path_len;
	const char		*hst;
	size_t			hst_len;
	const char		*rn;		/* route_name, for the log
						   (rn_len bytes, above) */
	/* endpoint health (hp, ol, pn) */
	struct ghost_hp		hp;
	/* ghost.response() (a stored object) */
	int			cm;		/* GHOST_CM_* */
	int			has_cp;
	uint8_t			ban_ok;		/* ban_hx is the ban line's
						   name for every request it
						   answers (memoised answers
						   only: reuse.c memo_ban()) */
	char			ban_hx[16];
	const uint8_t		*kh, *kh_end;	/* key headers */
	const uint8_t		*qi, *qi_end;	/* query: kept in the key */
	const uint8_t		*qx, *qx_end;	/* query: left out of the key */
	/* what GHOST_OPS_RESP sums up */
	const uint8_t		*rss, *rsa, *rsr;	/* response
							   filters (ends
							   below) */
	const char		*nc;		/* why not cacheable, or NULL */
	size_t			nc_len;
	const uint8_t		*cr_v, *cr_v_end;	/* Vary names */
	struct ghost_deps	deps;
	/* the rest; the ends of the arrays above */
	const uint8_t		*lb_k_end, *rqs_end, *rqa_end, *rqr_end,
				*rss_end, *rsa_end, *rsr_end;
	int64_t			sc;		/* scope length, -1: this path */
	size_t			pe_cut;
	const char		*pe_with;
	size_t			pe_with_len;
	int			loc_base;	/* loc lacks the edited path */
	const uint8_t		*g, *g_end;	/* groups */
	const char		*loc;
	size_t			loc_len;
	const char		*rs;		/* reason phrase of st */
	size_t			rs_len;
	const char		*bd;		/* body of a synthetic response */
	size_t			bd_len;
	/* cache policy (cp) */
	int			forced;
	int64_t			ttl, grace, keep;	/* -1 = not set */
	int64_t			rt_backoff;
	uint64_t		rt_codes[4];	/* bit (status - 400) */
	unsigned		ol_mp;		/* max ejection percent */
	uint64_t		ol_be, ol_me;	/* base, max ejection ms */
	uint64_t		lb_ring;
	/* session persistence (sp): tokens parallel to the flat endpoints */
	int			sp_t;		/* GHOST_SP_COOKIE, _HEADER */
	const char		*sp_n;
	size_t			sp_nl;
	int64_t			sp_a, sp_i;	/* timeouts, s; 0: none */
	const uint8_t		*sp_tk, *sp_tk_end;
	uint64_t		sh;		/* cluster version, 0: local */
	/* the route's cors filter (cr), applied by cors.c; every pointer
	 * is in reuse.c's CR_PTRS */
	int			cr_any;		/* every Origin allowed */
	int			cr_echo;	/* ACAO repeats the Origin */
	const uint8_t		*cr_oe, *cr_oe_end;	/* exact origins */
	const uint8_t		*cr_ow, *cr_ow_end;	/* [prefix, suffix] */
	const uint8_t		*cr_h, *cr_h_end;	/* actual response */
	int			has_pf;		/* preflight answer (pf) */
	int			pf_st;
	const char		*pf_rs;
	size_t			pf_rs_len;
	const uint8_t		*pf_rq, *pf_rq_end;	/* required headers */
	const uint8_t		*pf_h, *pf_h_end;
	int			pf_em, pf_eh;	/* echo ACRM / ACRH */
};

/* ghost_ans.ops: which of the rare paths an answer takes (answer.c) */
#define GHOST_OPS_RESP		1	/* apply.h ghost_resp_ops() */
#define GHOST_OPS_RETRY		2	/* retry.h ghost_retry_on() */
#define GHOST_OPS_PLAIN		4	/* route.c route_plain() */
#define GHOST_OPS_STORE		8	/* cache.c ghost_cache_resp(): not
					   a pass, no cache_policy, no
					   query filter, no key headers */

/* the answer's lb key kinds and sp types (docs/protocol.md) */
#define GHOST_KEY_URL		0
#define GHOST_KEY_CACHE_KEY	1
#define GHOST_KEY_HEADER	2
#define GHOST_KEY_COOKIE	3
#define GHOST_KEY_SOURCE_IP	4
#define GHOST_SP_COOKIE		0
#define GHOST_SP_HEADER		1

#define GHOST_CM_ORIGIN		0
#define GHOST_CM_PASS		1
#define GHOST_CM_LOOKUP		2

/* set on req when ghost.cache() could not decide (its fetch reads it) */
#define GHOST_CACHE_UNKNOWN	"X-Ghost-Cache-Unknown"

/*
 * Bytes after a task's struct in its workspace allocation (task_create()):
 * ghost_cache_resp() writes the usual stored object's ban line there
 * (~30 + the URL's length) rather than in a WS_Alloc() of its own.
 */
#define GHOST_TASK_SPARE	160

struct ghost_task {
	unsigned		magic;
#define GHOST_TASK_MAGIC	0x9a3c41d7
	const struct vcl	*vcl;		/* the VCL it belongs to */
	int			status;		/* 0 = route() not called */
	const char		*reason;	/* the shim's own (503), in
						   ctx->ws; NULL: the answer's */
	const char		*location;	/* in ctx->ws, "" if none */
	int			preflight;	/* answered as a CORS preflight */
	int			have_ans;
	const struct ghost_ans	*ans;		/* the decision (have_ans):
						   the memo entry ans_ref's,
						   read in place, or in
						   ctx->ws; never NULL */
	void			*ans_ref;	/* a memo entry held (route.c),
						   dropped when the task ends */
	/* backend side: what the stored object is tagged with */
	const char		*obj_host;	/* raw Host of the fetch, NULL if
						   none (before any rewrite) */
	const char		*obj_url;	/* its URL (before any rewrite) */
	/* the client's method, https, listener: is the object plain?
	   (cache.c ghost_cache_plain()) */
	const char		*obj_method;
	int			obj_https;
	int			fwd;		/* fetch forwarded to peer (here:
						   the line ghost.response()
						   reads for a stored object) */
	const char		*obj_sock;	/* NULL if unknown; set by
						   ghost_cache_resp()'s
						   resp_any() */
	int			cache_unknown;	/* the client side could not
						   decide (GHOST_CACHE_UNKNOWN) */
	uint8_t			ans_ops;	/* ans->ops, copied when route()
						   sets ans: ghost.response()
						   reads it here, in a line of
						   the task (warm), not in the
						   answer's (cold again after
						   the upstream I/O) */
	/* backend side: the endpoints this fetch tried (flat indices in
	   ans.g), so that a retry prefers another one */
	unsigned		tried[GHOST_MAX_TRIES];
	unsigned		ntried;
	double			att_start;	/* this attempt's start */
	double			att_limit;	/* its timeout (s), 0: none */
	uint64_t		att_hdrbytes;	/* bereq header bytes sent
						   before it */
	/* ghost.reload() in this task */
	int			reload_pending;	/* answered ok + pending */
	const char		*reload_msg;	/* in ctx->ws, NULL if none */
	/* backend side: this attempt's endpoint, for outlier detection */
	struct ghost_vcl	*gv;
	const char		*cur_addr;	/* in ans; NULL: none */
	size_t			cur_al;
	unsigned		cur_port;
	uint32_t		cur_probe;	/* the backend's probe id */
	int			cur_done;	/* its result was counted */
	/* affinity (affinity.c): the request's consistent-hash key, the
	   endpoint its session token names, and the session the
	   response carries (ghost.response()) */
	int			lb_have;
	uint64_t		lb_h;
	int64_t			sess_want;	/* flat, -1: none */
	int64_t			sess_want_at;
	int			sess_on;
	unsigned		sess_flat;
	int64_t			sess_at;
	int			sess_fresh;
	/* self-sharding: client side (enum ghost_shard), backend side */
	int			shard;
	int			fwd_failed;	/* ... and it failed */
	struct ghost_peer	*peer;		/* in ctx->ws */
};

/*
 * The client side's decision of one request: its cache mode (ghost.cache(),
 * ghost.recv_action()) and the key of its policy for ghost.hash(), kept
 * per worker thread from vcl_recv to vcl_hash (cache.c).
 */
#define GHOST_CDEC_KEY	1024	/* bytes of kh, qi, qx kept; more: key_big */
struct ghost_cdec {
	const void		*req;		/* whose: struct req, */
	uint64_t		vxid;		/* its VXID, */
	unsigned		restarts;	/* its vcl_recv pass, */
	const struct ghost_vcl	*gv;		/* and VCL */
	int			known;		/* cm decided */
	int			cm;		/* GHOST_CM_* */
	int			action;		/* recv_action()'s, -1: none */
	int			key_big;	/* key did not fit in buf */
	struct ghost_ans	key;		/* of cm LOOKUP: only gen, sh,
						   kh, qi, qx; into buf */
	uint8_t			buf[GHOST_CDEC_KEY];
};

/* The state file as a caller already read it (ghost_state_read()). */
struct ghost_st {
	int			known;		/* 0: ghost_decide() reads it */
	int			fresh;		/* its return value */
	uint64_t		gen;
};

/* Encodes a request to ghostd into w (conn.c sizes w from an upper
 * bound first). */
typedef void ghost_enc_f(struct mp_w *w, void *arg);

#endif /* GHOST_H */

/*
 * Layer 4, the top: VCL events, per-VCL and per-task state, and the VCL
 * functions (vmod_ghost.vcc). Everything else is below; see ghost.h.
 */

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "cache/cache.h"
#include "vcl.h"
#include "vrt_obj.h"
#include "vsb.h"
#include "vtim.h"

#include "msgpack.h"
#include "ghost.h"
#include "hdr.h"
#include "conn.h"
#include "memo.h"
#include "apply.h"
#include "backend.h"
#include "retry.h"
#include "cluster.h"
#include "route.h"
#include "cache.h"
#include "stats.h"
#include "affinity.h"
#include "vcc_ghost_if.h"

/* ---- lock classes ---------------------------------------------------- */

/*
 * varnishd lock classes, LCK.ghost.<name>.* in varnishstat, shared by
 * every VCL of this VMOD: created with the first struct ghost_vcl,
 * destroyed with the last (both on the CLI thread).
 */
enum { LCK_POOL, LCK_LIVE, LCK_REAP, LCK_ERR, LCK_VSC, LCK_N };
static const char * const lck_name[LCK_N] = {
	"ghost.pool", "ghost.live", "ghost.reap", "ghost.err", "ghost.vsc"
};
static struct vsc_seg *lck_seg[LCK_N];
static struct VSC_lck *lck_cls[LCK_N];
static unsigned lck_refs;

static void
lck_hold(void)
{
	unsigned i;

	ASSERT_CLI();
	if (lck_refs++ > 0)
		return;
	for (i = 0; i < LCK_N; i++) {
		lck_cls[i] = Lck_CreateClass(&lck_seg[i], lck_name[i]);
		AN(lck_cls[i]);
	}
}

static void
lck_release(void)
{
	unsigned i;

	ASSERT_CLI();
	assert(lck_refs > 0);
	if (--lck_refs > 0)
		return;
	for (i = 0; i < LCK_N; i++) {
		Lck_DestroyClass(&lck_seg[i]);
		lck_cls[i] = NULL;
	}
}

/* ---- per VCL -------------------------------------------------------- */

static void v_matchproto_(vmod_priv_fini_f)
gv_free(VRT_CTX, void *p)
{
	struct ghost_vcl *gv;

	(void)ctx;
	CAST_OBJ_NOTNULL(gv, p, GHOST_VCL_MAGIC);
	ghost_reaper_stop(gv);
	ghost_pool_flush(gv);
	ghost_memo_free(gv);
	ghost_rings_free(gv);
	ghost_state_unmap(gv);
	Lck_Delete(&gv->pool_mtx);
	PTOK(pthread_rwlock_destroy(&gv->ring_lock));
	PTOK(pthread_rwlock_destroy(&gv->be_lock));
	Lck_Delete(&gv->live_mtx);
	Lck_Delete(&gv->reap_mtx);
	PTOK(pthread_cond_destroy(&gv->reap_cond));
	PTOK(pthread_rwlock_destroy(&gv->st_lock));
	Lck_Delete(&gv->err_mtx);
	Lck_Delete(&gv->vsc_mtx);
	ghost_cluster_fini(gv);
	free(gv->sock);
	free(gv->state_path);
	free(gv->be_hash);
	FREE_OBJ(gv);
	lck_release();
}

static const struct vmod_priv_methods gv_methods[1] = {{
	.magic = VMOD_PRIV_METHODS_MAGIC,
	.type = "vmod_ghost_vcl",
	.fini = gv_free
}};

static struct ghost_vcl *
gv_new(void)
{
	struct ghost_vcl *gv;

	ALLOC_OBJ(gv, GHOST_VCL_MAGIC);
	if (gv == NULL)
		return (NULL);
	lck_hold();
	Lck__New(&gv->pool_mtx, lck_cls[LCK_POOL], lck_name[LCK_POOL]);
	PTOK(pthread_rwlock_init(&gv->be_lock, NULL));
	PTOK(pthread_rwlock_init(&gv->ring_lock, NULL));
	Lck__New(&gv->live_mtx, lck_cls[LCK_LIVE], lck_name[LCK_LIVE]);
	Lck__New(&gv->reap_mtx, lck_cls[LCK_REAP], lck_name[LCK_REAP]);
	PTOK(pthread_cond_init(&gv->reap_cond, NULL));
	PTOK(pthread_rwlock_init(&gv->st_lock, NULL));
	Lck__New(&gv->err_mtx, lck_cls[LCK_ERR], lck_name[LCK_ERR]);
	Lck__New(&gv->vsc_mtx, lck_cls[LCK_VSC], lck_name[LCK_VSC]);
	ghost_cluster_init(gv);
	gv->timeout = 0.1;
	gv->live_page = GHOST_LIVE_PAGE;
	gv->max_be = GHOST_MAX_BE_AUTO;	/* ghost.init() sets it */
	gv->replace_min = GHOST_REPLACE_MIN;
	gv->drain_tail = &gv->drain;
	gv->rng = (uint64_t)(VTIM_real() * 1e9) ^ (uint64_t)(uintptr_t)gv;
	return (gv);
}

int v_matchproto_(vmod_event_f)
vmod_event(VRT_CTX, struct vmod_priv *priv, enum vcl_event_e e)
{
	struct ghost_vcl *gv;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	switch (e) {
	case VCL_EVENT_LOAD:
		ghost_hdr_init();	/* CLI thread: serialised */
		if (priv->priv != NULL)
			return (0);
		gv = gv_new();
		if (gv == NULL) {
			VSB_cat(ctx->msg, "vmod ghost: out of memory\n");
			return (1);
		}
		gv->vcl_name = VCL_Name(ctx->vcl);
		gv->vcl = ctx->vcl;
		priv->priv = gv;
		priv->methods = gv_methods;
		ghost_stats_load();
		return (0);
	case VCL_EVENT_WARM:
		CAST_OBJ_NOTNULL(gv, priv->priv, GHOST_VCL_MAGIC);
		Lck_Lock(&gv->pool_mtx);
		gv->warm = 1;
		Lck_Unlock(&gv->pool_mtx);
		if (ghost_reaper_start(gv)) {
			VSB_cat(ctx->msg, "vmod ghost: cannot start thread\n");
			return (1);
		}
		ghost_be_warm(ctx, gv);
		return (0);
	case VCL_EVENT_COLD:
		CAST_OBJ_NOTNULL(gv, priv->priv, GHOST_VCL_MAGIC);
		Lck_Lock(&gv->pool_mtx);
		gv->warm = 0;
		Lck_Unlock(&gv->pool_mtx);
		ghost_pool_flush(gv);
		ghost_be_cold(ctx, gv);
		return (0);
	case VCL_EVENT_DISCARD:
		if (priv->priv == NULL)
			return (0);
		CAST_OBJ_NOTNULL(gv, priv->priv, GHOST_VCL_MAGIC);
		gv->warm = 0;
		ghost_reaper_stop(gv);
		ghost_pool_flush(gv);
		ghost_be_fini(ctx, gv);
		ghost_memo_free(gv);
		ghost_rings_free(gv);
		ghost_state_unmap(gv);
		ghost_stats_discard();
		return (0);
	default:
		return (0);
	}
}

void GHOST_COLD
ghost_vcl_get_fail(VRT_CTX, const struct vmod_priv *priv, const char *fn)
{
	if (priv->priv == NULL)
		VRT_fail(ctx, "ghost.%s(): vmod not loaded", fn);
	else
		VRT_fail(ctx, "ghost.%s(): called before ghost.init()", fn);
}

/* ghost_vcl_get() (ghost.h): inline. */
static GHOST_INLINE struct ghost_vcl *
vcl_get(VRT_CTX, struct vmod_priv *priv, const char *fn)
{
	return (ghost_vcl_get(ctx, priv, fn));
}

/* ---- per task ------------------------------------------------------- */

/* The task ends (or std.rollback() resets it): the memo entry it held. */
static void v_matchproto_(vmod_priv_fini_f)
task_fini(VRT_CTX, void *p)
{
	struct ghost_task *t;

	(void)ctx;
	CAST_OBJ_NOTNULL(t, p, GHOST_TASK_MAGIC);
	if (t->ans_ref != NULL)
		ghost_memo_unref(t->ans_ref);
	t->ans_ref = NULL;
}

static const struct vmod_priv_methods task_methods[1] = {{
	.magic = VMOD_PRIV_METHODS_MAGIC,
	.type = "vmod_ghost_task",
	.fini = task_fini
}};

/*
 * The task's state is a PRIV_TASK the VMOD looks up itself, under its own
 * id (task_id's address), not a PRIV_TASK argument: VCC creates an
 * argument's slot at the top of every subroutine that uses one
 * (VRT_priv_task(): a workspace reservation and a tree insert, ~335
 * instructions, in vcl_backend_fetch and again in vcl_backend_response
 * of every fetch), where finding it (VRT_priv_task_get()) costs a tree
 * lookup. Only route() and reload() create it. It is still Varnish's
 * task state: it ends with the task, and std.rollback() resets it. One id
 * serves every VCL, so the state records its VCL: a task that moves to
 * another (return (vcl(...))) starts afresh there.
 */
static const int task_id = 1;

/* This task's state in this VCL, NULL when route() did not create it. */
static GHOST_INLINE struct ghost_task *
task_find(VRT_CTX)
{
	struct vmod_priv *priv;
	struct ghost_task *t;

	priv = VRT_priv_task_get(ctx, &task_id);
	if (priv == NULL || priv->priv == NULL)
		return (NULL);
	CAST_OBJ_NOTNULL(t, priv->priv, GHOST_TASK_MAGIC);
	return (t->vcl == ctx->vcl ? t : NULL);
}

static GHOST_INLINE struct ghost_task *
task_create(VRT_CTX)
{
	struct vmod_priv *priv;
	struct ghost_task *t;

	priv = VRT_priv_task(ctx, &task_id);
	if (GHOST_UNLIKELY(priv == NULL)) {
		VRT_fail(ctx, "ghost: no task state (workspace overflow)");
		return (NULL);
	}
	/* (a task's first route() is the usual call: a second one is a
	 * retry's, or reload()'s after it) */
	if (GHOST_UNLIKELY(priv->priv != NULL)) {
		CAST_OBJ_NOTNULL(t, priv->priv, GHOST_TASK_MAGIC);
		if (GHOST_LIKELY(t->vcl == ctx->vcl))
			return (t);
		task_fini(ctx, t);	/* another VCL's: afresh */
	}
	/* the struct, and GHOST_TASK_SPARE bytes after it for the ban
	 * line of a stored object (ghost_cache_resp(), same workspace) */
	t = WS_Alloc(ctx->ws, sizeof *t + GHOST_TASK_SPARE);
	if (GHOST_UNLIKELY(t == NULL)) {
		VRT_fail(ctx, "ghost.route(): workspace overflow");
		return (NULL);
	}
	/* (route.c route_reset() sets a task's route fields back to these:
	 * a task's first route() relies on them, and writes none) */
	INIT_OBJ(t, GHOST_TASK_MAGIC);
	t->ans = &ghost_ans_none;	/* the answer: route() decides */
	t->vcl = ctx->vcl;
	t->reason = "";
	t->location = "";
	priv->priv = t;
	priv->methods = task_methods;
	return (t);
}

/* create: route() and reload(); the other functions only find it. */
static GHOST_INLINE struct ghost_task *
task_get(VRT_CTX, int create)
{
	return (create ? task_create(ctx) : task_find(ctx));
}

/* ---- functions ------------------------------------------------------ */

VCL_VOID v_matchproto_()
vmod_init(VRT_CTX, struct vmod_priv *priv, VCL_STRING sock,
    VCL_DURATION timeout, VCL_INT memo, VCL_INT live_page,
    VCL_INT max_backends, VCL_INT vsc_cluster, VCL_INT replace_min)
{
	struct ghost_vcl *gv;
	size_t l;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (!(ctx->method & VCL_MET_INIT)) {
		VRT_fail(ctx, "ghost.init(): only in vcl_init");
		return;
	}
	if (priv->priv == NULL) {
		VRT_fail(ctx, "ghost.init(): vmod not loaded");
		return;
	}
	CAST_OBJ_NOTNULL(gv, priv->priv, GHOST_VCL_MAGIC);
	if (sock == NULL || *sock == '\0') {
		VRT_fail(ctx, "ghost.init(): empty socket path");
		return;
	}
	l = strlen(sock);
	if (l >= 100) {
		VRT_fail(ctx, "ghost.init(): socket path too long: %s", sock);
		return;
	}
	if (timeout <= 0 || timeout > 60) {
		VRT_fail(ctx, "ghost.init(): timeout must be in (0, 60] s");
		return;
	}
	if (memo < 0) {
		VRT_fail(ctx, "ghost.init(): memo must be >= 0");
		return;
	}
	if (live_page < 1 || live_page > GHOST_LIVE_PAGE_MAX) {
		VRT_fail(ctx, "ghost.init(): live_page must be in [1, %u]",
		    GHOST_LIVE_PAGE_MAX);
		return;
	}
	if (max_backends < -1 || max_backends > 1000000) {
		VRT_fail(ctx, "ghost.init(): max_backends must be -1 (from "
		    "the descriptor limit) or in [0, 1000000]");
		return;
	}
	if (vsc_cluster < 0 || vsc_cluster > 65536) {
		VRT_fail(ctx, "ghost.init(): vsc_cluster must be in "
		    "[0, 65536]");
		return;
	}
	if (replace_min < 0 || replace_min > 1000000) {
		VRT_fail(ctx, "ghost.init(): replace_min must be in "
		    "[0, 1000000]");
		return;
	}
	free(gv->sock);
	free(gv->state_path);
	gv->sock = strdup(sock);
	gv->state_path = malloc(l + sizeof ".state");
	if (gv->sock == NULL || gv->state_path == NULL ||
	    ghost_memo_new(gv, (unsigned)memo)) {
		VRT_fail(ctx, "ghost.init(): out of memory");
		return;
	}
	memcpy(gv->state_path, sock, l);
	memcpy(gv->state_path + l, ".state", sizeof ".state");
	gv->timeout = timeout;
	gv->live_page = (unsigned)live_page;
	gv->vsc_per = (unsigned)vsc_cluster;
	gv->replace_min = (unsigned)replace_min;
	gv->st_next_try = 0;
	ghost_pool_flush(gv);
	gv->inited = 1;
	ghost_be_limits(ctx, gv, max_backends);
}

/*
 * Methods the builtin vcl_recv passes on to the cache (or to 405: PRI).
 * Out of line: recv_work() tests GET itself.
 */
static int __attribute__((__noinline__))
std_method(const char *m)
{
	switch (*m) {
	case 'G': return (!strcmp(m, "GET"));
	case 'H': return (!strcmp(m, "HEAD"));
	case 'P': return (!strcmp(m, "POST") || !strcmp(m, "PUT") ||
		    !strcmp(m, "PATCH") || !strcmp(m, "PRI"));
	case 'D': return (!strcmp(m, "DELETE"));
	case 'O': return (!strcmp(m, "OPTIONS"));
	case 'T': return (!strcmp(m, "TRACE"));
	default: return (0);
	}
}

/* Ours, except the hop mark (kept for ghost.cache() while clustered). */
static int
internal_not_hop(const txt *t)
{
	return (ghost_is_internal(t) && !ghost_cluster_is_hop(t));
}

/*
 * The rare half of ghost.recv()'s work, out of the common path's lines:
 * a request with X-Ghost-* lines or repeated header names takes the
 * three steps, whatever the cluster state.
 */
static void GHOST_COLD
recv_slow(struct ghost_vcl *gv, struct http *hp, int *xfp, int *ws,
    int rec_ae)
{
	if (gv != NULL && __atomic_load_n(&gv->cl_state,
	    __ATOMIC_RELAXED) != GHOST_CL_OFF)
		ghost_strip_if(hp, internal_not_hop);
	else
		ghost_strip_internal(hp);
	ghost_merge_lines(hp);
	ghost_recv_scan(hp, xfp, ws, rec_ae);
}

/*
 * The ':' that ends the name of header line [b, e), NULL without one:
 * memchr(b, ':', e - b). A line of 16 bytes or more (almost every
 * request line) has its first 16 bytes, where most names end, compared
 * with ':' at once (SSE2, in every x86-64: four instructions, ~20 bytes
 * of code); memchr() past them, or for a shorter line: no call for the
 * usual line, so ghost_recv_fast()'s loop keeps its registers.
 */
static GHOST_INLINE const char *
name_end(const char *b, const char *e)
{
#if defined(__SSE2__)
	unsigned m;

	if (GHOST_LIKELY(e - b >= 16)) {
		m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(
		    _mm_loadu_si128((const __m128i *)(const void *)b),
		    _mm_set1_epi8(':')));
		if (GHOST_LIKELY(m != 0))
			return (b + __builtin_ctz(m));
		return (memchr(b + 16, ':', (size_t)(e - b - 16)));
	}
#endif
	return (memchr(b, ':', (size_t)(e - b)));
}

/*
 * ghost.recv()'s three steps (ghost_strip_internal(), ghost_merge_lines(),
 * ghost_recv_scan()) in one pass over the request, for the common request
 * without X-Ghost-* lines or repeated header names: every request, cache
 * hits included, pays for it, and three passes cost ~500 instructions
 * more. Nothing is changed here; the answer says what recv_apply() has
 * to do: 0 (the usual request) nothing; RF_SLOW for any other request
 * (it takes the three steps); else the lines it found (RF_XFP, RF_WS,
 * the Accept-Encoding line's index above RF_AE_SHIFT). The loop is kept
 * to a few code lines (each one an instruction-cache miss per request):
 * what only some lines need is called (apply.c's ghost_recv_*()). Inline
 * in ghost.recv_action(): one function's entry and exit fewer on every
 * request.
 */
#define RF_SLOW		1	/* X-Ghost-* or a repeated name: recv_slow() */
#define RF_XFP		2	/* X-Forwarded-Proto: https */
#define RF_WS		4	/* Upgrade: websocket */
#define RF_AE_SHIFT	8	/* above: the Accept-Encoding line to record */

static GHOST_INLINE int
ghost_recv_fast(const struct http *hp, int rec_ae)
{
	uint64_t seen[4] = { 0, 0, 0, 0 };
	const txt *t, *hd, *te;
	const char *b, *p;
	size_t nl;
	unsigned k;
	int c, r = 0;

	/* hp: ctx->http_req, its magic varnishd's to check; nothing below
	 * moves the lines: a pointer over them, read once */
	hd = hp->hd;
	te = hd + hp->nhd;
	for (t = hd + HTTP_HDR_FIRST; t < te; t++) {
		b = t->b;
		if (GHOST_UNLIKELY(b == NULL))
			continue;
		p = name_end(b, t->e);
		if (GHOST_UNLIKELY(p == NULL || p == b)) {
			/* no name: only ghost_strip_internal() looks at it */
			if (ghost_is_internal(t))
				return (RF_SLOW);
			continue;
		}
		nl = (size_t)(p - b);
		/*
		 * the repeated-name filter of ghost_merge_lines(), with a
		 * cheaper key than its ghost_name_hash() (9 instructions, not
		 * 25: this runs for every line of every request): a function
		 * of the name only, any case, so a repeated name always
		 * finds its bit; another name with the same key costs one
		 * exact check (ghost_recv_name_before()). Over 47 common
		 * request header names it gives 6 such pairs, the other 8.
		 */
		k = (unsigned)(nl * 11 + ((unsigned char)b[nl - 1] | 0x20U) +
		    3 * ((unsigned char)b[0] | 0x20U)) & 255;
		if (GHOST_UNLIKELY((seen[k >> 6] >> (k & 63)) & 1) &&
		    ghost_recv_name_before(hp, (unsigned)(t - hd), b, nl))
			return (RF_SLOW);
		seen[k >> 6] |= 1ULL << (k & 63);
		/*
		 * ghost_is_internal() and scan_line() by the name's first
		 * character and length. Tests, not a switch: X- lines are on
		 * every request (varnishd adds X-Forwarded-For), Upgrade's
		 * length and a recorded Accept-Encoding are rare, and the
		 * compiler laid a switch's cases out of line (a code line
		 * each, for the A- and U- lines most requests have).
		 */
		c = b[0] | 0x20;
		if (c == 'x') {
			/* the 'g' of "x-g" first: it tells X-Forwarded-* */
			if (GHOST_UNLIKELY(nl >= X_GHOST_LEN &&
			    (b[2] | 0x20) == 'g' && ghost_is_internal(t)))
				return (RF_SLOW);
			if (GHOST_UNLIKELY(nl == 17) && ghost_recv_xfp_https(t))
				r |= RF_XFP;
		} else if (GHOST_UNLIKELY((nl == 7) & (c == 'u'))) {
			/* one test, no branch: Referer is 7 long too */
			if (ghost_recv_upgrade_ws(t))
				r |= RF_WS;
		} else if (GHOST_UNLIKELY(rec_ae) && nl == 15 && c == 'a' &&
		    ghost_recv_is_ae(t))
			r = (r & ((1 << RF_AE_SHIFT) - 1)) |
			    (int)((t - hd) << RF_AE_SHIFT);
	}
	return (r);
}

/* X-Forwarded-Proto: https, believed from a trusted front. */
static void __attribute__((__noinline__))
recv_https(VRT_CTX, struct http *hp, VCL_ACL trusted_front)
{
	if (trusted_front != NULL &&
	    VRT_acl_match(ctx, trusted_front, VRT_r_client_ip(ctx)))
		http_SetHeader(hp, "X-Ghost-Proto: https");
}

/*
 * ghost.recv()'s work after ghost_recv_fast()'s pass (r, its answer;
 * gv: NULL when not known): true for what the builtin VCL pipes. rec_ae:
 * record the client's Accept-Encoding (the caller passes 0 while no
 * decision reads it, ghost_fetch_plain(): ~370 instructions per request,
 * cache hits included). A request without any X-Ghost-* line and
 * without repeated header names takes that one pass: there is nothing to
 * strip or to keep.
 */
static GHOST_INLINE int
recv_apply(VRT_CTX, struct ghost_vcl *gv, VCL_ACL trusted_front, int rec_ae,
    int r)
{
	struct http *hp;
	const char *m;
	int xfp, ws;

	hp = ctx->http_req;
	if (GHOST_UNLIKELY(r & RF_SLOW))
		recv_slow(gv, hp, &xfp, &ws, rec_ae);
	else {
		xfp = r & RF_XFP;
		ws = r & RF_WS;
		if (GHOST_UNLIKELY(r >> RF_AE_SHIFT))
			ghost_recv_add_ae(hp, &hp->hd[r >> RF_AE_SHIFT]);
	}
	if (GHOST_UNLIKELY(xfp))
		recv_https(ctx, hp, trusted_front);
	m = hp->hd[HTTP_HDR_METHOD].b;
	AN(m);
	if (GHOST_LIKELY(m[0] == 'G' && m[1] == 'E' && m[2] == 'T' &&
	    m[3] == '\0'))
		return (ws);
	return (ws || !std_method(m));
}

static GHOST_INLINE int
recv_work(VRT_CTX, struct ghost_vcl *gv, VCL_ACL trusted_front, int rec_ae)
{
	return (recv_apply(ctx, gv, trusted_front, rec_ae,
	    ghost_recv_fast(ctx->http_req, rec_ae)));
}

VCL_BOOL v_matchproto_()
vmod_recv(VRT_CTX, struct vmod_priv *pv, VCL_ACL trusted_front)
{
	struct ghost_vcl *gv;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (ctx->method != VCL_MET_RECV || ctx->http_req == NULL) {
		VRT_fail(ctx, "ghost.recv(): only in vcl_recv");
		return (0);
	}
	gv = pv->priv;
	return (recv_work(ctx, gv, trusted_front,
	    gv == NULL || !ghost_fetch_plain(gv)));
}

/* A GET (inline: strcmp() is a call and its lines; one word, hdr.h). */
static GHOST_INLINE int
is_get(const char *m)
{
	return (ghost_ld4(m) == GHOST_W4('G', 'E', 'T', 0));
}

static void GHOST_COLD
misplaced(VRT_CTX, const char *msg)
{
	VRT_fail(ctx, "%s", msg);
}

/*
 * The client's inputs a backend-side decision needs and the fetch's
 * backend request does not carry (ghost_record()). A fresh hit starts no
 * fetch: nothing. The listener is read on the backend side (local.socket
 * is the session's there too). While no decision of the live generation
 * reads a header varnishd rewrites on a fetch (the state file's
 * fetch_gen), no header is recorded: a pass records nothing, a miss or a
 * stale hit only a method other than GET.
 */
VCL_BOOL v_matchproto_() GHOST_HOT
vmod_prepare(VRT_CTX, struct vmod_priv *pv)
{
	struct ghost_vcl *gv;
	const char *m;
	int plain;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (GHOST_UNLIKELY(!(ctx->method & (VCL_MET_MISS | VCL_MET_PASS |
	    VCL_MET_HIT)) || ctx->http_req == NULL)) {
		misplaced(ctx, "ghost.prepare(): only in vcl_miss, vcl_pass "
		    "or vcl_hit");
		return (0);
	}
	if (ctx->method == VCL_MET_HIT && VRT_r_obj_ttl(ctx) > 0.)
		return (0);
	/* ghost_invalidate's lookup of a URL to purge: no fetch follows */
	m = ctx->http_req->hd[HTTP_HDR_METHOD].b;
	if (ctx->method == VCL_MET_MISS && *m == 'P' && !strcmp(m, "PURGE"))
		return (1);
	gv = vcl_get(ctx, pv, "prepare");
	if (GHOST_UNLIKELY(gv == NULL))
		return (0);
	plain = ghost_fetch_plain_i(gv);
	/* what ghost_record() returns at once for (no call, no lines) */
	if (GHOST_LIKELY(plain && (ctx->method == VCL_MET_PASS || is_get(m))))
		return (0);
	ghost_record(ctx->http_req, ctx->req != NULL ? ctx->req->http0 : NULL,
	    !plain, ctx->method != VCL_MET_PASS);
	return (0);
}

/*
 * ghost.vcl's vcl_miss: is this a PURGE (in ghost.vcl, only
 * ghost_invalidate's lookup of a URL to purge gets there with it)? What
 * prepare() answers there, without its record: ghost.hash() has taken
 * it for the fetch that follows the lookup. One call, no VCL string
 * compare (VRT_r_req_method(), VRT_strcmp(), strcmp(): three functions'
 * code lines) and no state: every long-tail miss runs it. On a line of
 * its own: its straight line (~50 bytes) is one code line, not two.
 */
VCL_BOOL v_matchproto_() GHOST_HOT GHOST_LINE
vmod_purging(VRT_CTX)
{
	const char *m;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (GHOST_UNLIKELY(ctx->method != VCL_MET_MISS)) {
		misplaced(ctx, "ghost.purging(): only in vcl_miss");
		return (0);
	}
	/* vcl_miss always has req and its method (varnishd's cnt_miss) */
	m = ctx->http_req->hd[HTTP_HDR_METHOD].b;
	return (m[0] == 'P' && m[1] == 'U' && m[2] == 'R' && m[3] == 'G' &&
	    m[4] == 'E' && m[5] == '\0');
}

VCL_VOID v_matchproto_()
vmod_pipe(VRT_CTX)
{
	struct http *hp;
	const char *u;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (ctx->method != VCL_MET_PIPE || ctx->http_bereq == NULL ||
	    ctx->http_req == NULL) {
		VRT_fail(ctx, "ghost.pipe(): only in vcl_pipe");
		return;
	}
	hp = ctx->http_bereq;
	ghost_strip_internal(hp);
	http_Unset(hp, H_Connection);
	http_Unset(hp, H_Upgrade);
	http_SetHeader(hp, "Connection: close");
	if (http_GetHdr(ctx->http_req, H_Upgrade, &u) && *u != '\0') {
		http_PrintfHeader(hp, "Upgrade: %s", u);
		http_SetHeader(hp, "Connection: Upgrade");
	}
}

VCL_BACKEND v_matchproto_() GHOST_HOT
vmod_route(VRT_CTX, struct vmod_priv *pv)
{
	struct ghost_vcl *gv;
	struct ghost_task *t;
	VCL_BACKEND be;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (GHOST_UNLIKELY(!(ctx->method & (VCL_MET_RECV |
	    VCL_MET_BACKEND_FETCH)))) {
		VRT_fail(ctx, "ghost.route(): only in vcl_recv or "
		    "vcl_backend_fetch");
		return (NULL);
	}
	gv = vcl_get(ctx, pv, "route");
	if (GHOST_UNLIKELY(gv == NULL))
		return (NULL);
	t = task_get(ctx, 1);
	if (GHOST_UNLIKELY(t == NULL))
		return (NULL);
	be = ghost_route(ctx, gv, t);
	/*
	 * On the backend side a decision that is not a fetch ends the fetch
	 * here, as return (error(status, reason)) does: vcl_backend_error
	 * answers it (ghost.synth()). The VCL needs no `if` on status()
	 * (a VCL `if` and the call cost ~210 instructions per fetch).
	 */
	if (GHOST_UNLIKELY(t->status != 200) &&
	    ctx->method == VCL_MET_BACKEND_FETCH && *ctx->handling == 0) {
		VRT_synth(ctx, t->status, ghost_reason(ctx, t));
		if (*ctx->handling == 0)
			VRT_handling(ctx, VCL_RET_ERROR);
	}
	return (be);
}

VCL_INT v_matchproto_()
vmod_status(VRT_CTX)
{
	struct ghost_task *t;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	t = task_get(ctx, 0);
	return (t != NULL ? t->status : 0);
}

VCL_STRING v_matchproto_()
vmod_reason(VRT_CTX)
{
	struct ghost_task *t;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	t = task_get(ctx, 0);
	return (t != NULL && t->status != 0 ? ghost_reason(ctx, t) : "");
}

VCL_STRING v_matchproto_()
vmod_location(VRT_CTX)
{
	struct ghost_task *t;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	t = task_get(ctx, 0);
	return (t != NULL ? t->location : "");
}

/*
 * This task's state and the response a function works on: beresp in the
 * backend method be, resp in the client method cl (the VCL fails in any
 * other); NULL when there is none.
 */
static struct ghost_task *
resp_task(VRT_CTX, unsigned be, unsigned cl,
    const char *fail, struct http **hp)
{
	if (ctx->method == be)
		*hp = ctx->http_beresp;
	else if (ctx->method == cl)
		*hp = ctx->http_resp;
	else {
		VRT_fail(ctx, "%s", fail);
		return (NULL);
	}
	return (task_get(ctx, 0));
}

VCL_BOOL v_matchproto_()
vmod_synth(VRT_CTX)
{
	struct ghost_task *t;
	struct http *hp;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	t = resp_task(ctx, VCL_MET_BACKEND_ERROR, VCL_MET_SYNTH,
	    "ghost.synth(): only in vcl_backend_error or vcl_synth", &hp);
	if (t != NULL && ctx->method == VCL_MET_BACKEND_ERROR)
		ghost_route_result(ctx, t);	/* the fetch failed */
	if (t == NULL || t->status == 0 || t->status == 200)
		return (0);
	ghost_synth(ctx, hp, t);
	return (1);
}

VCL_BOOL v_matchproto_()
vmod_retry(VRT_CTX)
{
	struct ghost_task *t;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (!(ctx->method &
	    (VCL_MET_BACKEND_RESPONSE | VCL_MET_BACKEND_ERROR))) {
		VRT_fail(ctx, "ghost.retry(): only in vcl_backend_response or "
		    "vcl_backend_error");
		return (0);
	}
	t = task_get(ctx, 0);
	/* the attempt's result first: a retried one counts for outlier */
	if (t != NULL)
		ghost_route_result(ctx, t);
	return (ghost_retry(ctx, t));
}

/* ghost.response() in the wrong method: the VCL fails. */
static void GHOST_COLD
response_fail(VRT_CTX, VCL_BOOL retry)
{
	if (ctx->method == VCL_MET_DELIVER && retry)
		VRT_fail(ctx, "ghost.response(retry = true): only in "
		    "vcl_backend_response");
	else
		VRT_fail(ctx, "ghost.response(): only in vcl_backend_response "
		    "or vcl_deliver");
}

/*
 * ghost.response() of any answer but the plain one without response
 * operations (vmod_response() takes that itself): outlier detection,
 * retry, response filters, session persistence, then the stored
 * object's lines. Out of line, so that the usual stored object's code is
 * vmod_response()'s few lines, not these tests between them.
 */
static void __attribute__((__noinline__))
response_any(VRT_CTX, struct http *hp, struct ghost_task *t, VCL_BOOL retry)
{
	/*
	 * The usual route has no outlier detection, no timeouts or retry and
	 * no response filters: tested here, so that a stored object runs
	 * none of their code (each function a few more code lines to fetch
	 * per object).
	 */
	if (GHOST_UNLIKELY(t->ans->ol_n != 0) && hp == ctx->http_beresp)
		ghost_route_result(ctx, t);
	if (GHOST_UNLIKELY(retry && ghost_retry_on(t->ans)) &&
	    ghost_retry(ctx, t)) {
		if (*ctx->handling == 0)
			VRT_handling(ctx, VCL_RET_RETRY);
		return;
	}
	if (GHOST_UNLIKELY(t->status != 200))
		return;
	if (GHOST_UNLIKELY(ghost_resp_ops(t->ans)))
		ghost_apply_resp(ctx, hp, t->ans);
	if (GHOST_UNLIKELY(t->sess_on) && hp == ctx->http_beresp)
		ghost_sess_resp(ctx, hp, t->ans, t->sess_flat, t->sess_at,
		    t->sess_fresh, ctx->now);
	/* a pass stores nothing: no call (ghost_cache_resp() relies on it) */
	if (hp == ctx->http_beresp && !ctx->bo->uncacheable)
		ghost_cache_resp(ctx, t);
}

/*
 * With retry (ghost.vcl's vcl_backend_response: one call per fetch, not
 * ghost.retry() in an `if` and then this: ~270 instructions and one VMOD
 * function's code less per stored object), ghost.retry()'s decision comes
 * first, and a retry is returned (retry) here, as the VCL statement would
 * (VCC ends the sub after every statement that sets a handling). Every
 * fetch runs its straight line (three code lines: on a line of its own,
 * not four).
 */
VCL_VOID v_matchproto_() GHOST_HOT GHOST_LINE
vmod_response(VRT_CTX, VCL_BOOL retry)
{
	struct ghost_task *t;
	struct http *hp;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	/* the rare cases (a method, or a VCL, that is wrong) out of line */
	if (GHOST_LIKELY(ctx->method == VCL_MET_BACKEND_RESPONSE))
		hp = ctx->http_beresp;
	else if (ctx->method == VCL_MET_DELIVER && !retry)
		hp = ctx->http_resp;
	else {
		response_fail(ctx, retry);
		return;
	}
	t = task_find(ctx);
	if (GHOST_UNLIKELY(t == NULL || !t->have_ans || hp == NULL))
		return;		/* not routed here: nothing to judge or apply */
	/*
	 * A plain answer (GHOST_OPS_PLAIN: no outlier detection, retry or
	 * session; route() gave status 200) without response operations: of
	 * the tests below only the last can be true, one flag test instead.
	 * The task's copy of the answer's flags (ans_ops, 0 when route()
	 * set none: the tests below): the answer's own line is cold again
	 * after the upstream I/O, the task's is not.
	 */
	if (GHOST_LIKELY((t->ans_ops & (GHOST_OPS_PLAIN | GHOST_OPS_RESP)) ==
	    GHOST_OPS_PLAIN && t->status == 200)) {
		/* a pass stores nothing (ghost_cache_resp() relies on it) */
		if (hp == ctx->http_beresp && !ctx->bo->uncacheable)
			ghost_cache_resp(ctx, t);
		return;
	}
	response_any(ctx, hp, t, retry);
}

/* ---- caching and invalidation ----------------------------------------- */

/* ghost.cache()'s decision, the origin-only table without any state. */
static int
cache_mode(VRT_CTX, struct ghost_vcl *gv)
{
	struct ghost_st st = { 0, 0, 0 };
	struct ghost_cdec *d;

	/* decided before in this vcl_recv: the same answer */
	d = ghost_cdec_get(ctx, gv, 0);
	if (d == NULL && ghost_cache_origin_only(ctx, gv, &st))
		return (GHOST_CM_ORIGIN);
	if (d == NULL)
		d = ghost_cdec_get(ctx, gv, 1);
	return (ghost_cache_decide(ctx, gv, d, st.known ? &st : NULL));
}

VCL_INT
vmod_cache(VRT_CTX, struct vmod_priv *pv)
{
	struct ghost_vcl *gv;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (ctx->method != VCL_MET_RECV || ctx->http_req == NULL) {
		VRT_fail(ctx, "ghost.cache(): only in vcl_recv");
		return (GHOST_CM_PASS);
	}
	gv = vcl_get(ctx, pv, "cache");
	if (gv == NULL)
		return (GHOST_CM_PASS);
	return (cache_mode(ctx, gv));
}

/* vmod_deliver(): cache.c (its lines with the strip's) */

VCL_BOOL
vmod_owner_failed(VRT_CTX, struct vmod_priv *pv)
{
	struct ghost_vcl *gv;
	struct ghost_task *t;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (ctx->method != VCL_MET_BACKEND_ERROR) {
		VRT_fail(ctx, "ghost.owner_failed(): only in vcl_backend_error");
		return (0);
	}
	gv = vcl_get(ctx, pv, "owner_failed");
	t = task_get(ctx, 0);
	if (gv == NULL || t == NULL || !t->fwd || t->fwd_failed)
		return (0);
	t->fwd_failed = 1;
	ghost_cluster_failed(ctx, gv, t->peer);
	return (1);
}

#define RECV_ORIGIN	0	/* Varnish's own rules */
#define RECV_PASS	1
#define RECV_LOOKUP	2
#define RECV_PIPE	3	/* routed on the client side */
#define RECV_INVAL	4	/* PURGE or BAN */
#define RECV_RELOAD	5	/* the reload URL */
#define RECV_HEALTHZ	6	/* members' probe URL: synth 200 */
#if RECV_ORIGIN != GHOST_CM_ORIGIN || RECV_PASS != GHOST_CM_PASS || \
    RECV_LOOKUP != GHOST_CM_LOOKUP
#error "recv_action() returns the cache modes as they are"
#endif

/* recv_action() outside vcl_recv. */
static VCL_INT GHOST_COLD
recv_misplaced(VRT_CTX)
{
	VRT_fail(ctx, "ghost.recv_action(): only in vcl_recv");
	return (RECV_PASS);
}

/*
 * The state file says: any request's cache decision can only be origin.
 * ghost_cache_origin_only() unless the heartbeat is fresh (then the same
 * answer from one inline read). *plain: ghost_fetch_plain().
 */
static GHOST_INLINE int
recv_state(VRT_CTX, struct ghost_vcl *gv, struct ghost_st *st, int *plain)
{
	struct ghost_st_peek sp;

	if (GHOST_UNLIKELY(!ghost_state_peek(gv, ctx->now, &sp))) {
		*plain = ghost_fetch_plain(gv);
		return (ghost_cache_origin_only(ctx, gv, st));
	}
	*plain = ghost_st_plain(gv, &sp);
	st->known = 1;
	st->fresh = 1;
	st->gen = sp.gen;
	return (sp.og != 0 && sp.og == sp.gen);
}

/* PURGE, BAN, the reload URL or /.varnish-ghost/healthz, else -1. */
static int __attribute__((__noinline__))
recv_special(const char *m, const char *u)
{
	if ((*m == 'P' && !strcmp(m, "PURGE")) ||
	    (*m == 'B' && !strcmp(m, "BAN")))
		return (RECV_INVAL);
	if (u[0] == '/' && u[1] == '.' &&
	    !strcmp(u, "/.varnish-ghost/reload"))
		return (RECV_RELOAD);
	if (u[0] == '/' && u[1] == '.' &&
	    !strcmp(u, "/.varnish-ghost/healthz"))
		return (RECV_HEALTHZ);
	return (-1);
}

/*
 * ghost.recv_action() of any request but the usual one (recv_action()
 * below): a PURGE, a BAN, a URL of ours, another method, a table with a
 * cache_policy, a stale heartbeat. Out of line.
 */
static VCL_INT __attribute__((__noinline__))
recv_action_gen(VRT_CTX, struct ghost_vcl *gv, VCL_ACL trusted_front,
    VCL_BOOL act, const char *m, const char *u)
{
	struct ghost_st st = { 0, 0, 0 };
	struct ghost_cdec *d;
	int a, origin, plain;

	AN(m);
	AN(u);
	a = -1;
	/*
	 * u[u[0] == '/']: u[1] after a '/', else u[0] (the string may be
	 * ""): a URL starting with '.' goes to recv_special() too, which
	 * answers -1 for it
	 */
	if (*m == 'P' || *m == 'B' || u[u[0] == '/'] == '.')
		a = recv_special(m, u);
	if (a < 0) {
		origin = recv_state(ctx, gv, &st, &plain);
		if (recv_work(ctx, gv, trusted_front, !plain))
			a = RECV_PIPE;
		else if (origin)
			return (RECV_ORIGIN);	/* nothing to decide, no state */
	}
	d = ghost_cdec_get(ctx, gv, 1);
	if (a < 0)
		a = ghost_cache_decide(ctx, gv, d, &st);	/* GHOST_CM_* */
	d->action = a;
	/*
	 * act: return (pass) / return (hash) as the VCL statement would
	 * (VCC ends the sub after every statement that sets a handling),
	 * unless the request already failed (VRT_handling() asserts none).
	 */
	if (act && (a == RECV_PASS || a == RECV_LOOKUP) &&
	    *ctx->handling == 0)
		VRT_handling(ctx, a == RECV_PASS ? VCL_RET_PASS :
		    VCL_RET_HASH);
	return (a);
}

/*
 * The usual request after a pass that found something to do (r:
 * ghost_recv_fast()'s answer, not 0): origin, or the pipe of an upgrade.
 * Out of line.
 */
static VCL_INT __attribute__((__noinline__))
recv_action_found(VRT_CTX, struct ghost_vcl *gv, VCL_ACL trusted_front,
    int rec_ae, int r)
{
	struct ghost_cdec *d;

	if (!recv_apply(ctx, gv, trusted_front, rec_ae, r))
		return (RECV_ORIGIN);
	d = ghost_cdec_get(ctx, gv, 1);
	d->action = RECV_PIPE;
	return (RECV_PIPE);
}

/*
 * The usual request's pass over its lines: origin when it finds nothing
 * to do. A function of its own, so that vmod_recv_action() before it
 * saves no registers: only this loop needs them.
 */
static VCL_INT __attribute__((__noinline__)) GHOST_HOT GHOST_LINE
recv_origin(VRT_CTX, struct ghost_vcl *gv, VCL_ACL trusted_front, int rec_ae)
{
	int r;

	r = ghost_recv_fast(ctx->http_req, rec_ae);
	if (GHOST_LIKELY(r == 0))
		return (RECV_ORIGIN);	/* nothing to decide, no state */
	return (recv_action_found(ctx, gv, trusted_front, rec_ae, r));
}

/*
 * Every request comes here (cache hits included). The usual one, a GET
 * of a URL not ours while the table can only decide origin (no
 * cache_policy) and the heartbeat is fresh, with no line to strip, join
 * or act on, takes one short straight line of code with its pass over
 * the lines inline, and the answer is origin; anything else goes to
 * recv_action_gen() or recv_action_found(), out of line
 * (docs/benchmarks.md, seventh and tenth sessions: every code line a
 * request touches is an instruction-cache miss).
 */
VCL_INT v_matchproto_() GHOST_HOT GHOST_LINE
vmod_recv_action(VRT_CTX, struct vmod_priv *pv, VCL_ACL trusted_front,
    VCL_BOOL act)
{
	struct ghost_st_peek sp;
	struct ghost_vcl *gv;
	const char *m, *u;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (GHOST_UNLIKELY(ctx->method != VCL_MET_RECV ||
	    ctx->http_req == NULL))
		return (recv_misplaced(ctx));
	gv = vcl_get(ctx, pv, "recv_action");
	if (GHOST_UNLIKELY(gv == NULL))
		return (RECV_PASS);
	/* a request line always has both (varnishd's parsers; VCL cannot
	 * unset them): no AN() on this path, the usual request's bytes */
	m = ctx->http_req->hd[HTTP_HDR_METHOD].b;
	u = ctx->http_req->hd[HTTP_HDR_URL].b;
	/* u[u[0] == '/']: see recv_action_gen() */
	if (GHOST_UNLIKELY(!is_get(m) || u[u[0] == '/'] == '.' ||
	    !ghost_state_peek(gv, ctx->now, &sp) || sp.og == 0 ||
	    sp.og != sp.gen))
		return (recv_action_gen(ctx, gv, trusted_front, act, m, u));
	/*
	 * rec_ae: !ghost_st_plain(gv, &sp), where gen (== og) is not 0, so
	 * fetch_gen == gen says it is not 0 either
	 */
	return (recv_origin(ctx, gv, trusted_front, (sp.fg != sp.gen) |
	    (__atomic_load_n(&gv->seen_gen, __ATOMIC_RELAXED) > sp.gen)));
}

VCL_INT v_matchproto_()
vmod_last_action(VRT_CTX, struct vmod_priv *pv)
{
	struct ghost_vcl *gv;
	struct ghost_cdec *d;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (ctx->method != VCL_MET_RECV || ctx->req == NULL) {
		VRT_fail(ctx, "ghost.last_action(): only in vcl_recv");
		return (RECV_PASS);
	}
	gv = vcl_get(ctx, pv, "last_action");
	if (gv == NULL)
		return (RECV_PASS);
	d = ghost_cdec_get(ctx, gv, 0);
	if (d == NULL || d->action < 0)
		return (RECV_ORIGIN);
	return (d->action);
}

static int
inval_ok(VRT_CTX, const char *fn)
{
	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (ctx->method != VCL_MET_RECV || ctx->http_req == NULL) {
		VRT_fail(ctx, "ghost.%s(): only in vcl_recv", fn);
		return (0);
	}
	return (1);
}

VCL_STRING
vmod_invalidation_error(VRT_CTX)
{
	if (!inval_ok(ctx, "invalidation_error"))
		return ("");
	return (ghost_inval_error(ctx));
}

VCL_STRING
vmod_ban(VRT_CTX)
{
	if (!inval_ok(ctx, "ban"))
		return ("");
	return (ghost_inval_ban(ctx));
}

VCL_STRING
vmod_purge_keys(VRT_CTX, struct vmod_priv *pv)
{
	struct ghost_vcl *gv;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (!(ctx->method & (VCL_MET_RECV | VCL_MET_MISS)) ||
	    ctx->http_req == NULL) {
		VRT_fail(ctx, "ghost.purge_keys(): only in vcl_recv or "
		    "vcl_miss");
		return ("");
	}
	/*
	 * A ghost.vcl from before plain objects asks for a URL's key in
	 * vcl_recv and purges nothing else: most objects would stay. Fail
	 * loudly (503 to the purger) rather than answer "Not in cache".
	 */
	if (ctx->method == VCL_MET_RECV &&
	    !http_GetHdr(ctx->http_req, "\005xkey:", NULL)) {
		VRT_fail(ctx, "ghost.purge_keys(): a PURGE of a URL is purged "
		    "in vcl_miss now (ghost.vcl's ghost_invalidate and "
		    "ghost_purge_url); update this VCL");
		return ("");
	}
	gv = vcl_get(ctx, pv, "purge_keys");
	if (gv == NULL)
		return ("");
	return (ghost_inval_keys(ctx, gv));
}

VCL_INT
vmod_purge_plain(VRT_CTX)
{

	return (ghost_purge_plain(ctx));
}

VCL_INT
vmod_purged(VRT_CTX, VCL_INT tagged)
{
	const char *v;
	char *e;
	long n = 0;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (ctx->method != VCL_MET_MISS || ctx->http_req == NULL) {
		VRT_fail(ctx, "ghost.purged(): only in vcl_miss");
		return (0);
	}
	if (http_GetHdr(ctx->http_req, "\016X-Ghost-Inval:", &v)) {
		n = strtol(v, &e, 10);
		if (*e != '\0' || n < 0)
			n = 0;
	}
	return (n + (tagged > 0 ? tagged : 0));
}

/* ---- reload --------------------------------------------------------- */

/* {"t":"reload","wait":ms}: ghostd answers within ms, "pending" if the
 * reload still runs then (it goes on), so a slow reload is not reported
 * as failed. */
static void v_matchproto_(ghost_enc_f)
enc_reload(struct mp_w *w, void *arg)
{
	const double *wait = arg;

	mp_w_map(w, 2);
	mp_w_cstr(w, "t");
	mp_w_cstr(w, "reload");
	mp_w_cstr(w, "wait");
	mp_w_uint(w, (uint64_t)(*wait * 1e3));
}

static void
set_error(struct ghost_vcl *gv, const char *msg, size_t l)
{
	Lck_Lock(&gv->err_mtx);
	if (l >= sizeof gv->last_error)
		l = sizeof gv->last_error - 1;
	memcpy(gv->last_error, msg, l);
	gv->last_error[l] = '\0';
	Lck_Unlock(&gv->err_mtx);
}

/* The fields of a reload answer. */
struct reload_ans {
	const char	*t;
	size_t		tl;
	int		ok;
	int		pending;
	const char	*err;		/* "err", else "msg" */
	size_t		el;
	int		have_err;
};

static int v_matchproto_(mp_field_f)
reload_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct reload_ans *a = priv;

	if (mp_streq(k, kl, "t"))
		mp_r_str(r, &a->t, &a->tl);
	else if (mp_streq(k, kl, "ok"))
		a->ok = mp_r_bool(r);
	else if (mp_streq(k, kl, "pending"))
		a->pending = mp_r_bool(r);
	else if (mp_streq(k, kl, "err")) {
		mp_r_str(r, &a->err, &a->el);
		a->have_err = 1;
	} else if (mp_streq(k, kl, "msg") && !a->have_err && a->err == NULL)
		mp_r_str(r, &a->err, &a->el);
	else
		return (0);
	return (1);
}

VCL_BOOL v_matchproto_()
vmod_reload(VRT_CTX, struct vmod_priv *pv)
{
	struct ghost_vcl *gv;
	struct ghost_task *t;
	struct ghost_rt rt;
	struct mp_r r;
	struct reload_ans a;
	char buf[GHOST_ERRLEN];
	double wait;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	gv = vcl_get(ctx, pv, "reload");
	t = task_get(ctx, 1);
	if (gv == NULL || t == NULL)
		return (0);
	t->reload_pending = 0;
	t->reload_msg = NULL;
	memset(&rt, 0, sizeof rt);
	rt.enc = enc_reload;
	rt.arg = &wait;
	rt.enc_max = 48;
	rt.timeout = gv->timeout > GHOST_RELOAD_TMO ? gv->timeout :
	    GHOST_RELOAD_TMO;
	/* ghostd answers (pending, at worst) a second before we give up */
	wait = rt.timeout - GHOST_RELOAD_MARGIN;
	rt.fresh = 1;
	if (ghost_roundtrip(gv, ctx->ws, &rt)) {
		ghost_stats_error(rt.why);
		GHOST_STAT(reload_failed);
		snprintf(buf, sizeof buf, "ghostd unreachable: %s", rt.why);
		set_error(gv, buf, strlen(buf));
		t->reload_msg = WS_Copy(ctx->ws, buf, -1);
		VSLb(ctx->vsl, SLT_Error, "ghost: reload: %s", buf);
		return (0);
	}
	r.p = rt.ans;
	r.end = rt.ans + rt.ans_len;
	r.err = 0;
	memset(&a, 0, sizeof a);
	mp_r_fields(&r, reload_field, &a);
	if (r.err || a.t == NULL || !mp_streq(a.t, a.tl, "reload")) {
		GHOST_STAT(err_answer);
		GHOST_STAT(reload_failed);
		snprintf(buf, sizeof buf, "ghostd: bad reload answer%s%.*s",
		    a.err != NULL ? ": " : "", (int)a.el,
		    a.err != NULL ? a.err : "");
		set_error(gv, buf, strlen(buf));
		t->reload_msg = WS_Copy(ctx->ws, buf, -1);
		VSLb(ctx->vsl, SLT_Error, "ghost: reload: %s", buf);
		return (0);
	}
	if (a.err != NULL)
		t->reload_msg = WS_Printf(ctx->ws, "%.*s", (int)a.el, a.err);
	if (!a.ok) {
		if (a.err == NULL) {
			a.err = "reload failed";
			a.el = strlen(a.err);
			t->reload_msg = a.err;
		}
		set_error(gv, a.err, a.el);
		GHOST_STAT(reload_failed);
		VSLb(ctx->vsl, SLT_Error, "ghost: reload failed: %.*s",
		    (int)a.el, a.err);
		return (0);
	}
	set_error(gv, "", 0);
	if (a.pending) {
		/* not a failure: ghostd goes on; status/log say how it ends */
		t->reload_pending = 1;
		GHOST_STAT(reload_pending);
	} else
		GHOST_STAT(reload);
	VSLb(ctx->vsl, SLT_VCL_Log, "ghost: reload: %.*s", (int)a.el,
	    a.err != NULL ? a.err : "ok");
	return (1);
}

VCL_BOOL v_matchproto_()
vmod_reload_pending(VRT_CTX)
{
	struct ghost_task *t;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	t = task_get(ctx, 0);
	return (t != NULL && t->reload_pending);
}

VCL_STRING v_matchproto_()
vmod_reload_message(VRT_CTX)
{
	struct ghost_task *t;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	t = task_get(ctx, 0);
	return (t != NULL && t->reload_msg != NULL ? t->reload_msg : "");
}

VCL_STRING v_matchproto_()
vmod_last_error(VRT_CTX, struct vmod_priv *pv)
{
	struct ghost_vcl *gv;
	const char *s;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	gv = vcl_get(ctx, pv, "last_error");
	if (gv == NULL)
		return ("");
	Lck_Lock(&gv->err_mtx);
	s = WS_Copy(ctx->ws, gv->last_error, -1);
	Lck_Unlock(&gv->err_mtx);
	return (s != NULL ? s : "");
}

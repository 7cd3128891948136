/*
 * Layer 2: self-sharding across Varnish nodes (docs/operations.md
 * "Clustering"), applied mechanically: ghostd sends the members, the
 * ring (route.Cluster builds it), the hop mark's token and the limits;
 * this file keeps the newest such cluster per VCL, looks up the owner of
 * a key on the ring, checks a hop mark and marks an owner that failed.
 *
 * The cluster is fetched ({"t":"cluster"}) by the first request whose
 * answer names a version (`sh`) other than the one held, one request at
 * a time, never waited for by the others (they use what is held, or
 * serve locally while there is nothing). It is replaced whole under
 * gv->cl_lock's write side; readers hold the read side while they use
 * it (an owner lookup, a hop check: no I/O, no other lock).
 */

#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "vrt_obj.h"
#include "vsa.h"
#include "vtim.h"

#include "msgpack.h"
#include "ghost.h"
#include "answer.h"
#include "hdr.h"
#include "conn.h"
#include "ring.h"
#include "stats.h"
#include "cluster.h"

#define CL_MAX_MEMBERS	256	/* route.MaxMembers */
#define CL_RETRY	1.0	/* s between failed fetches of the cluster */
#define CL_TOK_MAX	128

struct cl_member {
	char			addr[48];
	unsigned		port;
	int			fam;		/* AF_INET, AF_INET6 */
	unsigned char		ip[16];
	uint64_t		down_until;	/* atomic: Unix ms */
};

struct ghost_cluster {
	unsigned		magic;
#define GHOST_CLUSTER_MAGIC	0x5ba4d0c3
	uint64_t		ver;
	int			self;		/* -1: not a member */
	unsigned		n;
	struct cl_member	*m;
	uint8_t			*ring;		/* ring.Encode(), checked */
	size_t			ring_len;
	char			tok[CL_TOK_MAX];
	size_t			tokl;
	double			sttl, down, ctmo;
	struct ghost_hp		hp;		/* members' probe; id 0: none */
	char			hp_u[1025];	/* hp.u */
};

void
ghost_cluster_init(struct ghost_vcl *gv)
{
	PTOK(pthread_rwlock_init(&gv->cl_lock, NULL));
	PTOK(pthread_mutex_init(&gv->cl_mtx, NULL));
}

static void
cl_free(struct ghost_cluster *cl)
{
	if (cl == NULL)
		return;
	CHECK_OBJ(cl, GHOST_CLUSTER_MAGIC);
	free(cl->m);
	free(cl->ring);
	FREE_OBJ(cl);
}

void
ghost_cluster_fini(struct ghost_vcl *gv)
{
	cl_free(gv->cl);
	gv->cl = NULL;
	PTOK(pthread_rwlock_destroy(&gv->cl_lock));
	PTOK(pthread_mutex_destroy(&gv->cl_mtx));
}

/* ---- the cluster answer ----------------------------------------------- */

struct cl_ans {
	const char		*t;
	size_t			tl;
	uint64_t		ver;
	int64_t			self, sttl, down, ctmo;
	const uint8_t		*m, *m_end, *r;
	size_t			rl;
	const char		*tok;
	size_t			tokl;
	struct ghost_hp		hp;
};

static int v_matchproto_(mp_field_f)
cl_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct cl_ans *a = priv;

	if (mp_streq(k, kl, "t"))
		mp_r_str(r, &a->t, &a->tl);
	else if (mp_streq(k, kl, "sh"))
		a->ver = mp_r_uint(r);
	else if (mp_streq(k, kl, "self"))
		a->self = mp_r_int(r);
	else if (mp_streq(k, kl, "sttl"))
		a->sttl = mp_r_int(r);
	else if (mp_streq(k, kl, "down"))
		a->down = mp_r_int(r);
	else if (mp_streq(k, kl, "ctmo"))
		a->ctmo = mp_r_int(r);
	else if (mp_streq(k, kl, "tok"))
		mp_r_str(r, &a->tok, &a->tokl);
	else if (mp_streq(k, kl, "m")) {
		a->m = r->p;
		mp_skip(r);
		a->m_end = r->p;
	} else if (mp_streq(k, kl, "r"))
		mp_r_bin(r, &a->r, &a->rl);
	else if (mp_streq(k, kl, "hp"))
		mp_r_fields(r, ghost_probe_field, &a->hp);
	else
		return (0);
	return (1);
}

/* Decode a cluster answer into a new cluster; NULL with why. */
static struct ghost_cluster *
cl_decode(const uint8_t *p, size_t l, char *why, size_t wl)
{
	struct mp_r r = { p, p + l, 0 };
	struct ghost_cluster *cl;
	struct cl_member *mb;
	struct cl_ans a;
	const char *s;
	size_t sl;
	uint32_t i, n;
	int64_t v;

	memset(&a, 0, sizeof a);
	a.self = -1;
	mp_r_fields(&r, cl_field, &a);
	if (r.err || a.t == NULL || !mp_streq(a.t, a.tl, "cluster")) {
		snprintf(why, wl, "bad cluster answer");
		return (NULL);
	}
	ALLOC_OBJ(cl, GHOST_CLUSTER_MAGIC);
	if (cl == NULL) {
		snprintf(why, wl, "out of memory");
		return (NULL);
	}
	cl->self = -1;
	if (a.ver == 0 || a.m == NULL)
		return (cl);		/* not clustered */
	cl->ver = a.ver;
	r.p = a.m;
	r.end = a.m_end;
	n = mp_r_arr(&r);
	if (n > CL_MAX_MEMBERS || a.tok == NULL || a.tokl == 0 ||
	    a.tokl >= CL_TOK_MAX || a.self < -1 || a.self >= (int64_t)n ||
	    a.sttl < 0 || a.down < 1 || a.ctmo < 1) {
		snprintf(why, wl, "bad cluster answer (limits)");
		cl_free(cl);
		return (NULL);
	}
	cl->m = calloc(n + 1, sizeof *cl->m);
	if (cl->m == NULL) {
		snprintf(why, wl, "out of memory");
		cl_free(cl);
		return (NULL);
	}
	for (i = 0; i < n && !r.err; i++) {
		mb = &cl->m[i];
		if (mp_r_arr(&r) != 2)
			r.err = 1;
		mp_r_str(&r, &s, &sl);
		v = mp_r_int(&r);
		if (r.err || sl == 0 || sl >= sizeof mb->addr || v < 1 ||
		    v > 65535) {
			r.err = 1;
			break;
		}
		memcpy(mb->addr, s, sl);
		mb->port = (unsigned)v;
		if (inet_pton(AF_INET, mb->addr, mb->ip) == 1)
			mb->fam = AF_INET;
		else if (inet_pton(AF_INET6, mb->addr, mb->ip) == 1)
			mb->fam = AF_INET6;
		else
			r.err = 1;
	}
	cl->n = n;
	if (!r.err && (a.r == NULL ||
	    ghost_ring_check(a.r, a.rl, n) != 0 ||
	    (cl->ring = malloc(a.rl)) == NULL))
		r.err = 1;
	if (!r.err) {
		memcpy(cl->ring, a.r, a.rl);
		cl->ring_len = a.rl;
	}
	if (r.err) {
		snprintf(why, wl, "bad cluster answer (members or ring)");
		cl_free(cl);
		return (NULL);
	}
	cl->self = (int)a.self;
	memcpy(cl->tok, a.tok, a.tokl);
	cl->tokl = a.tokl;
	cl->sttl = (double)a.sttl;
	cl->down = (double)a.down;
	cl->ctmo = (double)a.ctmo * 1e-3;
	if (a.hp.id != 0) {
		/* Varnish's probe bounds (route.ClusterProbe checks more) */
		if (a.hp.u == NULL || a.hp.u_len == 0 ||
		    a.hp.u_len >= sizeof cl->hp_u || a.hp.h != NULL ||
		    a.hp.iv_ms == 0 || a.hp.to_ms == 0 || a.hp.w < 1 ||
		    a.hp.w > 64 || a.hp.th < 1 || a.hp.th > a.hp.w ||
		    a.hp.in > a.hp.w) {
			snprintf(why, wl, "bad cluster answer (probe)");
			cl_free(cl);
			return (NULL);
		}
		cl->hp = a.hp;
		memcpy(cl->hp_u, a.hp.u, a.hp.u_len);
		cl->hp.u = cl->hp_u;
	}
	return (cl);
}

static void v_matchproto_(ghost_enc_f)
enc_cluster(struct mp_w *w, void *arg)
{
	(void)arg;
	mp_w_map(w, 1);
	mp_w_cstr(w, "t");
	mp_w_cstr(w, "cluster");
}

/*
 * Fetch the cluster and make it the held one; under gv->cl_mtx. The
 * answer goes to a buffer of its own: a ring of many members is more
 * than a request's workspace.
 */
static void
cl_fetch(VRT_CTX, struct ghost_vcl *gv, double now)
{
	struct ghost_cluster *cl = NULL, *old;
	struct ghost_rt rt;
	struct ws ws[1];
	void *mem;
	char why[256];

	mem = malloc(GHOST_MAX_FRAME + 4096);
	if (mem == NULL)
		snprintf(why, sizeof why, "out of memory");
	else {
		WS_Init(ws, "gcl", mem, GHOST_MAX_FRAME + 4096);
		memset(&rt, 0, sizeof rt);
		rt.enc = enc_cluster;
		rt.enc_max = 32;
		rt.timeout = gv->timeout;
		if (ghost_roundtrip(gv, ws, &rt)) {
			ghost_stats_error(rt.why);
			snprintf(why, sizeof why, "%s", rt.why);
		} else
			cl = cl_decode(rt.ans, rt.ans_len, why, sizeof why);
	}
	free(mem);
	if (cl == NULL) {
		gv->cl_next_try = now + CL_RETRY;
		VSLb(ctx->vsl, SLT_Error, "ghost: cluster: %s (serving locally "
		    "until it can be fetched)", why);
		return;
	}
	PTOK(pthread_rwlock_wrlock(&gv->cl_lock));
	old = gv->cl;
	gv->cl = cl;
	__atomic_store_n(&gv->cl_ver, cl->ver, __ATOMIC_RELEASE);
	__atomic_store_n(&gv->cl_state, cl->n > 0 ? GHOST_CL_ON : GHOST_CL_OFF,
	    __ATOMIC_RELEASE);
	PTOK(pthread_rwlock_unlock(&gv->cl_lock));
	ghost_vsc->shard_members = cl->n;
	if (cl->n > 0)
		VSLb(ctx->vsl, SLT_VCL_Log, "ghost: cluster: %u members, self %d, "
		    "version %ju", cl->n, cl->self, (uintmax_t)cl->ver);
	cl_free(old);
}

/*
 * A request's answer names cluster version ver: fetch the cluster when
 * the held one is another, one request at a time (the others go on
 * with what is held), at most once per CL_RETRY after a failure.
 */
static void
cl_sync(VRT_CTX, struct ghost_vcl *gv, uint64_t ver)
{
	double now;

	if (__atomic_load_n(&gv->cl_ver, __ATOMIC_ACQUIRE) == ver)
		return;
	if (pthread_mutex_trylock(&gv->cl_mtx))
		return;
	now = VTIM_real();
	if (gv->cl_ver != ver && now >= gv->cl_next_try)
		cl_fetch(ctx, gv, now);
	PTOK(pthread_mutex_unlock(&gv->cl_mtx));
}

/* ---- the client side -------------------------------------------------- */

/* Is line t the hop mark? (ghost.recv() keeps it while clustered.) */
int
ghost_cluster_is_hop(const txt *t)
{
	return (ghost_line_val(t, "x-ghost-hop:", 12) != NULL);
}

/* Does the connection come from a member? */
static int
cl_from_member(VRT_CTX, const struct ghost_cluster *cl)
{
	const unsigned char *ip;
	unsigned i;
	int fam;

	fam = VSA_GetPtr(VRT_r_client_ip(ctx), &ip);
	if (fam < 0)
		return (0);
	for (i = 0; i < cl->n; i++)
		if (cl->m[i].fam == fam && !memcmp(cl->m[i].ip, ip,
		    fam == AF_INET ? 4 : 16))
			return (1);
	return (0);
}

/*
 * Constant-time comparison of the hop mark with the token. The mark is
 * "<token>", or "<token> https" when the client's request came over TLS
 * (a trusted front said so on the forwarding node): *https.
 */
static int
cl_tok_ok(const struct ghost_cluster *cl, const char *v, int *https)
{
	size_t i, l = strcspn(v, " ");
	unsigned char d = 0;

	*https = !strcmp(v + l, " https");
	if (v[l] != '\0' && !*https)
		return (0);

	if (l != cl->tokl)
		return (0);
	for (i = 0; i < l; i++)
		d |= (unsigned char)(v[i] ^ cl->tok[i]);
	return (d == 0);
}

struct up_arg {
	const struct ghost_cluster	*cl;
	uint64_t			now_ms;
	VRT_CTX;
	struct ghost_vcl		*gv;
	ghost_cluster_sick_f		*sick;
};

/*
 * ghost_ring_ok_f: a member not marked down (a forwarded fetch failed)
 * whose backend's probe does not say sick. This node is always up.
 */
static int
cl_up(void *priv, uint32_t m)
{
	const struct up_arg *u = priv;
	const struct cl_member *mb = &u->cl->m[m];

	if (__atomic_load_n(&mb->down_until, __ATOMIC_RELAXED) > u->now_ms)
		return (0);
	if ((int)m == u->cl->self || u->cl->hp.id == 0 || u->sick == NULL)
		return (1);
	return (!u->sick(u->ctx, u->gv, mb->addr, mb->port, u->cl->hp.id));
}

/* The owner of key: ring.Walk from its hash, skipping members down. */
static int
cl_owner(VRT_CTX, struct ghost_vcl *gv, const struct ghost_cluster *cl,
    const char *key, size_t kl, ghost_cluster_sick_f *sick)
{
	struct up_arg u;

	u.cl = cl;
	u.now_ms = (uint64_t)(VTIM_real() * 1e3);
	u.ctx = ctx;
	u.gv = gv;
	u.sick = sick;
	return ((int)ghost_ring_walk(cl->ring, cl->ring_len, cl->n,
	    ghost_ring_hash(key, kl), cl_up, &u));
}

/*
 * vcl_recv of a lookup whose answer says the node is clustered (version
 * ver of the cluster): who serves the key (route.ShardKey: normalised
 * host, " ", cache-key URL)? A hop mark from a member with the right
 * token: this node (GHOST_SHARD_HOP; a mark saying https sets
 * X-Ghost-Proto: https, as a trusted front would have on the forwarding
 * node); anything else carrying one is an ordinary client. Another member owns the key: GHOST_SHARD_FWD, with
 * "addr port" of the owner in *peer_hdr (the fetch reads it) and *sttl0
 * when no secondary copy is kept.
 */
int
ghost_cluster_decide(VRT_CTX, struct ghost_vcl *gv, uint64_t ver,
    const char *key, size_t kl, const char **peer_hdr, int *sttl0,
    ghost_cluster_sick_f *sick)
{
	struct ghost_cluster *cl;
	const char *hop = NULL;
	int r = GHOST_SHARD_NONE, o, https;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	*peer_hdr = NULL;
	*sttl0 = 0;
	if (!http_GetHdr(ctx->http_req, "\014" GHOST_HOP_HDR ":", &hop))
		hop = NULL;
	cl_sync(ctx, gv, ver);
	PTOK(pthread_rwlock_rdlock(&gv->cl_lock));
	cl = gv->cl;
	if (cl == NULL || cl->n == 0) {
		PTOK(pthread_rwlock_unlock(&gv->cl_lock));
		if (hop != NULL)
			http_Unset(ctx->http_req, "\014" GHOST_HOP_HDR ":");
		return (r);
	}
	if (hop != NULL) {
		if (cl_tok_ok(cl, hop, &https) && cl_from_member(ctx, cl)) {
			PTOK(pthread_rwlock_unlock(&gv->cl_lock));
			http_Unset(ctx->http_req, "\014" GHOST_HOP_HDR ":");
			if (https)
				http_SetHeader(ctx->http_req,
				    "X-Ghost-Proto: https");
			GHOST_STAT(shard_owner);
			VSLb(ctx->vsl, SLT_VCL_Log, "ghost: shard: hop from a "
			    "member, served here");
			return (GHOST_SHARD_HOP);
		}
		GHOST_STAT(shard_hop_refused);
		VSLb(ctx->vsl, SLT_VCL_Log, "ghost: shard: hop mark refused "
		    "(not a member or wrong token): an ordinary client");
	}
	o = cl_owner(ctx, gv, cl, key, kl, sick);
	if (o < 0 || o == cl->self) {
		r = GHOST_SHARD_LOCAL;
		GHOST_STAT(shard_local);
	} else {
		r = GHOST_SHARD_FWD;
		*peer_hdr = WS_Printf(ctx->ws, "%s %u", cl->m[o].addr,
		    cl->m[o].port);
		*sttl0 = cl->sttl <= 0;
	}
	PTOK(pthread_rwlock_unlock(&gv->cl_lock));
	if (hop != NULL)
		http_Unset(ctx->http_req, "\014" GHOST_HOP_HDR ":");
	if (r == GHOST_SHARD_FWD && *peer_hdr == NULL) {
		VSLb(ctx->vsl, SLT_Error, "ghost: shard: workspace overflow, "
		    "serving locally");
		r = GHOST_SHARD_LOCAL;
	}
	return (r);
}

/* ---- the backend side ------------------------------------------------- */

/*
 * The owner a fetch goes to, from the "addr port" the client side
 * decided, with the current cluster's token (*tok, in the workspace),
 * secondary TTL and connect timeout. -1: not usable (the cluster is gone).
 */
int
ghost_cluster_peer(VRT_CTX, struct ghost_vcl *gv, const char *hdr,
    struct ghost_peer *p, const char **tok)
{
	struct ghost_cluster *cl;
	const char *sp;
	char *e;
	unsigned long port;
	size_t al;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	memset(p, 0, sizeof *p);
	sp = strchr(hdr, ' ');
	if (sp == NULL || (al = (size_t)(sp - hdr)) == 0 ||
	    al >= sizeof p->addr)
		return (-1);
	port = strtoul(sp + 1, &e, 10);
	if (*e != '\0' || port < 1 || port > 65535)
		return (-1);
	memcpy(p->addr, hdr, al);
	p->port = (unsigned)port;
	PTOK(pthread_rwlock_rdlock(&gv->cl_lock));
	cl = gv->cl;
	if (cl == NULL || cl->n == 0) {
		PTOK(pthread_rwlock_unlock(&gv->cl_lock));
		return (-1);
	}
	p->sttl = cl->sttl;
	p->ctmo = cl->ctmo;
	p->hp = cl->hp;
	if (cl->hp.id != 0 && (p->hp.u = WS_Copy(ctx->ws, cl->hp_u,
	    (int)cl->hp.u_len + 1)) == NULL)
		p->hp.id = 0;
	*tok = WS_Printf(ctx->ws, "%.*s", (int)cl->tokl, cl->tok);
	PTOK(pthread_rwlock_unlock(&gv->cl_lock));
	return (*tok != NULL ? 0 : -1);
}

/* A fetch forwarded to p failed: skip p for the cluster's down time. */
void
ghost_cluster_failed(VRT_CTX, struct ghost_vcl *gv,
    const struct ghost_peer *p)
{
	struct ghost_cluster *cl;
	unsigned i;
	double down = 0;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	GHOST_STAT(shard_owner_fail);
	PTOK(pthread_rwlock_rdlock(&gv->cl_lock));
	cl = gv->cl;
	for (i = 0; cl != NULL && i < cl->n; i++) {
		if (cl->m[i].port != p->port || strcmp(cl->m[i].addr, p->addr))
			continue;
		down = cl->down;
		__atomic_store_n(&cl->m[i].down_until,
		    (uint64_t)((VTIM_real() + down) * 1e3), __ATOMIC_RELAXED);
	}
	PTOK(pthread_rwlock_unlock(&gv->cl_lock));
	VSLb(ctx->vsl, SLT_Error, "ghost: shard: owner %s port %u failed, "
	    "skipped for %.0f s; fetching from the origin", p->addr, p->port,
	    down);
}

/*
 * A client-side answer without a cluster version: ghostd does not
 * cluster this node (it sends "sh" on every answer when it does), so
 * ghost.recv() may strip the hop mark with the rest.
 */
void
ghost_cluster_off(struct ghost_vcl *gv)
{
	int st = GHOST_CL_UNKNOWN;

	(void)__atomic_compare_exchange_n(&gv->cl_state, &st, GHOST_CL_OFF, 0,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/*
 * Caching, applied mechanically from ghostd's answer (docs/vcl.md
 * "Caching policy"): the cache-key URL (query include/exclude), the hash,
 * the route's TTL/grace/keep on the backend response, the tags and
 * lurker headers every stored object carries, and the checks and keys of
 * PURGE/BAN. What to cache and how is decided by ghostd (route/); this
 * file only follows the answer.
 */

#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cache/cache_varnishd.h"	/* cache_param: vsl_mask (hash_n()) */
#include "vrt_obj.h"
#include "vsha256.h"
#include "vcl.h"

#include "msgpack.h"
#include "ghost.h"
#include "hdr.h"
#include "cachekey.h"
#include "memo.h"
#include "rq.h"
#include "apply.h"
#include "backend.h"
#include "cluster.h"
#include "route.h"
#include "reuse.h"
#include "cache.h"
#include "stats.h"
#include "vcc_ghost_if.h"

/*
 * BAN's object line: "X-Ghost-Ban-<16 hex>: <cache-key URL>", the name
 * made from the normalised host (ban_name()), so that one line and one
 * ban test scope a BAN to its host. Objects stored by VMODs before
 * 2026-12-06 carry X-Ghost-Ban-Host and X-Ghost-Ban-Url instead: BAN
 * adds a second ban for them, and ghost.deliver() strips them.
 */
#define BAN_PFX		"X-Ghost-Ban-"
#define BAN_PFX_LEN	12
#define BAN_NAME_LEN	(BAN_PFX_LEN + 16)
#define BAN_HOST	"X-Ghost-Ban-Host"	/* the old format */
#define BAN_URL		"X-Ghost-Ban-Url"	/* the old format */

/* ---- vcl_recv ---------------------------------------------------------- */

static __thread uint64_t tl_gen;
static __thread char tl_gen_s[24];

/*
 * "ghost: cache <mode> (<src>, gen <g>)", built without printf; the
 * generation (the same for a long while) formatted once per thread.
 */
static void __attribute__((__noinline__))
log_cache(VRT_CTX, const char *mode, const char *src, uint64_t gen)
{
	char buf[128], d[20];
	size_t l = 0, sl;
	unsigned n = 0;
	txt t;

	sl = strlen(mode);
	memcpy(buf, "ghost: cache ", 13);
	l = 13;
	memcpy(buf + l, mode, sl);
	l += sl;
	buf[l++] = ' ';
	buf[l++] = '(';
	sl = strlen(src);
	if (sl > 40)
		sl = 40;
	memcpy(buf + l, src, sl);
	l += sl;
	memcpy(buf + l, ", gen ", 6);
	l += 6;
	if (gen != tl_gen || tl_gen_s[0] == '\0') {
		tl_gen = gen;
		do
			d[n++] = (char)('0' + gen % 10);
		while ((gen /= 10) != 0);
		sl = 0;
		while (n > 0)
			tl_gen_s[sl++] = d[--n];
		tl_gen_s[sl] = '\0';
	}
	sl = strlen(tl_gen_s);
	memcpy(buf + l, tl_gen_s, sl);
	l += sl;
	buf[l++] = ')';
	t.b = buf;
	t.e = buf + l;
	VSLbt(ctx->vsl, SLT_VCL_Log, t);
}

/*
 * Can the cache decision of any request only be "origin" now? ghostd
 * says so per generation (the state file's origin_gen equals its gen:
 * no route of the live table has a cache_policy and ghostd runs with
 * -cache-default origin; route.Table.CacheOriginOnly()). Then
 * ghost.cache() looks nothing up, keeps no task state and logs nothing:
 * there is nothing to decide. A reload that adds a cache_policy writes
 * a new gen without origin_gen, and the next request decides again.
 */
int
ghost_cache_origin_only(VRT_CTX, struct ghost_vcl *gv, struct ghost_st *st)
{
	uint64_t gen = 0, og = 0;
	int fresh;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	fresh = ghost_state_read(gv, ctx->now, &gen, &og);
	if (st != NULL) {
		/* the decision that follows need not read it again */
		st->known = 1;
		st->fresh = fresh;
		st->gen = gen;
	}
	return (fresh >= 0 && og != 0 && og == gen);
}

/* ghost_cluster_sick_f: a member's backend exists and its probe says
 * sick (no backend yet: not known sick; the first forward creates it). */
static int v_matchproto_(ghost_cluster_sick_f)
member_sick(VRT_CTX, struct ghost_vcl *gv, const char *addr, unsigned port,
    uint32_t id)
{

	return ((ghost_be_state(ctx, gv, addr, strlen(addr), port, id) &
	    GHOST_BE_SICK) != 0);
}

/*
 * A lookup of a clustered node: who serves the key (ghost_cluster_decide()).
 * Another member: the fetch goes there (X-Ghost-Shard on the request, the
 * fetch's route() reads it), and without secondary copies the request is
 * passed. ca: the request's answer (a lookup); a hop of a request that
 * came over TLS decides again as https, and *ca becomes that answer.
 */
static int
shard_decide(VRT_CTX, struct ghost_vcl *gv, struct ghost_ans *ca)
{
	const char *host, *url, *key, *peer, *src;
	struct ghost_rq q;
	struct ghost_ans ha;
	char why[256];
	int sttl0, shard;

	if (!http_GetHdr(ctx->http_req, H_Host, &host) ||
	    (host = ghost_norm_host(ctx->ws, host)) == NULL ||
	    (url = ghost_cache_url(ctx->ws, ca,
	    ctx->http_req->hd[HTTP_HDR_URL].b)) == NULL ||
	    (key = WS_Printf(ctx->ws, "%s %s", host, url)) == NULL) {
		/* no Host to shard by (or no room): this node serves */
		return (GHOST_CM_LOOKUP);
	}
	shard = ghost_cluster_decide(ctx, gv, ca->sh, key, strlen(key),
	    &peer, &sttl0, member_sick);
	if (shard == GHOST_SHARD_HOP && http_GetHdr(ctx->http_req,
	    "\016X-Ghost-Proto:", NULL)) {
		/* the client came over TLS: decide again as https */
		ghost_rq_init(ctx, &q, ctx->http_req);
		if (ghost_decide(ctx, gv, &q, &ha, &src, why, sizeof why))
			return (GHOST_CM_LOOKUP);
		*ca = ha;	/* its key too */
		return (ha.cm);
	}
	if (shard != GHOST_SHARD_FWD)
		return (GHOST_CM_LOOKUP);
	http_PrintfHeader(ctx->http_req, GHOST_SHARD_HDR ": %s", peer);
	VSLb(ctx->vsl, SLT_VCL_Log, "ghost: shard: owner %s%s", peer,
	    sttl0 ? " (no secondary copy: pass)" : "");
	return (sttl0 ? GHOST_CM_PASS : GHOST_CM_LOOKUP);
}

/*
 * The client side's decision of the request in this worker thread
 * (vcl_recv, then vcl_hash in the same cnt_recv(), with nothing else in
 * between on this thread): thread-local, not a PRIV_TASK, whose lookup
 * and creation cost ~800 instructions on every cache hit. It belongs to
 * one request (its struct req, VXID and vcl_recv pass) of one VCL; any
 * other request sees none. The policy's key (kh, qi, qx) is copied into
 * it when it fits (always but for huge cache_key lists): a workspace
 * pointer would not survive std.rollback(req).
 */
static __thread struct ghost_cdec tl_cdec;

struct ghost_cdec *
ghost_cdec_get(VRT_CTX, const struct ghost_vcl *gv, int create)
{
	struct ghost_cdec *d = &tl_cdec;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(ctx->req, REQ_MAGIC);
	AN(ctx->vsl);
	if (d->req == ctx->req && d->vxid == ctx->vsl->wid &&
	    d->restarts == ctx->req->restarts && d->gv == gv)
		return (d);
	if (!create)
		return (NULL);
	d->req = ctx->req;
	d->vxid = ctx->vsl->wid;
	d->restarts = ctx->req->restarts;
	d->gv = gv;
	d->known = 0;
	d->cm = GHOST_CM_ORIGIN;
	d->action = -1;
	d->key_big = 0;
	return (d);
}

/* Copy msgpack [b, e) into the key buffer at *w: its new place. */
static const uint8_t *
key_part(struct ghost_cdec *d, size_t *w, const uint8_t *b,
    const uint8_t *e, const uint8_t **ne)
{
	size_t l;
	uint8_t *o;

	*ne = NULL;
	if (b == NULL || e <= b)
		return (NULL);
	l = (size_t)(e - b);
	if (l > sizeof d->buf - *w) {
		d->key_big = 1;
		return (NULL);
	}
	o = d->buf + *w;
	memcpy(o, b, l);
	*w += l;
	*ne = o + l;
	return (o);
}

/* The policy's key of answer a into d (d->key_big: it does not fit). */
static void
cdec_key(struct ghost_cdec *d, const struct ghost_ans *a)
{
	struct ghost_ans *k = &d->key;
	size_t w = 0;

	k->kh = key_part(d, &w, a->kh, a->kh_end, &k->kh_end);
	k->qi = key_part(d, &w, a->qi, a->qi_end, &k->qi_end);
	k->qx = key_part(d, &w, a->qx, a->qx_end, &k->qx_end);
	k->gen = a->gen;
	k->sh = a->sh;
}

/*
 * The policy key ghost.hash() uses for d's request: NULL when it is not
 * looked up under a cache_policy. A key too big for d is taken from the
 * same decision again, into *tmp (its data in the workspace).
 */
const struct ghost_ans *
ghost_cdec_key(VRT_CTX, struct ghost_vcl *gv, const struct ghost_cdec *d,
    struct ghost_ans *tmp)
{
	struct ghost_rq q;
	const char *src;
	char why[256];

	if (d == NULL || !d->known || d->cm != GHOST_CM_LOOKUP)
		return (NULL);
	if (!d->key_big)
		return (&d->key);
	ghost_rq_init(ctx, &q, ctx->http_req);
	if (ghost_decide(ctx, gv, &q, tmp, &src, why, sizeof why) ||
	    tmp->cm != GHOST_CM_LOOKUP)
		return (NULL);
	return (tmp);
}

/* ghostd could not be asked: Varnish's own rules, the fetch told. */
static int GHOST_COLD
decide_failed(VRT_CTX, struct ghost_cdec *d, const char *why)
{
	d->cm = GHOST_CM_ORIGIN;
	/* a timeout's why ("timeout after N ms") tells the fetch */
	if (strncmp(why, "timeout", 7))
		http_SetHeader(ctx->http_req, GHOST_CACHE_UNKNOWN ": 1");
	else
		http_PrintfHeader(ctx->http_req, GHOST_CACHE_UNKNOWN ": %s",
		    why);
	VSLb(ctx->vsl, SLT_Error, "ghost: cache decision: ghostd "
	    "unreachable: %s (Varnish's own rules)", why);
	return (d->cm);
}

/*
 * The client-side cache decision of this request (ghost.cache()): the
 * decision ghostd made for its route, from the memo like any other (a
 * warm cache hit asks nobody). When ghostd cannot be asked: Varnish's own
 * rules (the builtin passes Cookie and Authorization; a cached object may
 * still be served) and the fetch gets its own chance to ask; the request
 * is marked so that whatever that fetch brings is not stored when the
 * route turns out to have a policy or to pass (ghost_cache_resp()).
 */
int
ghost_cache_decide(VRT_CTX, struct ghost_vcl *gv, struct ghost_cdec *d,
    const struct ghost_st *st)
{
	struct ghost_ans a;
	struct ghost_rq q;
	const char *src;
	char why[256];

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	AN(d);
	if (d->known)
		return (d->cm);
	d->known = 1;
	ghost_rq_init(ctx, &q, ctx->http_req);
	if (st != NULL)
		q.st = *st;
	q.cache_only = 1;	/* a, cdec_key(), shard_decide(), log_cache() */
	if (GHOST_UNLIKELY(ghost_decide(ctx, gv, &q, &a, &src, why,
	    sizeof why)))
		return (decide_failed(ctx, d, why));
	d->cm = a.cm;
	if (GHOST_LIKELY(a.sh == 0)) {
		if (__atomic_load_n(&gv->cl_state, __ATOMIC_RELAXED) ==
		    GHOST_CL_UNKNOWN)
			ghost_cluster_off(gv);
	} else if (d->cm == GHOST_CM_LOOKUP)
		d->cm = shard_decide(ctx, gv, &a);
	if (d->cm == GHOST_CM_LOOKUP) {
		cdec_key(d, &a);
		/* before ghost.hash() of this request, on this thread */
		if (!__atomic_load_n(&gv->cd_lookup, __ATOMIC_RELAXED))
			__atomic_store_n(&gv->cd_lookup, 1, __ATOMIC_RELAXED);
	}
	/*
	 * Logged when something happened: ghostd was asked, or its heartbeat
	 * is stale and the memo serves alone. A decision from the memo while
	 * ghostd is alive repeats one logged when ghostd gave it: every warm
	 * cache hit of a policy route would write it (~250 instructions and a
	 * VSL record per hit); VCL_return says what was done.
	 */
	if (strcmp(src, "memo"))
		log_cache(ctx, d->cm == GHOST_CM_LOOKUP ? "lookup" :
		    d->cm == GHOST_CM_PASS ? "pass" : "origin", src, a.gen);
	return (d->cm);
}

/* ---- vcl_hash ---------------------------------------------------------- */

/*
 * The tag's bit in vsl_mask, as VSLbt() tests it (Varnish 7.1.1
 * cache_shmlog.c, vsl_tag_is_masked(); the parameter can change at any
 * time, so it is read each time): set, VSLbt() writes nothing.
 */
static GHOST_INLINE int
vsl_masked(enum VSL_tag_e tag)
{
	return (cache_param->vsl_mask[(unsigned)tag >> 3] &
	    (0x80 >> ((unsigned)tag & 7)));
}

/*
 * Hash l bytes at s (s[l] == '\0') exactly as VRT_hashdata() of the
 * one string s does in Varnish 7.1: its bytes, then a separator byte
 * that is 0 (HSH_AddString(NULL) hashes the first byte of a null
 * pointer), so the string with its NUL in one VSHA256_Update() of the
 * request's hash context (ctx->specific in vcl_hash, as VRT_hashdata()
 * uses it); and the same Hash record. One call of varnishd's instead of
 * VRT_hashdata()'s five (two HSH_AddString(), two VSHA256_Update(),
 * strlen()) and their lines: ghost.hash() hashes three strings for
 * every request, cache hits included (~200 instructions). The digests
 * and Hash records are the same (VTC g122, g132, g148, g160).
 */
static void __attribute__((__noinline__)) GHOST_HOT GHOST_LINE
hash_n(VRT_CTX, const char *s, size_t l)
{
	txt t;

	AN(ctx->specific);
	VSHA256_Update(ctx->specific, s, l + 1);
	/*
	 * Hash is in vsl_mask by default: VSLbt() spent ~50 instructions
	 * per string on its checks before writing nothing. The mask is
	 * tested here first, as VSLbt() tests it; unmasked, VSLbt() writes
	 * the same record as before.
	 */
	if (GHOST_LIKELY(vsl_masked(SLT_Hash)))
		return;
	t.b = s;
	t.e = s + l;
	VSLbt(ctx->vsl, SLT_Hash, t);
}

static GHOST_INLINE void
hash1(VRT_CTX, const char *s)
{
	hash_n(ctx, s, strlen(s));
}

/*
 * The URL (the cache-key URL of policy key a; NULL: none), the Host (host:
 * the request's, NULL when absent or empty; then the server address, as
 * the builtin vcl_hash does;
 * ghost.hash() also marks that case) and the policy's key
 * headers: "name:value" for each, "name" alone when absent (so absent
 * and empty differ).
 */
static void __attribute__((__noinline__))
ghost_cache_hash(VRT_CTX, const struct ghost_ans *a, const char *host)
{
	const char *url, *n, *v;
	struct strands st;
	const char *p[3];
	struct mp_r r;
	size_t nl;
	uint32_t cnt;
	char hdr[130];

	url = ctx->http_req->hd[HTTP_HDR_URL].b;
	if (a != NULL) {
		url = ghost_cache_url(ctx->ws, a, url);
		if (url == NULL) {
			VRT_fail(ctx, "ghost.hash(): workspace overflow");
			return;
		}
	}
	hash1(ctx, url);
	if (host != NULL)
		hash1(ctx, host);
	else
		hash1(ctx, VRT_IP_string(ctx, VRT_r_server_ip(ctx)));
	if (a == NULL || a->kh == NULL)
		return;
	r.p = a->kh; r.end = a->kh_end; r.err = 0;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		mp_r_str(&r, &n, &nl);
		if (r.err || nl == 0 || nl > 125)
			continue;
		hdr[0] = (char)(nl + 1);	/* "\<len>name:" */
		memcpy(hdr + 1, n, nl);
		hdr[nl + 1] = ':';
		hdr[nl + 2] = '\0';
		p[0] = hdr + 1;		/* "name:" */
		if (http_GetHdr(ctx->http_req, hdr, &v)) {
			p[1] = v;
			st.n = 2;
		} else {
			hdr[nl + 1] = '\0';	/* "name" alone: absent */
			st.n = 1;
		}
		st.p = p;
		VRT_hashdata(ctx, &st);
	}
}

/*
 * The end of every hash (ghost.hash()): what routing may depend on
 * besides URL, Host and key headers, fixed-width then the listener, so
 * unambiguous: 'H' for HEAD (a HEAD miss is fetched with GET but routes
 * as HEAD) else '-', 's' for https else '-', ':' with a Host else '!'
 * (without one the builtin hashes server.ip where the Host goes: such a
 * request must not share objects with "Host: <listener IP>"), then
 * local.socket.
 */
#define TAIL_MAX	252	/* of the listener's name: as ever */

/* The tail's bytes into buf (TAIL_MAX + 4 bytes); its length. */
static size_t
tail_fmt(char *buf, int head, int https, int has_host, const char *sock)
{
	size_t l;

	buf[0] = head ? 'H' : '-';
	buf[1] = https ? 's' : '-';
	buf[2] = has_host ? ':' : '!';
	for (l = 0; sock != NULL && sock[l] != '\0' && l < TAIL_MAX; l++)
		buf[3 + l] = sock[l];
	buf[3 + l] = '\0';
	return (3 + l);
}

static void __attribute__((__noinline__))
hash_tail(VRT_CTX, int head, int https, int has_host, const char *sock)
{
	char buf[TAIL_MAX + 4];

	hash_n(ctx, buf, tail_fmt(buf, head, https, has_host, sock));
}

/*
 * local.socket in vcl_hash: the name of the session's listener. A
 * varnishd listener (struct listen_sock) and its name live as long as
 * the child, so each one met is remembered here once (a few; each slot
 * written once, never freed) and found again by its address: no call
 * of VRT_r_local_socket() and its lines on every request. A listener
 * beyond the slots, or no session, asks varnishd as before.
 */
#define LS_SLOTS	16

struct ls_name {
	const struct listen_sock	*ls;
	const char			*name;
	int				plain;	/* name is GHOST_PLAIN_SOCK */
	size_t				tl;
	/*
	 * The listener's eight hash tails (hash_tail()), tl bytes and a
	 * NUL each, by LS_TAIL(): ghost.hash() hashes one of them as it
	 * stands (no copy, no marks set per request).
	 */
	char				tail[];
};

#define LS_TAIL(n, head, https, has_host) \
	((n)->tail + ((head) * 4 + (https) * 2 + (has_host)) * ((n)->tl + 1))

static struct ls_name *ls_names[LS_SLOTS];

static const char * GHOST_COLD
local_socket_slow(VRT_CTX, const struct listen_sock *ls)
{
	struct ls_name *n, *cur;
	const char *name;
	unsigned i;
	char buf[TAIL_MAX + 4];
	size_t tl;
	int i8;

	name = VRT_r_local_socket(ctx);
	if (ls == NULL || name == NULL)
		return (name);
	tl = tail_fmt(buf, 0, 0, 0, name);
	n = malloc(sizeof *n + 8 * (tl + 1));
	if (n == NULL)
		return (name);
	n->ls = ls;
	n->name = name;
	n->plain = !strcmp(name, GHOST_PLAIN_SOCK);
	n->tl = tl;
	for (i8 = 0; i8 < 8; i8++)
		(void)tail_fmt(LS_TAIL(n, i8 >> 2, (i8 >> 1) & 1, i8 & 1),
		    i8 >> 2, (i8 >> 1) & 1, i8 & 1, name);
	for (i = 0; i < LS_SLOTS; i++) {
		cur = NULL;
		if (__atomic_compare_exchange_n(&ls_names[i], &cur, n, 0,
		    __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
			return (name);
		if (cur->ls == ls)
			break;		/* another thread was first */
	}
	free(n);
	return (name);
}

/* ls_find() past the first slot. */
static const struct ls_name * __attribute__((__noinline__))
ls_find_rest(const struct listen_sock *ls)
{
	const struct ls_name *n;
	unsigned i;

	for (i = 1; i < LS_SLOTS; i++) {
		n = __atomic_load_n(&ls_names[i], __ATOMIC_ACQUIRE);
		if (n == NULL)
			break;
		if (n->ls == ls)
			return (n);
	}
	return (NULL);
}

/*
 * The session's listener in the table, NULL when not (yet) there. The
 * first slot inline (the first listener met: usually the only one),
 * the others out of line.
 */
static GHOST_INLINE const struct ls_name *
ls_find(VRT_CTX)
{
	const struct listen_sock *ls;
	const struct ls_name *n;

	ls = ctx->sp != NULL ? ctx->sp->listen_sock : NULL;
	n = __atomic_load_n(&ls_names[0], __ATOMIC_ACQUIRE);
	if (GHOST_LIKELY(n != NULL && n->ls == ls))
		return (n);
	return (n != NULL ? ls_find_rest(ls) : NULL);
}

static GHOST_INLINE const char *
local_socket(VRT_CTX)
{
	const struct ls_name *n;

	n = ls_find(ctx);
	if (GHOST_LIKELY(n != NULL))
		return (n->name);
	return (local_socket_slow(ctx,
	    ctx->sp != NULL ? ctx->sp->listen_sock : NULL));
}

/* hash_tail() of a listener not in the table (the first request). */
static void GHOST_COLD
hash_tail_slow(VRT_CTX, int head, int https, int has_host)
{
	hash_tail(ctx, head, https, has_host, local_socket(ctx));
}

/*
 * Is the fetch's listener GHOST_PLAIN_SOCK (plain_rq()'s strcmp() on
 * local_socket())? Taken once per listener met: a stored object reads
 * one flag in the slot its listener found.
 */
static GHOST_INLINE int
plain_sock(VRT_CTX)
{
	const struct ls_name *n;
	const char *name;

	n = ls_find(ctx);
	if (GHOST_LIKELY(n != NULL))
		return (n->plain);
	name = local_socket_slow(ctx,
	    ctx->sp != NULL ? ctx->sp->listen_sock : NULL);
	return (name != NULL && !strcmp(name, GHOST_PLAIN_SOCK));
}

/* Where the Host goes without one: the server address (the builtin's). */
static void GHOST_COLD
hash_no_host(VRT_CTX)
{
	hash1(ctx, VRT_IP_string(ctx, VRT_r_server_ip(ctx)));
}

/*
 * The hash of the request in vcl_hash (ghost.hash(); m: its method, not
 * a PURGE of ghost_invalidate's): ghost_cache_hash() under the policy
 * key of the request's cache decision, hash_tail() after it, then
 * ghost.prepare()'s record for a fetch when one is needed. One
 * function, its helpers inline, the policy's key looked for only once
 * some request of this VCL was decided lookup (gv->cd_lookup): every
 * request comes here (cache hits included), and each code line it
 * touches is an instruction-cache miss (docs/benchmarks.md, seventh
 * session). The bytes hashed are the same either way.
 */
static GHOST_INLINE void
hash_req(VRT_CTX, struct ghost_vcl *gv, const char *m)
{
	const struct ghost_ans *key = NULL;
	struct ghost_ans tmp;
	const struct http *hp = ctx->http_req;
	const struct ls_name *ls;
	const char *host = NULL, *b;
	const txt *t, *te;
	uint32_t w;
	int https = 0, plain, head;

	/*
	 * One pass over the request's lines finds both the Host line
	 * (what http_GetHdr(hp, H_Host, ...) finds: the first line whose
	 * name is "host" in any case, its value after blanks) and an
	 * X-Ghost-Proto: https line: no walk of varnishd's own through the
	 * same lines first (~230 instructions per request, hits included).
	 * The first four bytes are read as one word with 0x20 set in each:
	 * (c | 0x20) == 'h' holds for 'H' and 'h' only, and likewise for
	 * the other letters, so the word is "host" exactly when
	 * strncasecmp() would say so.
	 */
	te = hp->hd + hp->nhd;
	for (t = hp->hd + HTTP_HDR_FIRST; t < te; t++) {
		b = t->b;
		if (b == NULL || t->e - b < 5)
			continue;	/* neither "host:" nor an https mark */
		w = ghost_ld4(b) | GHOST_W4(0x20, 0x20, 0x20, 0x20);
		if (w == GHOST_W4('h', 'o', 's', 't') && b[4] == ':') {
			if (host == NULL)
				host = b + 5;
		} else if ((w & 0xff) == 'x' && t->e - b >= 14 + 5 &&
		    (b[8] | 0x20) == 'p' && ghost_is_https(t))
			/* ghost_is_https()'s own cheap rejects first, inline:
			 * no call (and its lines) for the usual X- lines */
			https = 1;
	}
	if (host != NULL) {
		while (*host == ' ' || *host == '\t')	/* vct_issp() */
			host++;
		if (*host == '\0')
			host = NULL;
	}
	if (GHOST_UNLIKELY(__atomic_load_n(&gv->cd_lookup, __ATOMIC_RELAXED)))
		key = ghost_cdec_key(ctx, gv, ghost_cdec_get(ctx, gv, 0),
		    &tmp);
	if (GHOST_UNLIKELY(key != NULL))
		ghost_cache_hash(ctx, key, host);
	else {
		hash1(ctx, hp->hd[HTTP_HDR_URL].b);
		if (GHOST_LIKELY(host != NULL))
			hash1(ctx, host);
		else
			hash_no_host(ctx);
	}
	head = ghost_ld4(m) == GHOST_W4('H', 'E', 'A', 'D') && m[4] == '\0';
	ls = ls_find(ctx);
	if (GHOST_LIKELY(ls != NULL))
		hash_n(ctx, LS_TAIL(ls, head, https, host != NULL), ls->tl);
	else
		hash_tail_slow(ctx, head, https, host != NULL);
	/*
	 * prepare()'s record for a fetch after this lookup (a miss, or the
	 * background fetch of a stale hit, which starts after vcl_hit
	 * without vcl_miss): taken here, so that ghost.vcl needs no
	 * vcl_hit statement (a VCL block and a VMOD call, ~200 instructions
	 * on every hit). The request is the one vcl_miss would record
	 * (varnishd changes nothing between vcl_hash and vcl_miss); a GET
	 * while no decision reads a header a fetch rewrites (fetch_plain,
	 * the common case) records nothing; prepare() in vcl_miss or
	 * vcl_pass then does nothing more. Here rather than in ghost.hash()
	 * after the call: one epilogue, next to this one's lines.
	 */
	plain = ghost_fetch_plain_i(gv);
	if (GHOST_UNLIKELY(!plain || ghost_ld4(m) != GHOST_W4('G', 'E', 'T', 0)))
		ghost_record(ctx->http_req, ctx->req != NULL ?
		    ctx->req->http0 : NULL, !plain, 1);
}

static void GHOST_COLD
hash_misplaced(VRT_CTX)
{
	VRT_fail(ctx, "ghost.hash(): only in vcl_hash");
}

/*
 * ghost.hash() of a method starting with 'P': ghost_invalidate's PURGE
 * of a URL hashes its plain objects (ghost_purge_hash()): true then;
 * false for anything else (hashed as usual). Out of line.
 */
static int __attribute__((__noinline__))
hash_purge(VRT_CTX, struct ghost_vcl *gv, const char *m)
{
	return (!strcmp(m, "PURGE") && ghost_purge_hash(ctx, gv));
}

/*
 * ghost.hash(): the hash, then prepare()'s record for a fetch after this
 * lookup (hash_req(), inline: one function, one entry and exit, on every
 * request). Here, not in vmod_ghost.c, so that the entry's checks and
 * the hash share their code lines.
 */
VCL_VOID v_matchproto_() GHOST_HOT GHOST_LINE
vmod_hash(VRT_CTX, struct vmod_priv *pv)
{
	struct ghost_vcl *gv;
	const char *m;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (GHOST_UNLIKELY(ctx->method != VCL_MET_HASH ||
	    ctx->http_req == NULL)) {
		hash_misplaced(ctx);
		return;
	}
	gv = ghost_vcl_get(ctx, pv, "hash");
	if (GHOST_UNLIKELY(gv == NULL))
		return;
	/* a request line always has its method (varnishd's parsers; VCL
	 * cannot unset it) */
	m = ctx->http_req->hd[HTTP_HDR_METHOD].b;
	if (GHOST_UNLIKELY(*m == 'P') && hash_purge(ctx, gv, m))
		return;
	hash_req(ctx, gv, m);
}

/*
 * The plain hash of an object: the one hash a PURGE of its URL looks up
 * itself (ghost_purge_hash(), a native purge of every Vary variant), so
 * such an object needs no URL key in the xkey index (vmod_xkey's work on
 * every stored object: a SHA-256, two tree inserts, three allocations
 * under its global lock, ~6,500 instructions). Plain: fetched for a
 * method other than HEAD, without https, through the listener named
 * GHOST_PLAIN_SOCK (varnishd's name of the first unnamed -a), with a
 * Host already in normal form (lower case, no port, no trailing dot) and
 * without cache_key headers. Any other object carries the URL key, which
 * PURGE purges too. This half reads the fetch's inputs as route() found
 * them on the backend request (the client's method as prepare()
 * recorded it, https and Host as vcl_hash saw them, the session's
 * listener); tag_object() checks the Host and the key headers.
 */
static GHOST_INLINE int
plain_rq(const struct ghost_task *t)
{

	return (t->obj_host != NULL && *t->obj_host != '\0' &&
	    !t->obj_https && t->obj_sock != NULL &&
	    !strcmp(t->obj_sock, GHOST_PLAIN_SOCK) && t->obj_method != NULL &&
	    strcmp(t->obj_method, "HEAD"));
}

/* No cache_key headers in a's key (an empty list hashes nothing). */
static GHOST_INLINE int
no_key_hdrs(const struct ghost_ans *a)
{
	struct mp_r r;

	if (a->kh == NULL)
		return (1);
	r.p = a->kh; r.end = a->kh_end; r.err = 0;
	return (mp_r_arr(&r) == 0 && !r.err);
}

/*
 * The answer's half of the usual stored object, tested field by field
 * (ghost_cache_resp(), for an answer without GHOST_OPS_STORE): not a
 * pass, no cache_policy, no query filter, no cache_key headers. Cold:
 * out of the usual object's lines.
 */
static int GHOST_COLD
store_ans(const struct ghost_ans *a)
{
	return (a->cm != GHOST_CM_PASS && !a->has_cp && a->qi == NULL &&
	    a->qx == NULL && no_key_hdrs(a));
}

/* ---- vcl_backend_response --------------------------------------------- */

/* Does a Cache-Control value hold token tok (case-insensitive)? */
static int
cc_has(const char *v, const char *tok)
{
	size_t tl = strlen(tok);
	const char *b;

	while (*v != '\0') {
		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		b = v;
		while (*v != '\0' && *v != ',' && *v != '=' && *v != ' ' &&
		    *v != '\t')
			v++;
		if ((size_t)(v - b) == tl && !strncasecmp(b, tok, tl))
			return (1);
		while (*v != '\0' && *v != ',')
			v++;
	}
	return (0);
}

/*
 * "%.0f" of v into w, without printf (each VRT_l_beresp_ttl/grace/keep
 * logs a TTL record with four "%.0f": ~7,800 instructions apiece).
 * rint() rounds as printf does (the current mode, half to even); 0 when
 * v is out of range, so that the caller uses printf.
 */
static char *
fmt0f(char *w, double v)
{
	char d[24];
	uint64_t u;
	unsigned n = 0;

	if (!(v > -1e15 && v < 1e15))
		return (NULL);
	v = rint(v);
	if (signbit(v)) {
		*w++ = '-';
		v = -v;
	}
	u = (uint64_t)v;
	do
		d[n++] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	while (n > 0)
		*w++ = d[--n];
	return (w);
}

/*
 * beresp.ttl/grace/keep as VRT_l_beresp_*() set them (ttl < 0: leave it;
 * ttl relative to now, clamped at 0), with one TTL record for the three,
 * the same as the setters' last one ("VCL <ttl> <grace> <keep> <t_origin>
 * cacheable|uncacheable").
 */
static void
set_ttls(VRT_CTX, double ttl, double grace, double keep)
{
	struct objcore *oc;
	char buf[128], *w;
	const char *cu;
	txt t;

	CHECK_OBJ_NOTNULL(ctx->bo, BUSYOBJ_MAGIC);
	oc = ctx->bo->fetch_objcore;
	CHECK_OBJ_NOTNULL(oc, OBJCORE_MAGIC);
	if (ttl >= 0) {
		ttl += ctx->now - oc->t_origin;
		oc->ttl = (float)(ttl < 0 ? 0 : ttl);
	}
	if (grace >= 0)
		oc->grace = (float)grace;
	if (keep >= 0)
		oc->keep = (float)keep;
	if (ttl < 0 && grace < 0 && keep < 0)
		return;
	cu = ctx->bo->uncacheable ? "uncacheable" : "cacheable";
	memcpy(buf, "VCL ", 4);
	w = fmt0f(buf + 4, oc->ttl);
	if (w != NULL && (*w++ = ' ', w = fmt0f(w, oc->grace)) != NULL &&
	    (*w++ = ' ', w = fmt0f(w, oc->keep)) != NULL &&
	    (*w++ = ' ', w = fmt0f(w, oc->t_origin)) != NULL) {
		*w++ = ' ';
		memcpy(w, cu, strlen(cu));
		w += strlen(cu);
		t.b = buf;
		t.e = w;
		VSLbt(ctx->vsl, SLT_TTL, t);
		return;
	}
	VSLb(ctx->vsl, SLT_TTL, "VCL %.0f %.0f %.0f %.0f %s", oc->ttl,
	    oc->grace, oc->keep, oc->t_origin, cu);
}

/*
 * The route's TTLs. Forced: overrides whatever the origin said about
 * freshness (its Cache-Control and Expires leave the stored object),
 * except "no-store" and "private", which stay uncacheable (the builtin
 * VCL marks them; a forced TTL never turns a private answer public).
 * Default: only when the origin gave no freshness (no max-age, no
 * s-maxage, no Expires). Grace and keep: as set.
 */
static void
apply_ttl(VRT_CTX, struct http *hp, const struct ghost_ans *a)
{
	const char *cc = NULL;
	double ttl = -1;

	(void)http_GetHdr(hp, H_Cache_Control, &cc);
	if (a->ttl >= 0 && a->forced) {
		if (cc == NULL || (!cc_has(cc, "no-store") &&
		    !cc_has(cc, "private"))) {
			http_Unset(hp, H_Cache_Control);
			http_Unset(hp, H_Expires);
			ttl = (double)a->ttl;
		}
	} else if (a->ttl >= 0) {
		if ((cc == NULL || (!cc_has(cc, "max-age") &&
		    !cc_has(cc, "s-maxage"))) &&
		    !http_GetHdr(hp, H_Expires, NULL))
			ttl = (double)a->ttl;
	}
	set_ttls(ctx, ttl, a->grace >= 0 ? (double)a->grace : -1,
	    a->keep >= 0 ? (double)a->keep : -1);
}

static const char hexd[] = "0123456789abcdef";

/* " g<kind><16 hex>" for (host, s[0..l)) into w (19 bytes). */
static char *
tag_key(char *w, char kind, const char *host, const char *s, size_t l)
{
	uint64_t h;
	int i;

	h = ghost_hash(host, strlen(host), 0x67686f7374ULL);
	h = ghost_hash(s, l, h ^ (uint64_t)(unsigned char)kind);
	*w++ = ' ';
	*w++ = 'g';
	*w++ = kind;
	for (i = 15; i >= 0; i--)
		*w++ = hexd[(h >> (4 * i)) & 0xf];
	return (w);
}

/* BAN_PFX + the 16 hex of host's line name into w (BAN_NAME_LEN bytes). */
static char *
ban_name(char *w, const char *host)
{
	memcpy(w, BAN_PFX, BAN_PFX_LEN);
	ghost_ban_hex(host, w + BAN_PFX_LEN);
	return (w + BAN_NAME_LEN);
}

/* ban_name() of t's host (host: its normal form), memoised or not. */
static char *
ban_name_t(char *w, const struct ghost_task *t, const char *host)
{
	if (!t->ans->ban_ok)
		return (ban_name(w, host));
	memcpy(w, BAN_PFX, BAN_PFX_LEN);
	memcpy(w + BAN_PFX_LEN, t->ans->ban_hx, 16);
	return (w + BAN_NAME_LEN);
}

static int
is_sep(char c)
{
	return (c == ' ' || c == '\t' || c == ',');
}

/*
 * The keys of a list of tags (space or comma separated) for host, into
 * the workspace reservation w..e; NULL when it does not fit.
 */
static char *
tag_keys(char *w, const char *e, const char *host, const char *v)
{
	const char *b;

	while (*v != '\0') {
		while (is_sep(*v))
			v++;
		b = v;
		while (*v != '\0' && !is_sep(*v))
			v++;
		if (v == b)
			continue;
		if (e - w < 20)
			return (NULL);
		w = tag_key(w, 't', host, b, (size_t)(v - b));
	}
	return (w);
}

/*
 * What kind of line tags a stored object: 'k' xkey, 's' Surrogate-Key,
 * 'b' X-Ghost-Ban-<16 hex> (or the old X-Ghost-Ban-Host and -Url), 0
 * none. Every response line is tested on every cache hit
 * (ghost.deliver()), so the position of the ':' (each name has its own
 * length) and the first character reject almost every other line before
 * a string compare.
 */
static inline int
tag_kind(const txt *l)
{
	const char *b = l->b;
	size_t n = (size_t)(l->e - l->b);

	switch (*b | 0x20) {
	case 'x':
		if (n > 4 && b[4] == ':')
			return (strncasecmp(b, "xkey:", 5) ? 0 : 'k');
		/* the ban line as tag_object() writes it (on every hit) is
		 * told without strncasecmp(), whose code nothing else on a
		 * hit keeps in the instruction cache */
		if (n > BAN_NAME_LEN && b[BAN_NAME_LEN] == ':')
			return (!memcmp(b, BAN_PFX, BAN_PFX_LEN) ||
			    !strncasecmp(b, BAN_PFX, BAN_PFX_LEN) ? 'b' : 0);
		if (n > 15 && b[15] == ':')
			return (strncasecmp(b, BAN_URL ":", 16) ? 0 : 'b');
		if (n > 16 && b[16] == ':')
			return (strncasecmp(b, BAN_HOST ":", 17) ? 0 : 'b');
		return (0);
	case 's':
		return (n > 13 && b[13] == ':' &&
		    !strncasecmp(b, "surrogate-key:", 14) ? 's' : 0);
	default:
		return (0);
	}
}

static inline int
is_tag_line(const txt *l)
{
	return (tag_kind(l) != 0);
}

/*
 * Can line l be a tag line (tag_kind() != 0)? Its cheap half, inline:
 * xkey's ':' at 4, the 'g' of "X-Ghost-Ban-", Surrogate-Key's ':' at
 * 13. The usual response's lines (Server, X-Varnish...) fail it without
 * calling tag_kind(), which only a hit's ban line still reaches.
 */
static GHOST_INLINE int
maybe_tag(const txt *l)
{
	const char *b = l->b;
	size_t n = (size_t)(l->e - l->b);

	switch (*b | 0x20) {
	case 'x':
		/* b[2] first (b[n] is the line's end, and n >= 2: a name
		 * and ':'): X-Varnish is told there, inline */
		return ((n > 4 && b[4] == ':') ||
		    ((b[2] | 0x20) == 'g' && n > BAN_PFX_LEN));
	case 's':
		return (n > 13 && b[13] == ':');
	default:
		return (0);
	}
}

/*
 * http_SetHeader(hp, o) for a line o of length l in hp's workspace: the
 * same line, flags and record (hp's *Header tag, as http_SetH() logs
 * it), without varnishd's http_SetHeader()/http_SetH(), whose code
 * nothing else in vcl_backend_response keeps in the instruction cache
 * (VSLbt() logged every line of the response just before). A full
 * header table goes to http_SetHeader() (LostHeader, and the failure).
 */
static GHOST_INLINE void
set_line(struct http *hp, const char *o, size_t l)
{
	unsigned n = hp->nhd;
	txt t;

	if (GHOST_UNLIKELY(n >= hp->shd)) {
		http_SetHeader(hp, o);
		return;
	}
	t.b = o;
	t.e = o + l;
	hp->hd[n] = t;
	hp->hdf[n] = 0;
	hp->nhd = (uint16_t)(n + 1);
	if (hp->vsl != NULL)
		VSLbt(hp->vsl, (enum VSL_tag_e)(hp->logtag + HTTP_HDR_FIRST),
		    t);
}

/*
 * What a stored object carries for invalidation: BAN's lurker-friendly
 * "X-Ghost-Ban-<16 hex of the host>: <cache-key URL>", and an xkey line
 * of host-scoped keys: one per tag of the origin's xkey / Surrogate-Key
 * lines, and one for the URL unless the object is plain
 * (plain_rq(): PURGE finds it by its hash). A plain object
 * without origin tags has no xkey line, so vmod_xkey indexes nothing.
 * Every cache hit copies these lines into the response and
 * ghost.deliver() removes them (each line is logged twice), hence as few
 * as possible. The origin's tag lines (and any X-Ghost-Ban-* line it
 * sent) leave the object: clients never see them, and only the scoped
 * keys may purge. Both lines are built in one workspace reservation and
 * the origin's lines, when it sent any, removed in one pass (a printf per
 * line and an http_Unset() per name cost ~5,000 instructions per stored
 * object). The usual object (plain, no tag line from the origin) takes
 * the ban line alone, in an allocation of its exact size.
 */
static void
tag_object(VRT_CTX, struct http *hp, const struct ghost_task *t)
{
	char *o, *w, *e, *bu, *xk;
	unsigned u, sz;
	const txt *l;
	const char *v, *host = NULL, *url = NULL;
	size_t ul;
	unsigned ntag = 0;
	int k, plain;

	/* normalised Host and cache-key URL */
	if (t->obj_host != NULL && t->obj_url != NULL) {
		/* ban_ok: the Host is in normal form (reuse.c memo_ban()) */
		host = t->ans->ban_ok ? t->obj_host :
		    ghost_norm_host(ctx->ws, t->obj_host);
		/* no query filter (most routes): the URL as it is */
		url = t->ans->qi == NULL && t->ans->qx == NULL ? t->obj_url :
		    ghost_cache_url(ctx->ws, t->ans, t->obj_url);
	}
	if (host == NULL || url == NULL) {
		ghost_strip_if(hp, is_tag_line);
		return;
	}
	/* the origin's tag lines; any line of ours it sent counts too */
	for (u = HTTP_HDR_FIRST; u < hp->nhd; u++)
		if (hp->hd[u].b != NULL && maybe_tag(&hp->hd[u]) &&
		    tag_kind(&hp->hd[u]) != 0)
			ntag++;
	/* ghost_norm_host() returns a Host in normal form as it is */
	plain = plain_rq(t) && host == t->obj_host && no_key_hdrs(t->ans);
	ul = strlen(url);
	if (plain && ntag == 0) {
		/* no xkey line, nothing to strip: the ban line alone */
		o = WS_Alloc(hp->ws, (unsigned)(BAN_NAME_LEN + 3 + ul));
		if (o == NULL) {
			VSLb(ctx->vsl, SLT_Error, "ghost: workspace overflow, "
			    "no " BAN_PFX "* line (BAN cannot find this "
			    "object)");
			return;
		}
		w = ban_name_t(o, t, host);
		*w++ = ':';
		*w++ = ' ';
		memcpy(w, url, ul + 1);
		set_line(hp, o, BAN_NAME_LEN + 2 + ul);
		return;
	}
	sz = WS_ReserveAll(hp->ws);
	o = WS_Reservation(hp->ws);
	e = o + sz;
	/* xkey first, then the ban line (a long URL may not fit) */
	if (sz < 32) {
		WS_Release(hp->ws, 0);
		VSLb(ctx->vsl, SLT_Error, "ghost: workspace overflow, "
		    "object not tagged");
		ghost_strip_if(hp, is_tag_line);
		return;
	}
	xk = o;
	memcpy(o, "xkey:", 5);
	w = o + 5;
	if (!plain)
		w = tag_key(w, 'u', host, url, ul);
	/* the keys of the origin's tags */
	for (u = HTTP_HDR_FIRST; ntag > 0 && u < hp->nhd; u++) {
		l = &hp->hd[u];
		if (l->b == NULL || (k = tag_kind(l)) == 0)
			continue;
		if ((k != 'k' && k != 's') || w == NULL)
			continue;
		for (v = l->b + (k == 'k' ? 5 : 14); *v == ' ' || *v == '\t';
		    v++)
			continue;
		w = tag_keys(w, e - 1, host, v);
	}
	if (w == NULL) {
		VSLb(ctx->vsl, SLT_Error, "ghost: too many xkey tags "
		    "(workspace), object not tagged");
		xk = NULL;
		w = o;
	} else if (w == o + 5) {
		xk = NULL;	/* plain, no tags: no xkey line */
		w = o;
	} else
		*w++ = '\0';
	bu = w;
	if ((size_t)(e - w) < BAN_NAME_LEN + 3 + ul) {
		VSLb(ctx->vsl, SLT_Error, "ghost: workspace overflow, no "
		    BAN_PFX "* line (BAN cannot find this object)");
		bu = NULL;
	} else {
		w = ban_name_t(w, t, host);
		*w++ = ':';
		*w++ = ' ';
		memcpy(w, url, ul);
		w += ul;
		*w++ = '\0';
	}
	WS_Release(hp->ws, (unsigned)(w - o));
	if (ntag > 0)		/* most origins send none: no second pass */
		ghost_strip_if(hp, is_tag_line);
	if (xk != NULL)
		http_SetHeader(hp, xk);
	if (bu != NULL)
		http_SetHeader(hp, bu);
}

/*
 * vcl_backend_response of a routed fetch, any object (ghost_cache_resp()
 * takes the usual one itself): a secondary copy, an object looked up
 * without the route's decision, the route's TTLs, the tags.
 */
static void __attribute__((__noinline__))
resp_any(VRT_CTX, struct http *hp, struct ghost_task *t)
{

	/* the session's listener (plain_rq()), as in vcl_hash (ctx->sp is
	 * the fetch's session, bo->sp: VRT_r_local_socket()'s name here) */
	t->obj_sock = local_socket(ctx);
	if (t->fwd) {
		/* the owner's answer: a secondary copy, short-lived */
		set_ttls(ctx, VRT_r_beresp_ttl(ctx) > t->peer->sttl ?
		    (double)t->peer->sttl : -1, 0, 0);
	} else if (t->ans->cm == GHOST_CM_PASS ||
	    (t->cache_unknown && t->ans->has_cp)) {
		/*
		 * Looked up without this route's decision (ghostd was not
		 * reachable from vcl_recv, or a reload came in between):
		 * the key or the bypass may be wrong, so store nothing.
		 */
		VRT_l_beresp_uncacheable(ctx, 1);
		VSLb(ctx->vsl, SLT_VCL_Log, "ghost: uncacheable: looked up "
		    "without the route's cache decision");
		return;
	} else if (t->ans->has_cp)
		apply_ttl(ctx, hp, t->ans);
	/* one call: inlined (tag_object() has no other caller) */
	tag_object(ctx, hp, t);
}

/*
 * vcl_backend_response of a routed fetch whose object is stored (the
 * caller tested bo->uncacheable: a pass never comes here). The usual
 * object (not a secondary copy, a route without cache policy, a Host in
 * normal form and its ban line's name in the memoised answer, no query
 * filter, plain (plain_rq(): the listener's flag from plain_sock(), no
 * cache_key headers) and no line of the origin that may tag it) takes
 * its ban line here, in a few straight lines: exactly what tag_object()
 * gives it (the ban line alone, after the task (GHOST_TASK_SPARE) or in
 * an allocation of its exact size;
 * obj_sock is not needed then); every other object goes to resp_any().
 * Every long-tail miss runs these lines: only what the answer decides
 * is read from it (in the two lines ghost.h keeps for it), the URL's
 * length from the backend request's line when it is that string.
 */
void GHOST_HOT GHOST_LINE
ghost_cache_resp(VRT_CTX, struct ghost_task *t)
{
	struct http *hp = ctx->http_beresp;
	const struct ghost_ans *a;
	const txt *l, *le;
	const char *url, *m, *h;
	char *o, *w;
	size_t ul;

	/* (not NULL: ghost.response() tested beresp and found the task) */
	CHECK_OBJ(hp, HTTP_MAGIC);
	CHECK_OBJ(t, GHOST_TASK_MAGIC);
	a = t->ans;
	/* the one answer line read here (ban_ok, ban_hx): cold after the
	 * upstream I/O, fetched while the task and the lines are tested */
	__builtin_prefetch(&a->ban_ok);
	/*
	 * and, with it, the memo entry's count of references (the key's
	 * line), which task_fini() drops when the fetch ends: cold too by
	 * now, and there its miss was one of its own (~300 ns); asked for
	 * here, the two misses overlap (a prefetch on this VM holds the
	 * instructions after it until its line comes: only misses in
	 * flight together save time)
	 */
	if (t->ans_ref != NULL)
		__builtin_prefetch(ghost_memo_hdr(t->ans_ref), 1);
	url = t->obj_url;
	m = t->obj_method;
	h = t->obj_host;
	/* the answer's half from the task's copy of its flags (STORE: no
	 * pass, cache_policy, query filter or key headers; else the fields
	 * themselves, an empty key list being plain), then plain_rq()
	 * spelt out: the method is not HEAD (5 bytes, NUL included, no
	 * call) */
	if (GHOST_UNLIKELY(t->fwd ||
	    (!(t->ans_ops & GHOST_OPS_STORE) && !store_ans(a)) || url == NULL ||
	    h == NULL || *h == '\0' || t->obj_https || m == NULL ||
	    (m[0] == 'H' && m[1] == 'E' && m[2] == 'A' && m[3] == 'D' &&
	    m[4] == '\0') || !plain_sock(ctx))) {
		resp_any(ctx, hp, t);
		return;
	}
	/* (no NULL test: varnishd keeps no empty header slot below nhd;
	 * http_CopyHome() asserts it) */
	le = hp->hd + hp->nhd;
	for (l = hp->hd + HTTP_HDR_FIRST; l < le; l++)
		if (GHOST_UNLIKELY(maybe_tag(l))) {
			resp_any(ctx, hp, t);
			return;
		}
	if (GHOST_UNLIKELY(!a->ban_ok)) {
		resp_any(ctx, hp, t);
		return;
	}
	/* the bereq's URL line, unless VCL set another since route() */
	l = ctx->http_bereq != NULL ? &ctx->http_bereq->hd[HTTP_HDR_URL] :
	    NULL;
	if (GHOST_LIKELY(l != NULL && l->b == url))
		ul = (size_t)(l->e - l->b);
	else
		ul = strlen(url);
	/*
	 * The line goes after the task's struct (GHOST_TASK_SPARE, in the
	 * fetch's workspace like hp's lines, living as long): no
	 * WS_Alloc() and its two WS_Assert() per stored object. A retry
	 * writes it again for its own beresp; the previous beresp's lines
	 * are gone by then. A longer URL: WS_Alloc() as before.
	 */
	if (GHOST_LIKELY(BAN_NAME_LEN + 3 + ul <= GHOST_TASK_SPARE))
		o = (char *)(t + 1);
	else
		o = WS_Alloc(hp->ws, (unsigned)(BAN_NAME_LEN + 3 + ul));
	if (GHOST_UNLIKELY(o == NULL)) {
		resp_any(ctx, hp, t);	/* logs the overflow */
		return;
	}
	memcpy(o, BAN_PFX, BAN_PFX_LEN);
	memcpy(o + BAN_PFX_LEN, a->ban_hx, 16);
	w = o + BAN_NAME_LEN;
	*w++ = ':';
	*w++ = ' ';
	memcpy(w, url, ul);
	w[ul] = '\0';
	set_line(hp, o, BAN_NAME_LEN + 2 + ul);
}

/*
 * Is l the ban line as ghost writes it ("X-Ghost-Ban-" in this case, 16
 * hex, ':')? Then tag_kind(l) is 'b' (its first test for such a line):
 * the line every delivered object carries is told inline, without
 * tag_kind()'s call and code lines (~4 instruction-cache misses on every
 * hit and every miss's delivery).
 */
static GHOST_INLINE int
is_ban_line(const txt *l)
{
	return (l->e - l->b > BAN_NAME_LEN && l->b[BAN_NAME_LEN] == ':' &&
	    !memcmp(l->b, BAN_PFX, BAN_PFX_LEN));
}

/*
 * ghost.deliver()'s general strip: lines r on, the next kept line going
 * to w (w <= r; lines below w stay where they are): the tag lines
 * dropped, each logged as its unset (RespUnset), the others moved up.
 * A candidate (maybe_tag()) is told by is_ban_line() or tag_kind().
 * Out of line: the usual object never comes here.
 */
static void __attribute__((__noinline__))
deliver_strip(struct http *hp, unsigned r, unsigned w)
{
	txt *hd = hp->hd;
	unsigned char *hdf = hp->hdf;
	const txt *l;
	unsigned n;

	/* hd, hdf and n in registers: the stores below cannot change them */
	n = hp->nhd;
	for (; r < n; r++) {
		l = &hd[r];
		if (maybe_tag(l) && (is_ban_line(l) || tag_kind(l) != 0)) {
			if (hp->vsl != NULL)
				VSLbt(hp->vsl, (enum VSL_tag_e)(hp->logtag +
				    HTTP_HDR_UNSET - HTTP_HDR_METHOD), *l);
			continue;
		}
		if (w != r) {
			hd[w] = *l;
			hdf[w] = hdf[r];
		}
		w++;
	}
	hp->nhd = (uint16_t)w;
}

static void GHOST_COLD
deliver_misplaced(VRT_CTX)
{
	VRT_fail(ctx, "ghost.deliver(): only in vcl_deliver");
}

/* A hit on the copy of a key another member owns: counted. */
static void GHOST_COLD
deliver_shard(VRT_CTX)
{
	if (VRT_r_obj_hits(ctx) > 0 &&
	    http_GetHdr(ctx->http_req, "\016" GHOST_SHARD_HDR ":", NULL))
		GHOST_STAT(shard_sec_hit);
}

/*
 * ghost.deliver() in vcl_deliver: what tags the object stays in the
 * cache: X-Ghost-Ban-*, xkey, Surrogate-Key. First only look (a load and
 * two compares per usual line, nothing written, no call): most responses
 * of a pass carry no tag line and end here. A stored object's ban line
 * (stored last, before varnishd's own X-Varnish, Age, Via and
 * Accept-Ranges) is taken out here when no other candidate follows it:
 * the lines after it moved up while they are looked at, its RespUnset
 * record last, in a tail call (no register kept, no epilogue). Anything
 * else goes to deliver_strip() from where it stands, after the ban
 * line's record. Here, not in vmod_ghost.c, and one function with the
 * entry's checks: every delivery (cache hits included) runs these lines,
 * and each one is an instruction-cache miss (docs/benchmarks.md,
 * eleventh session); the rare cases (a misplaced call, a clustered
 * node's hit) out of line.
 */
VCL_VOID v_matchproto_() GHOST_HOT GHOST_LINE
vmod_deliver(VRT_CTX, struct vmod_priv *pv)
{
	const struct ghost_vcl *gv;
	struct http *hp;
	txt *hd, ban;
	unsigned char *hdf;
	unsigned u, r, n;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	hp = ctx->http_resp;
	if (GHOST_UNLIKELY(ctx->method != VCL_MET_DELIVER || hp == NULL)) {
		deliver_misplaced(ctx);
		return;
	}
	gv = pv->priv;
	if (gv != NULL && GHOST_UNLIKELY(__atomic_load_n(&gv->cl_state,
	    __ATOMIC_RELAXED) == GHOST_CL_ON))
		deliver_shard(ctx);
	CHECK_OBJ(hp, HTTP_MAGIC);
	hd = hp->hd;
	n = hp->nhd;
	/* (no NULL test: varnishd keeps no empty header slot below nhd) */
	for (u = HTTP_HDR_FIRST; u < n; u++)
		if (GHOST_UNLIKELY(maybe_tag(&hd[u])))
			break;
	if (GHOST_LIKELY(u == n))
		return;
	if (GHOST_UNLIKELY(!is_ban_line(&hd[u]))) {
		deliver_strip(hp, u, u);
		return;
	}
	ban = hd[u];
	hdf = hp->hdf;
	for (r = u + 1; r < n; r++) {
		if (GHOST_UNLIKELY(maybe_tag(&hd[r]))) {
			/* another candidate: the general strip from here,
			 * the ban line's record first (the lines' order) */
			if (hp->vsl != NULL)
				VSLbt(hp->vsl, (enum VSL_tag_e)(hp->logtag +
				    HTTP_HDR_UNSET - HTTP_HDR_METHOD), ban);
			deliver_strip(hp, r, r - 1);
			return;
		}
		hd[r - 1] = hd[r];
		hdf[r - 1] = hdf[r];
	}
	hp->nhd = (uint16_t)(n - 1);
	if (hp->vsl != NULL)
		VSLbt(hp->vsl, (enum VSL_tag_e)(hp->logtag + HTTP_HDR_UNSET -
		    HTTP_HDR_METHOD), ban);
}

/* ---- PURGE and BAN ------------------------------------------------------ */

/*
 * Why this PURGE or BAN cannot be done ("" when it can): a Host that
 * names one host, a URL that starts with "/" and has no quote, blank
 * or control character (BAN puts it in the ban expression as one
 * argument: varnishd splits the expression at blanks).
 */
const char *
ghost_inval_error(VRT_CTX)
{
	const char *host, *url, *p;

	if (!http_GetHdr(ctx->http_req, H_Host, &host))
		return ("invalidation needs a Host header");
	if (ghost_norm_host(ctx->ws, host) == NULL)
		return ("invalidation Host is not a hostname[:port]");
	url = ctx->http_req->hd[HTTP_HDR_URL].b;
	if (url == NULL || *url != '/')
		return ("invalidation URL must start with \"/\"");
	for (p = url; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '"')
			return ("invalidation URL has a quote, blank or "
			    "control character");
	return ("");
}

/*
 * BAN <regex>: every object of this host whose cache-key URL matches, a
 * lurker-friendly ban. "" when added, else the ban's error.
 */
const char *
ghost_inval_ban(VRT_CTX)
{
	const char *host, *err, *expr, *url;
	char name[BAN_NAME_LEN + 1];

	err = ghost_inval_error(ctx);
	if (*err != '\0')
		return (err);
	AN(http_GetHdr(ctx->http_req, H_Host, &host));
	host = ghost_norm_host(ctx->ws, host);
	AN(host);
	/*
	 * Unquoted: varnishd splits a ban at blanks (VAV_Parse, no escapes)
	 * and neither value has one, nor a quote (ghost_inval_error()), so
	 * each stays one argument, "&&" inside it included.
	 */
	url = ctx->http_req->hd[HTTP_HDR_URL].b;
	(void)ban_name(name, host);
	name[BAN_NAME_LEN] = '\0';
	expr = WS_Printf(ctx->ws, "obj.http.%s ~ %s", name, url);
	if (expr == NULL)
		return ("workspace overflow");
	err = VRT_ban_string(ctx, expr);
	if (err != NULL)
		return (err);
	/* objects tagged the old way (VMODs before 2026-12-06) */
	expr = WS_Printf(ctx->ws, "obj.http." BAN_HOST " == %s && "
	    "obj.http." BAN_URL " ~ %s", host, url);
	if (expr == NULL)
		return ("workspace overflow");
	err = VRT_ban_string(ctx, expr);
	return (err != NULL ? err : "");
}

/*
 * The cache-key URL a GET of this PURGE's URL is cached under: under the
 * policy of the route it takes (a decision like any other; when ghostd
 * cannot be asked, the URL itself). NULL: no room.
 */
static const char *
purge_url(VRT_CTX, struct ghost_vcl *gv)
{
	struct ghost_rq q;
	struct ghost_ans a;
	const char *url, *src;
	char why[256];

	url = ctx->http_req->hd[HTTP_HDR_URL].b;
	ghost_rq_init(ctx, &q, ctx->http_req);
	q.method = "GET";
	if (ghost_decide(ctx, gv, &q, &a, &src, why, sizeof why)) {
		VSLb(ctx->vsl, SLT_Error, "ghost: PURGE: %s; "
		    "purging the URL as sent", why);
		return (ghost_cache_url(ctx->ws, NULL, url));
	}
	return (ghost_cache_url(ctx->ws, &a, url));
}

/*
 * vcl_hash of a PURGE of a URL (ghost.hash()): the plain hash of its
 * objects (plain_rq()), exactly as ghost.hash() hashes a GET
 * of that URL with the Host in normal form, on listener GHOST_PLAIN_SOCK,
 * without https or cache_key headers. Looked up (always a miss), its
 * objects are purged by ghost_purge_plain() in vcl_miss. 0: not a PURGE
 * ghost.vcl accepts (it answers 400; vcl_hash runs anyway), hash it as
 * any request.
 */
int
ghost_purge_hash(VRT_CTX, struct ghost_vcl *gv)
{
	const char *host, *url;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (*ghost_inval_error(ctx) != '\0')
		return (0);	/* answered 400 by ghost.vcl */
	AN(http_GetHdr(ctx->http_req, H_Host, &host));
	host = ghost_norm_host(ctx->ws, host);
	AN(host);
	url = purge_url(ctx, gv);
	if (url == NULL) {
		VRT_fail(ctx, "ghost.hash(): workspace overflow");
		return (1);
	}
	hash1(ctx, url);
	hash1(ctx, host);
	hash_tail(ctx, 0, 0, 1, GHOST_PLAIN_SOCK);
	return (1);
}

/*
 * vcl_miss of a PURGE of a URL: purge every object under its plain hash
 * (all Vary variants; Soft-Purge: stale within their grace instead of
 * gone, as xkey.softpurge()); the count.
 */
VCL_INT
ghost_purge_plain(VRT_CTX)
{
	const char *sp;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	if (ctx->method != VCL_MET_MISS || ctx->http_req == NULL ||
	    strcmp(ctx->http_req->hd[HTTP_HDR_METHOD].b, "PURGE")) {
		VRT_fail(ctx, "ghost.purge_plain(): only in vcl_miss of a "
		    "PURGE");
		return (0);
	}
	if (http_GetHdr(ctx->http_req, "\013Soft-Purge:", &sp) &&
	    strcmp(sp, "0"))
		return (VRT_purge(ctx, 0, NAN, NAN));
	return (VRT_purge(ctx, 0, 0, 0));
}

/*
 * PURGE: the xkey keys to purge. With an xkey request header, one per tag
 * in it; else the URL key (purge_url()) that the objects of that URL
 * carry unless they are plain (those ghost_purge_plain() finds). "" when
 * the request is bad.
 */
const char *
ghost_inval_keys(VRT_CTX, struct ghost_vcl *gv)
{
	const char *host, *xk = NULL, *url = NULL;
	char *o, *w;
	unsigned sz;

	if (*ghost_inval_error(ctx) != '\0')
		return ("");
	AN(http_GetHdr(ctx->http_req, H_Host, &host));
	host = ghost_norm_host(ctx->ws, host);
	AN(host);
	if (!http_GetHdr(ctx->http_req, "\005xkey:", &xk))
		xk = NULL;
	if (xk == NULL && (url = purge_url(ctx, gv)) == NULL)
		return ("");
	sz = WS_ReserveAll(ctx->ws);
	o = w = WS_Reservation(ctx->ws);
	if (sz < 24) {
		WS_Release(ctx->ws, 0);
		return ("");
	}
	if (xk == NULL)
		w = tag_key(w, 'u', host, url, strlen(url));
	else
		w = tag_keys(w, o + sz - 1, host, xk);
	if (w == NULL || w == o) {
		WS_Release(ctx->ws, 0);
		return ("");
	}
	*w++ = '\0';
	WS_Release(ctx->ws, (unsigned)(w - o));
	return (o + 1);
}

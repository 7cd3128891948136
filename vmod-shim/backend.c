/*
 * Layer 2: native backends, one per endpoint per VCL, created on demand with
 * VRT_new_backend and named "ghost.<addr>:<port>" ("ghost.[<v6>]:<port>").
 *
 * The map holds the creator's reference, and it is the only one the VMOD
 * takes: route() hands VCL the bare pointer, and VCL's own assignment
 * (bereq.backend, req.backend_hint) counts. A backend leaves the map
 * (retiring, below) backend_idle_timeout + GHOST_DRAIN_MARGIN seconds
 * (65 s by default) before that reference is dropped, and a request uses the pointer for microseconds between
 * its lookup under be_lock and that assignment. A counted reference per
 * request as well cost two more locked refcount updates on the
 * director per fetch, on a mutex every worker shares (perf: ~1 us of
 * CPU per pass request on two cores, most of it in Lck__Lock and futex
 * wakeups).
 *
 * Retirement: a request that sees a newer config generation only records
 * it (gv->live_want) and wakes this VCL's reaper thread; the reaper sends
 * `live` with every endpoint held, in pages of gv->live_page endpoints
 * (one request each, answers in its own malloc'ed workspace), so neither
 * a request's workspace nor the frame limit bounds how many backends can
 * be retired, and no request waits for it. Those ghostd calls dead are
 * marked, and retired GHOST_DEAD_GRACE seconds later by the reaper
 * (requests that picked them from an older answer get that long to
 * connect); see sweep(). A request whose answer is newer than the `live`
 * that condemned an endpoint takes it back.
 *
 * Ceiling (gv->max_be, ghost.init's max_backends) on the backends this VCL
 * holds: those in the map plus those retired but not yet released (n_drain:
 * a retired backend keeps its memory map, VSC segment and idle descriptors
 * until its final release, see sweep()). A request that would create a backend
 * while the VCL holds max_be or more, and more than 3/4 of max_be are live,
 * marks the least recently used idle ones (unused for GHOST_IDLE s), up to
 * max_be/16 + 1 at a time, dead as above (a request that uses one in the
 * meantime takes it back). The VCL may hold up to max_be + max_be/16 + 1;
 * past that the request gets no backend (503, the reason in VSL) rather
 * than an unbounded number of backends. So the ceiling bounds maps and
 * descriptors; the live ones stay above 3/4 of it when they are in use,
 * and churn (new endpoints replacing idle ones) is bounded to about
 * max_be/4 + max_be/16 per drain time (65 s).
 *
 * Final release (drain()): the reaper drops the reference of each retired
 * backend whose drain time has come, the oldest created first, in slices
 * of GHOST_RELEASE_SLICE between its other work. Varnish frees the backend
 * then, or when the last fetch that holds it ends (its VSC segment, memory
 * map, connection pool reference): a backend a fetch uses is never freed
 * under it. Each release costs varnishd a walk of its list of VSM segments
 * up to the backend's own (see drain()); releasing the oldest first makes
 * that walk as short as any order can, and replacing the kept backends
 * that stand in front of many retired ones (be_replace(), right after
 * retirement, on the reaper) takes them out of the walk.
 *
 * VSC clusters: every native backend has a VSC segment (its VBE.*
 * counters). VRT_new_backend() gives each its own VSM cluster, i.e. a file
 * in varnishd's working directory and a memory map of at least a page, so
 * that vm.max_map_count bounded the number of backends. Like VCC's code for
 * a VCL's static backends (one VRT_VSM_Cluster_New() of ndirector x
 * VRT_backend_vsm_need()), the shim puts gv->vsc_per of them in one cluster
 * per VCL (struct ghost_vsc, vsc_take()/vsc_put()). Varnish 7.1.1
 * (common_vsmw.c): a cluster is a bump allocator whose overflow is an
 * assert (a child panic), so each creation reserves its slot under
 * vsc_mtx first; the cluster is counted (refs) by its creator and by each
 * segment in it; VSMW_Free() of its last segment after the creator's
 * VRT_VSM_Cluster_Destroy() unmaps and unlinks it. The creator's reference
 * is dropped once every slot was taken and every creation that took one
 * has returned (none is in flight then), or at vcl.discard for the
 * cluster still filling. Freeing a slot does not make it reusable: a
 * cluster goes away with its last backend.
 *
 * Locks: live_mtx -> be_lock, and reap_mtx alone (ghost.h has the whole
 * order). VRT_new_backend() and VRT_delete_backend() run with no ghost
 * lock held: inside them varnishd takes its own (vcl_mtx, the VSC and VSM
 * locks, backends_mtx, conn_pools_mtx, the director's), so no ghost lock
 * ever waits on a release; so do the reaper's replacements, which it may
 * create only while a request's VCL reference (gv->mk_ref, taken and
 * dropped outside reap_mtx) keeps the VCL from going cold, since
 * VRT_AddDirector() panics in a cold VCL. vsc_mtx is held only to
 * reserve a slot, and across VRT_VSM_Cluster_New() (varnishd's VSC and
 * VSM locks) when a new cluster is needed. VRT_Healthy(), which takes none, is the only
 * varnishd call made under be_lock.
 *
 * The map is a chained hash table that doubles when it holds more than
 * two entries per bucket (under be_lock's write side), so lookups stay
 * O(1) at any number of backends.
 *
 * A VCL that goes cold: the reaper releases every backend it holds
 * backend_idle_timeout + 1 s after its COLD event, and holds the VCL
 * against discard until then (ghost_be_cold()): never on the CLI
 * thread, where varnishd sleeps >= 20 ms per endpoint whose pool still
 * has idle connections, and the manager kills a child whose CLI answer
 * takes longer than cli_timeout.
 *
 * Endpoint health (docs/configuration.md "Endpoint health"). A route with
 * a probe (the answer's hp) gets, per endpoint, a backend with that probe,
 * keyed and named "addr:port~<id>" (id: ghostd's hash of the probe's
 * settings): an endpoint whose probe did not change across a reload
 * keeps its backend and the probe's history; a changed probe is another
 * key, so a new backend, and `live` retires the old one (it sends the id
 * with the endpoint). The plain "addr:port" backend of the same endpoint
 * is what the panic rule fetches through when the probe says sick (Varnish
 * never fetches from a backend its probe marks sick). Outlier state
 * (consecutive failures, ejection) lives in the entry, per VCL; requests
 * update it with atomics under be_lock's read side. The reaper looks at
 * every probed or ejected backend every GHOST_HEALTH_TICK seconds: it
 * counts and logs probe transitions and re-admissions, and keeps
 * gv->n_bad (sick or ejected backends), which lets a pick skip the health
 * mask while nothing is unhealthy.
 */

#include "config.h"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache_varnishd.h"	/* cache_param:
					   backend_idle_timeout */
#include "vsa.h"
#include "vsb.h"
#include "vtim.h"

#include "msgpack.h"
#include "ghost.h"
#include "conn.h"
#include "memo.h"
#include "backend.h"
#include "stats.h"

/* s of final releases per turn of the reaper (drain()) */
#define GHOST_RELEASE_SLICE	0.05

struct ghost_be {
	/* first what a fetch reads (ghost_be_get_memo()): two cache lines */
	unsigned		magic;
#define GHOST_BE_MAGIC		0x0be51ee7
	int			dead;		/* atomic */
	unsigned		used;		/* atomic: last use, s (the
						   fetch's ctx->now) */
	unsigned		port;
	VCL_BACKEND		dir;
	uint8_t			nl;		/* strlen(name) */
	char			name[64];	/* "addr:port" / "[addr]:port",
						   + "~<id>" with a probe */
	struct ghost_be		*next;
	uint64_t		hash;
	uint64_t		dead_gen;
	uint64_t		seq;		/* creation order, every VCL */
	double			drop_at;	/* draining: final release */
	uint32_t		probe;		/* probe id, 0: none */
	/* outlier detection (atomics) and what the reaper saw */
	unsigned		fails;		/* consecutive failures */
	uint64_t		eject_until;	/* mono ms, 0: not ejected */
	uint64_t		eject_end;	/* end of the last ejection */
	unsigned		n_eject;	/* its multiplier */
	int			seen_sick;	/* reaper only */
	int			old;		/* draining: a replaced one's
						   old backend (be_replace()) */
	char			addr[48];
};

/*
 * A new map entry, zeroed, on a cache line of its own: what a fetch reads
 * of it (ghost_be_get_memo(): magic to name) is then one or two lines.
 * NULL: out of memory. Freed with FREE_OBJ() (free()).
 */
static struct ghost_be *
be_alloc(void)
{
	struct ghost_be *e;
	void *p;

	if (posix_memalign(&p, 64, sizeof *e))
		return (NULL);
	e = p;
	INIT_OBJ(e, GHOST_BE_MAGIC);
	return (e);
}

/*
 * Creation order of native backends across every VCL: varnishd keeps
 * their VSC segments in a list in that order, and the final release of a
 * backend walks it from the oldest (see drain()).
 */
static uint64_t be_seq;

/* Monotonic milliseconds (ejection times). */
static uint64_t
mono_ms(void)
{
	return ((uint64_t)(VTIM_mono() * 1e3));
}

/*
 * The name of endpoint addr (al bytes, < 48) port under probe id (what
 * backend.list shows after "ghost."): "addr:port", "[v6]:port", then
 * "~xxxxxxxx" when id is not 0, built by hand into name (64 bytes). Only
 * when a backend is created: a lookup compares the fields (be_find()).
 */
static void
be_name(const char *addr, size_t al, unsigned port, uint32_t id, char *name)
{
	static const char hex[] = "0123456789abcdef";
	char d[10];
	size_t nl = 0;
	unsigned v = port, dl = 0;
	int v6, i;

	v6 = memchr(addr, ':', al) != NULL;
	if (v6)
		name[nl++] = '[';
	memcpy(name + nl, addr, al);
	nl += al;
	if (v6)
		name[nl++] = ']';
	name[nl++] = ':';
	do
		d[dl++] = (char)('0' + v % 10);
	while ((v /= 10) != 0 && dl < sizeof d);
	while (dl > 0)
		name[nl++] = d[--dl];
	if (id != 0) {
		name[nl++] = '~';
		for (i = 28; i >= 0; i -= 4)
			name[nl++] = hex[(id >> i) & 0xf];
	}
	name[nl] = '\0';
	assert(nl < 64);
}

/* The map key's hash of endpoint addr (al bytes) port under probe id. */
static uint64_t
be_hash(const char *addr, size_t al, unsigned port, uint32_t id)
{
	return (ghost_hash(addr, al, ((uint64_t)port << 32) | id));
}

/*
 * Entry address ea (NUL terminated) is addr (al bytes), compared in line:
 * after the hash, port and probe matched, an address of a few bytes,
 * where memcmp() is a call into code of its own (~2 instruction-cache
 * misses per fetch).
 */
static GHOST_INLINE int
be_addr_eq(const char *ea, const char *addr, size_t al)
{
	uint64_t x, y;
	size_t i;

	/* 8 bytes at a time (memcpy(): one load each), then the rest */
	for (i = 0; i + 8 <= al; i += 8) {
		memcpy(&x, ea + i, 8);
		memcpy(&y, addr + i, 8);
		if (x != y)
			return (0);
	}
	for (; i < al; i++)
		if (ea[i] != addr[i])
			return (0);
	return (ea[al] == '\0');
}

static struct ghost_be *
be_find(const struct ghost_vcl *gv, const char *addr, size_t al,
    unsigned port, uint32_t id, uint64_t h)
{
	struct ghost_be *e;

	if (gv->be_nb == 0)
		return (NULL);
	for (e = gv->be_hash[h & (gv->be_nb - 1)]; e != NULL; e = e->next) {
		CHECK_OBJ_NOTNULL(e, GHOST_BE_MAGIC);
		if (e->hash == h && e->port == port && e->probe == id &&
		    be_addr_eq(e->addr, addr, al))
			return (e);
	}
	return (NULL);
}

/*
 * Make room for one more entry: double the bucket array when the map
 * holds two entries per bucket. Under be_lock's write side. Returns -1
 * only when there is no array at all and none can be allocated (a failed
 * doubling keeps the old array: longer chains, still correct).
 */
static int
be_grow(struct ghost_vcl *gv)
{
	struct ghost_be **nh, *e, *n;
	unsigned nb, b;

	if (gv->be_nb != 0 && gv->n_be < 2 * gv->be_nb)
		return (0);
	nb = gv->be_nb == 0 ? GHOST_BE_BUCKETS : 2 * gv->be_nb;
	nh = calloc(nb, sizeof *nh);
	if (nh == NULL)
		return (gv->be_nb == 0 ? -1 : 0);
	for (b = 0; b < gv->be_nb; b++) {
		for (e = gv->be_hash[b]; e != NULL; e = n) {
			n = e->next;
			e->next = nh[e->hash & (nb - 1)];
			nh[e->hash & (nb - 1)] = e;
		}
	}
	free(gv->be_hash);
	gv->be_hash = nh;
	gv->be_nb = nb;
	return (0);
}

/* A VSM cluster that takes the VSC segments of up to n backends. */
struct ghost_vsc {
	unsigned		magic;
#define GHOST_VSC_MAGIC		0x75c0c105
	struct vsmw_cluster	*vc;		/* the creator's reference */
	unsigned		n;		/* slots */
	unsigned		taken;		/* under vsc_mtx */
	unsigned		done;		/* creations returned, ditto */
};

/*
 * Per cluster: gv->vsc_per, or as many VSC_vbe segments as fill
 * GHOST_VSC_PAGES pages (VSMW_NewCluster() adds 16 bytes in front,
 * VSM_CLUSTER_OFFSET, and rounds up to a page).
 */
static unsigned
vsc_slots(VRT_CTX, const struct ghost_vcl *gv)
{
	size_t need, room;

	if (gv->vsc_per > 0)
		return (gv->vsc_per);
	need = VRT_backend_vsm_need(ctx);
	room = (size_t)GHOST_VSC_PAGES * (size_t)getpagesize() - 16;
	return (need > 0 && room / need > 1 ? (unsigned)(room / need) : 1);
}

/*
 * Reserve the slot of one backend's VSC segment in this VCL's cluster
 * with room, taking a new cluster when none has room. NULL: out of memory
 * (the backend gets its own cluster, as with VRT_new_backend()).
 */
static struct ghost_vsc *
vsc_take(VRT_CTX, struct ghost_vcl *gv)
{
	struct ghost_vsc *c;

	Lck_Lock(&gv->vsc_mtx);
	c = gv->vsc_cur;
	if (c == NULL) {
		ALLOC_OBJ(c, GHOST_VSC_MAGIC);
		if (c == NULL) {
			Lck_Unlock(&gv->vsc_mtx);
			return (NULL);
		}
		c->n = vsc_slots(ctx, gv);
		c->vc = VRT_VSM_Cluster_New(ctx,
		    c->n * VRT_backend_vsm_need(ctx));
		AN(c->vc);
		gv->vsc_cur = c;
	}
	CHECK_OBJ(c, GHOST_VSC_MAGIC);
	assert(c->taken < c->n);
	if (++c->taken == c->n)
		gv->vsc_cur = NULL;	/* full: the next takes a new one */
	Lck_Unlock(&gv->vsc_mtx);
	return (c);
}

/*
 * The creation that took a slot of c returned (whether or not its segment
 * was allocated). The last one of a full cluster drops the creator's
 * reference: no creation is in flight on it any more, and varnishd frees
 * the cluster with the last segment in it (or now, when all are gone).
 */
static void
vsc_put(VRT_CTX, struct ghost_vcl *gv, struct ghost_vsc *c)
{
	int last;

	if (c == NULL)
		return;
	CHECK_OBJ_NOTNULL(c, GHOST_VSC_MAGIC);
	Lck_Lock(&gv->vsc_mtx);
	assert(c->done < c->taken);
	last = ++c->done == c->n;
	Lck_Unlock(&gv->vsc_mtx);
	if (!last)
		return;
	VRT_VSM_Cluster_Destroy(ctx, &c->vc);
	FREE_OBJ(c);
}

static VCL_BACKEND
be_create(VRT_CTX, struct ghost_vcl *gv, const char *addr, const char *name,
    unsigned port, const struct ghost_hp *hp)
{
	struct ghost_vsc *vsc;
	struct vrt_endpoint vep;
	struct vrt_backend vrt;
	struct vrt_backend_probe vbp;
	char url[1025], req[1400];
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	char vname[80];
	VCL_BACKEND be;

	INIT_OBJ(&vep, VRT_ENDPOINT_MAGIC);
	memset(&sin, 0, sizeof sin);
	memset(&sin6, 0, sizeof sin6);
	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		vep.ipv4 = VSA_Malloc(&sin, sizeof sin);
		if (vep.ipv4 == NULL)
			return (NULL);
	} else if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1) {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		vep.ipv6 = VSA_Malloc(&sin6, sizeof sin6);
		if (vep.ipv6 == NULL)
			return (NULL);
	} else {
		VSLb(ctx->vsl, SLT_Error, "ghost: bad endpoint address %s",
		    addr);
		return (NULL);
	}
	snprintf(vname, sizeof vname, "ghost.%s", name);
	INIT_OBJ(&vrt, VRT_BACKEND_MAGIC);
	vrt.endpoint = &vep;
	vrt.vcl_name = vname;
	vrt.hosthdr = addr;
	if (hp != NULL && hp->id != 0) {
		/* Varnish copies the probe (VBP_Insert) */
		INIT_OBJ(&vbp, VRT_BACKEND_PROBE_MAGIC);
		snprintf(url, sizeof url, "%.*s", (int)hp->u_len, hp->u);
		vbp.url = url;
		if (hp->h_len > 0) {
			/* Varnish's own request, with the route's Host */
			snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: "
			    "%.*s\r\nConnection: close\r\n\r\n", url,
			    (int)hp->h_len, hp->h);
			vbp.request = req;
		}
		vbp.interval = hp->iv_ms * 1e-3;
		vbp.timeout = hp->to_ms * 1e-3;
		vbp.window = hp->w;
		vbp.threshold = hp->th;
		vbp.initial = hp->in;
		vbp.exp_status = hp->x;
		vrt.probe = &vbp;
	}
	vsc = vsc_take(ctx, gv);
	be = VRT_new_backend_clustered(ctx, vsc != NULL ? vsc->vc : NULL,
	    &vrt);
	vsc_put(ctx, gv, vsc);
	free(TRUST_ME(vep.ipv4));
	free(TRUST_ME(vep.ipv6));
	return (be);
}

static int
be_used_cmp(const void *a, const void *b)
{
	const struct ghost_be *x = *(struct ghost_be * const *)a;
	const struct ghost_be *y = *(struct ghost_be * const *)b;

	return (x->used < y->used ? -1 : x->used > y->used);
}

/*
 * The map is at the ceiling: mark the least recently used idle backends
 * dead (at most max_be/16 + 1), for the reaper to retire. Returns -1 when
 * this request must not create one: the map is past the hard limit, or
 * nothing could be marked and no one else is marking.
 */
/*
 * Is a backend last used at used (ghost_be_get()'s now_s, wall-clock
 * seconds) idle at now_s? Unused for GHOST_IDLE s; or used "later" than
 * now by more than a minute: the wall clock was stepped back, and such a
 * backend would otherwise look busy until the clock caught up.
 */
static inline int
be_idle(unsigned used, unsigned now_s)
{
	return (used + GHOST_IDLE <= now_s || used > now_s + 60);
}

static int
be_evict(VRT_CTX, struct ghost_vcl *gv, unsigned now_s)
{
	struct ghost_be **idle, *e;
	unsigned b, n = 0, want, hard, nbe, ndrain, live, marked = 0;
	int scan;

	hard = gv->max_be + gv->max_be / 16 + 1;
	if (Lck_Trylock(&gv->live_mtx)) {
		/* the reaper or another request is at it: within headroom */
		PTOK(pthread_rwlock_rdlock(&gv->be_lock));
		nbe = gv->n_be;
		PTOK(pthread_rwlock_unlock(&gv->be_lock));
		ndrain = __atomic_load_n(&gv->n_drain, __ATOMIC_RELAXED);
		if (nbe + ndrain < hard)
			return (0);
		GHOST_STAT(be_ceiling);
		VSLb(ctx->vsl, SLT_Error, "ghost: backend ceiling: %u native "
		    "backends (%u retired, draining), max_backends %u",
		    nbe + ndrain, ndrain, gv->max_be);
		return (-1);
	}
	/* entries leave the map only under live_mtx: stable until unlock */
	/*
	 * Mark only while the live ones (not marked) are more than 3/4 of
	 * the ceiling: marking does not make room until the release,
	 * 65 s later, so marking whenever the ceiling is full would retire
	 * every idle backend under a stream of new endpoints. The rest of
	 * the ceiling is for those draining.
	 */
	PTOK(pthread_rwlock_rdlock(&gv->be_lock));
	nbe = gv->n_be;
	live = nbe - __atomic_load_n(&gv->n_dead, __ATOMIC_RELAXED);
	scan = live > gv->max_be - gv->max_be / 4;
	idle = scan ? malloc((nbe + 1) * sizeof *idle) : NULL;
	if (idle != NULL)
		for (b = 0; b < gv->be_nb; b++)
			for (e = gv->be_hash[b]; e != NULL; e = e->next)
				if (!__atomic_load_n(&e->dead,
				    __ATOMIC_RELAXED) &&
				    be_idle(__atomic_load_n(&e->used,
				    __ATOMIC_RELAXED), now_s))
					idle[n++] = e;
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	if (n > 0) {
		want = gv->max_be / 16 + 1;
		if (n > want)
			qsort(idle, n, sizeof *idle, be_used_cmp);
		PTOK(pthread_rwlock_wrlock(&gv->be_lock));
		for (b = 0; b < n && marked < want; b++) {
			e = idle[b];
			/* not used since the scan: still idle */
			if (e->dead || !be_idle(__atomic_load_n(&e->used,
			    __ATOMIC_RELAXED), now_s))
				continue;
			__atomic_store_n(&e->dead, 1, __ATOMIC_RELAXED);
			e->dead_gen = 0;	/* any use takes it back */
			__atomic_add_fetch(&gv->n_dead, 1, __ATOMIC_RELAXED);
			marked++;
		}
		if (marked > 0)
			__atomic_store_n(&gv->dead_deadline, (uint64_t)(
			    (VTIM_real() + GHOST_DEAD_GRACE) * 1e3),
			    __ATOMIC_RELAXED);
		PTOK(pthread_rwlock_unlock(&gv->be_lock));
	}
	Lck_Unlock(&gv->live_mtx);
	free(idle);
	if (marked > 0) {
		VSLb(ctx->vsl, SLT_VCL_Log, "ghost: %u native backends, "
		    "max_backends %u: retiring the %u least recently used",
		    nbe, gv->max_be, marked);
		Lck_Lock(&gv->reap_mtx);
		PTOK(pthread_cond_signal(&gv->reap_cond));
		Lck_Unlock(&gv->reap_mtx);
	}
	/* marked ones still hold their resources until released */
	ndrain = __atomic_load_n(&gv->n_drain, __ATOMIC_RELAXED);
	if (nbe + ndrain < hard)
		return (0);
	GHOST_STAT(be_ceiling);
	VSLb(ctx->vsl, SLT_Error, "ghost: backend ceiling: %u native "
	    "backends (%u retired, draining), max_backends %u%s",
	    nbe + ndrain, ndrain, gv->max_be, scan && marked == 0 ?
	    ", none idle" : "");
	return (-1);
}

/*
 * ghost_be_get() for an endpoint not in the map (h: be_hash() of it; full:
 * the VCL holds max_backends): create its backend, out of line
 * (GHOST_COLD: the fetch path only looks up).
 */
static VCL_BACKEND GHOST_COLD
be_get_new(VRT_CTX, struct ghost_vcl *gv, const char *addr, size_t al,
    unsigned port, const struct ghost_hp *hp, uint64_t h, unsigned now_s,
    int full)
{
	struct ghost_be *e, *n;
	char name[64], a[48];
	uint32_t id = hp != NULL ? hp->id : 0;
	VCL_BACKEND mine, be;

	if (full && be_evict(ctx, gv, now_s))
		return (NULL);

	/* Create outside the lock (it takes ~0.5 ms), then publish. */
	memcpy(a, addr, al);
	a[al] = '\0';
	be_name(a, al, port, id, name);
	mine = be_create(ctx, gv, a, name, port, hp);
	if (mine == NULL)
		return (NULL);
	n = be_alloc();
	if (n == NULL) {
		VRT_delete_backend(ctx, &mine);
		return (NULL);
	}
	n->seq = __atomic_add_fetch(&be_seq, 1, __ATOMIC_RELAXED);
	PTOK(pthread_rwlock_wrlock(&gv->be_lock));
	e = be_find(gv, a, al, port, id, h);
	if (e == NULL && be_grow(gv) == 0) {
		n->hash = h;
		n->dir = mine;
		n->port = port;
		n->probe = id;
		if (id != 0)
			__atomic_add_fetch(&gv->n_probed, 1, __ATOMIC_RELAXED);
		n->used = now_s;
		strcpy(n->addr, a);
		strcpy(n->name, name);
		n->nl = (uint8_t)strlen(name);
		n->next = gv->be_hash[h & (gv->be_nb - 1)];
		gv->be_hash[h & (gv->be_nb - 1)] = n;
		gv->n_be++;
		GHOST_STAT(be_created);
		GHOST_GAUGE(be_live, 1);
		e = n;
		n = NULL;
		mine = NULL;
	}
	be = e != NULL ? e->dir : NULL;
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	if (mine != NULL)	/* lost a race, or out of memory */
		VRT_delete_backend(ctx, &mine);
	if (n != NULL)
		FREE_OBJ(n);
	return (be);
}

/*
 * The entry's last use (whole seconds: be_idle() judges it),
 * written only when the second changed: most fetches only read the line.
 */
static GHOST_INLINE void
be_touch(struct ghost_be *e, unsigned now_s)
{
	if (__atomic_load_n(&e->used, __ATOMIC_RELAXED) != now_s)
		__atomic_store_n(&e->used, now_s, __ATOMIC_RELAXED);
}

/*
 * ghost_be_get(); with ref (a memo entry a memoised answer is read from,
 * held by the caller) the entry found is cached in the memo entry's side
 * words (ghost_be_get_memo()).
 */
static VCL_BACKEND
be_get(VRT_CTX, struct ghost_vcl *gv, const char *addr, size_t al,
    unsigned port, uint64_t gen, const struct ghost_hp *hp, void *ref)
{
	struct ghost_be *e;
	uint64_t h;
	uint32_t id = hp != NULL ? hp->id : 0;
	unsigned now_s;
	int full = 0;
	VCL_BACKEND be = NULL;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	if (GHOST_UNLIKELY(al == 0 || al >= sizeof e->addr))
		return (NULL);
	h = be_hash(addr, al, port, id);

	/*
	 * The task's time (VCL's now), not a clock read per fetch: `used`
	 * only orders idle backends for be_evict(), to the second, and
	 * every value it is compared with comes from here too.
	 */
	now_s = (unsigned)ctx->now;
	PTOK(pthread_rwlock_rdlock(&gv->be_lock));
	e = be_find(gv, addr, al, port, id, h);
	if (GHOST_LIKELY(e != NULL)) {
		if (GHOST_UNLIKELY(__atomic_load_n(&e->dead,
		    __ATOMIC_RELAXED)) && gen > e->dead_gen)
			__atomic_store_n(&e->dead, 0, __ATOMIC_RELAXED);
		be_touch(e, now_s);
		be = e->dir;
		/* the epoch under the read side: e is in the map at it */
		if (ref != NULL)
			ghost_memo_side_put(ref, (uint64_t)(uintptr_t)e,
			    __atomic_load_n(&gv->be_epoch, __ATOMIC_RELAXED));
	} else
		/* held: in the map (marked or not) and retired, not yet
		 * released */
		full = gv->max_be > 0 && gv->n_be +
		    __atomic_load_n(&gv->n_drain, __ATOMIC_RELAXED) >=
		    gv->max_be;
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	if (GHOST_LIKELY(e != NULL))
		return (be);
	return (be_get_new(ctx, gv, addr, al, port, hp, h, now_s, full));
}

VCL_BACKEND
ghost_be_get(VRT_CTX, struct ghost_vcl *gv, const char *addr, size_t al,
    unsigned port, uint64_t gen, const struct ghost_hp *hp)
{
	return (be_get(ctx, gv, addr, al, port, gen, hp, NULL));
}

/*
 * ghost_be_get() for the one endpoint of a memoised answer read from memo
 * entry ref (held by the caller: ghost_memo_ref()): the map entry the
 * last such call found, cached in the entry's side words (memo.h) with
 * the map's epoch then, is used without a hash, lock or walk while the
 * epoch is unchanged and the entry not marked dead; else the map is
 * searched as usual (be_get()), and the cache written again.
 *
 * Why a cached entry may be read without be_lock: the side words pair an
 * entry with the epoch be_get() read under be_lock's read side while it
 * found that entry in the map, so the entry was in the map at that epoch.
 * Every unlink from the map (sweep(), be_take_all()) bumps gv->be_epoch
 * under the write side, and the epoch only grows (64 bits: it never
 * wraps), so a reader that loads the same epoch afterwards knows the
 * entry was still in the map at that load. An entry that leaves the map
 * after it is freed no sooner than its final release
 * (backend_idle_timeout + GHOST_DRAIN_MARGIN s later, drain()), or when
 * no request can run in this VCL (cold, discard: be_take_all()); the
 * request uses it for microseconds, as it uses the director the map
 * hands out (this file's first comment). The fields read without the
 * lock are atomics: dir (be_replace() swaps it; either director is held
 * until its release), dead and used (as under the read side). A dead
 * entry takes the slow path, which takes it back as ghost_be_get() does.
 * The memo entry cannot go away meanwhile: the caller holds it.
 *
 * *name (NULL from the slow path): the entry's name, nl bytes, in a
 * 64-byte array (ghost.<name> is the backend's vcl_name, be_create()),
 * on the entry's lines this reads anyway.
 */
VCL_BACKEND GHOST_HOT
ghost_be_get_memo(VRT_CTX, struct ghost_vcl *gv, const char *addr,
    size_t al, unsigned port, uint64_t gen, const struct ghost_hp *hp,
    void *ref, const char **name, size_t *nl)
{
	struct ghost_be *e;
	uint64_t w[2];
	VCL_BACKEND be;

	*name = NULL;
	if (GHOST_LIKELY(ghost_memo_side_get(ref, w)) &&
	    w[1] == __atomic_load_n(&gv->be_epoch, __ATOMIC_ACQUIRE)) {
		e = (struct ghost_be *)(uintptr_t)w[0];
		CHECK_OBJ_NOTNULL(e, GHOST_BE_MAGIC);
		if (GHOST_LIKELY(!__atomic_load_n(&e->dead,
		    __ATOMIC_RELAXED))) {
			be_touch(e, (unsigned)ctx->now);
			*name = e->name;
			*nl = e->nl;
			be = __atomic_load_n(&e->dir, __ATOMIC_ACQUIRE);
			/* VCL's assignment reads it next (VRT_Assign_Backend) */
			__builtin_prefetch(be);
			return (be);
		}
	}
	return (be_get(ctx, gv, addr, al, port, gen, hp, ref));
}

/* ---- endpoint health ------------------------------------------------ */

/* GHOST_BE_SICK | GHOST_BE_EJECTED of entry e (be_lock held). */
static int
be_state(VRT_CTX, const struct ghost_be *e, uint64_t now)
{
	int st = 0;

	if (e->probe != 0 && !VRT_Healthy(ctx, e->dir, NULL))
		st |= GHOST_BE_SICK;
	if (__atomic_load_n(&e->eject_until, __ATOMIC_RELAXED) > now)
		st |= GHOST_BE_EJECTED;
	return (st);
}

int
ghost_be_state(VRT_CTX, struct ghost_vcl *gv, const char *addr, size_t al,
    unsigned port, uint32_t id)
{
	struct ghost_be *e;
	uint64_t h;
	int st = 0;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	if (al == 0 || al >= 48)
		return (0);
	h = be_hash(addr, al, port, id);
	PTOK(pthread_rwlock_rdlock(&gv->be_lock));
	e = be_find(gv, addr, al, port, id, h);
	if (e != NULL)
		st = be_state(ctx, e, mono_ms());
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	return (st);
}

/*
 * Visit the endpoints of groups [g, g_end) in flat order under be_lock's
 * read side: f(ctx, the backend or NULL (none yet), flat, priv).
 */
typedef void be_visit_f(VRT_CTX, const struct ghost_be *, unsigned flat,
    void *priv);

static void
be_visit(VRT_CTX, struct ghost_vcl *gv, const uint8_t *g, const uint8_t *g_end,
    uint32_t id, be_visit_f *f, void *priv)
{
	struct mp_r r = { g, g_end, 0 };
	const char *a;
	size_t al;
	uint32_t n, m, i, j;
	unsigned port, flat = 0;

	n = mp_r_arr(&r);
	for (i = 0; i < n && !r.err; i++) {
		(void)mp_r_arr(&r);
		(void)mp_r_uint(&r);
		m = mp_r_arr(&r);
		for (j = 0; j < m && !r.err; j++, flat++) {
			(void)mp_r_arr(&r);
			mp_r_str(&r, &a, &al);
			port = (unsigned)mp_r_int(&r);
			if (r.err || al == 0 || al >= 48) {
				f(ctx, NULL, flat, priv);
				continue;
			}
			f(ctx, be_find(gv, a, al, port, id,
			    be_hash(a, al, port, id)), flat, priv);
		}
	}
}

struct states {
	unsigned char	*out;
	unsigned	n, nsick, nej;
	uint64_t	now;
};

static void v_matchproto_(be_visit_f)
visit_state(VRT_CTX, const struct ghost_be *e, unsigned flat, void *priv)
{
	struct states *s = priv;
	int st;

	if (flat >= s->n)
		return;
	st = e != NULL ? be_state(ctx, e, s->now) : 0;
	s->out[flat] = (unsigned char)st;
	s->nsick += (st & GHOST_BE_SICK) != 0;
	s->nej += (st & GHOST_BE_EJECTED) != 0;
}

void
ghost_be_states(VRT_CTX, struct ghost_vcl *gv, const uint8_t *g,
    const uint8_t *g_end, uint32_t id, unsigned char *out, unsigned n,
    unsigned *nsick, unsigned *nej)
{
	struct states s = { out, n, 0, 0, mono_ms() };

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	memset(out, 0, n);
	PTOK(pthread_rwlock_rdlock(&gv->be_lock));
	be_visit(ctx, gv, g, g_end, id, visit_state, &s);
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	*nsick = s.nsick;
	*nej = s.nej;
}

static void v_matchproto_(be_visit_f)
visit_ejected(VRT_CTX, const struct ghost_be *e, unsigned flat, void *priv)
{
	struct states *s = priv;

	(void)ctx;
	(void)flat;
	s->n++;
	if (e != NULL && __atomic_load_n(&e->eject_until,
	    __ATOMIC_RELAXED) > s->now)
		s->nej++;
}

void
ghost_be_outcome(VRT_CTX, struct ghost_vcl *gv, const struct ghost_ans *a,
    const char *addr, size_t al, unsigned port, uint32_t id, int failed)
{
	struct ghost_be *e;
	struct states s;
	char name[64];	/* for the log only */
	uint64_t h, now, until, old, k, dur;
	unsigned n;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	if (a->ol_n == 0 || al == 0 || al >= 48)
		return;
	h = be_hash(addr, al, port, id);
	now = mono_ms();
	PTOK(pthread_rwlock_rdlock(&gv->be_lock));
	e = be_find(gv, addr, al, port, id, h);
	if (e == NULL || !failed) {
		if (e != NULL && __atomic_load_n(&e->fails, __ATOMIC_RELAXED))
			__atomic_store_n(&e->fails, 0, __ATOMIC_RELAXED);
		PTOK(pthread_rwlock_unlock(&gv->be_lock));
		return;
	}
	n = __atomic_add_fetch(&e->fails, 1, __ATOMIC_RELAXED);
	old = __atomic_load_n(&e->eject_until, __ATOMIC_RELAXED);
	if (n < a->ol_n || old > now) {
		PTOK(pthread_rwlock_unlock(&gv->be_lock));
		return;
	}
	/* at most ol_mp % of the answer's endpoints ejected; one always */
	memset(&s, 0, sizeof s);
	s.now = now;
	be_visit(ctx, gv, a->g, a->g_end, id, visit_ejected, &s);
	if (s.nej > 0 && (uint64_t)(s.nej + 1) * 100 > (uint64_t)a->ol_mp * s.n) {
		__atomic_store_n(&e->fails, 0, __ATOMIC_RELAXED);
		PTOK(pthread_rwlock_unlock(&gv->be_lock));
		GHOST_STAT(outlier_capped);
		be_name(addr, al, port, id, name);
		VSLb(ctx->vsl, SLT_VCL_Log, "ghost: outlier: not ejecting "
		    "ghost.%s after %u failures: %u of %u endpoints ejected, "
		    "max_ejection_percent %u", name, n, s.nej, s.n, a->ol_mp);
		return;
	}
	/* the n-th ejection in a row lasts n times the base, at most max */
	k = e->eject_end + a->ol_me < now ? 1 :
	    (uint64_t)__atomic_load_n(&e->n_eject, __ATOMIC_RELAXED) + 1;
	dur = a->ol_be * k;
	if (dur > a->ol_me || dur / k != a->ol_be)
		dur = a->ol_me;
	until = now + dur;
	if (!__atomic_compare_exchange_n(&e->eject_until, &old, until, 0,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		/* another request ejected it just now */
		PTOK(pthread_rwlock_unlock(&gv->be_lock));
		return;
	}
	__atomic_store_n(&e->n_eject, (unsigned)k, __ATOMIC_RELAXED);
	__atomic_store_n(&e->eject_end, until, __ATOMIC_RELAXED);
	__atomic_store_n(&e->fails, 0, __ATOMIC_RELAXED);
	__atomic_add_fetch(&gv->n_ejected, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&gv->n_bad, 1, __ATOMIC_RELAXED);
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	GHOST_STAT(outlier_ejected);
	be_name(addr, al, port, id, name);
	VSLb(ctx->vsl, SLT_VCL_Log, "ghost: outlier: ejected ghost.%s for "
	    "%.3fs (%u consecutive failures, ejection %u)", name,
	    (double)dur * 1e-3, n, (unsigned)k);
	Lck_Lock(&gv->reap_mtx);
	PTOK(pthread_cond_signal(&gv->reap_cond));
	Lck_Unlock(&gv->reap_mtx);
}

/*
 * The reaper's look at every backend (when any has a probe or is
 * ejected): probe transitions and re-admissions are counted and logged,
 * gv->n_bad and n_ejected recomputed.
 */
static void
health_tick(VRT_CTX, struct ghost_vcl *gv)
{
	struct ghost_be *e;
	uint64_t now = mono_ms(), until;
	unsigned b, bad = 0, ej = 0;
	int sick;

	PTOK(pthread_rwlock_rdlock(&gv->be_lock));
	for (b = 0; b < gv->be_nb; b++) {
		for (e = gv->be_hash[b]; e != NULL; e = e->next) {
			sick = e->probe != 0 && !VRT_Healthy(ctx, e->dir, NULL);
			if (sick != e->seen_sick) {
				e->seen_sick = sick;
				if (sick)
					GHOST_STAT(probe_sick);
				else
					GHOST_STAT(probe_healthy);
				VSL(SLT_VCL_Log, 0, "ghost: health: ghost.%s "
				    "went %s (%s)", e->name, sick ? "sick" :
				    "healthy", gv->vcl_name != NULL ?
				    gv->vcl_name : "");
			}
			until = __atomic_load_n(&e->eject_until,
			    __ATOMIC_RELAXED);
			if (until != 0 && until <= now &&
			    __atomic_compare_exchange_n(&e->eject_until,
			    &until, 0, 0, __ATOMIC_RELAXED,
			    __ATOMIC_RELAXED)) {
				GHOST_STAT(outlier_readmitted);
				VSL(SLT_VCL_Log, 0, "ghost: outlier: ghost.%s "
				    "re-admitted after ejection %u (%s)",
				    e->name, __atomic_load_n(&e->n_eject,
				    __ATOMIC_RELAXED), gv->vcl_name != NULL ?
				    gv->vcl_name : "");
			}
			if (until > now)
				ej++;
			if (sick || until > now)
				bad++;
		}
	}
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	__atomic_store_n(&gv->n_ejected, ej, __ATOMIC_RELAXED);
	__atomic_store_n(&gv->n_bad, bad, __ATOMIC_RELAXED);
}

/* ---- retirement ----------------------------------------------------- */

struct live_arg {
	unsigned		magic;
#define LIVE_ARG_MAGIC		0x11fe0a59
	struct ghost_be		**eps;
	unsigned		n;
};

static void
enc_live(struct mp_w *w, void *arg)
{
	const struct live_arg *la;
	unsigned i;

	CAST_OBJ_NOTNULL(la, arg, LIVE_ARG_MAGIC);
	mp_w_map(w, 2);
	mp_w_cstr(w, "t");
	mp_w_cstr(w, "live");
	mp_w_cstr(w, "eps");
	mp_w_arr(w, la->n);
	for (i = 0; i < la->n; i++) {
		/* [addr, port] or, with a probe, [addr, port, id] */
		mp_w_arr(w, la->eps[i]->probe != 0 ? 3 : 2);
		mp_w_cstr(w, la->eps[i]->addr);
		mp_w_uint(w, la->eps[i]->port);
		if (la->eps[i]->probe != 0)
			mp_w_uint(w, la->eps[i]->probe);
	}
}

/* The fields of a live answer. */
struct live_ans {
	const char		*t;
	size_t			tl;
	uint64_t		*gen;
	const uint8_t		*dead, *dead_end;
};

static int v_matchproto_(mp_field_f)
live_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct live_ans *a = priv;

	if (mp_streq(k, kl, "t"))
		mp_r_str(r, &a->t, &a->tl);
	else if (mp_streq(k, kl, "gen"))
		*a->gen = mp_r_uint(r);
	else if (mp_streq(k, kl, "dead")) {
		a->dead = r->p;
		mp_skip(r);
		a->dead_end = r->p;
	} else
		return (0);
	return (1);
}

/* Decode {"t":"live","gen":G,"dead":[i..]}; mark the dead. */
static int
live_answer(struct ghost_vcl *gv, const struct live_arg *la,
    const uint8_t *p, size_t l, uint64_t *gen, double now)
{
	struct mp_r r = { p, p + l, 0 };
	struct live_ans a;
	uint32_t n;
	int64_t i;
	unsigned ndead = 0;

	memset(&a, 0, sizeof a);
	a.gen = gen;
	mp_r_fields(&r, live_field, &a);
	if (r.err || a.t == NULL || !mp_streq(a.t, a.tl, "live"))
		return (-1);
	if (a.dead == NULL)
		return (0);
	r.p = a.dead;
	r.end = a.dead_end;
	n = mp_r_arr(&r);
	PTOK(pthread_rwlock_wrlock(&gv->be_lock));
	while (n-- > 0 && !r.err) {
		i = mp_r_int(&r);
		if (r.err || i < 0 || (uint64_t)i >= la->n)
			continue;
		CHECK_OBJ_NOTNULL(la->eps[i], GHOST_BE_MAGIC);
		if (!la->eps[i]->dead) {
			__atomic_store_n(&la->eps[i]->dead, 1,
			    __ATOMIC_RELAXED);
			la->eps[i]->dead_gen = *gen;
			__atomic_add_fetch(&gv->n_dead, 1, __ATOMIC_RELAXED);
			ndead++;
		}
	}
	if (ndead > 0)
		__atomic_store_n(&gv->dead_deadline,
		    (uint64_t)((now + GHOST_DEAD_GRACE) * 1e3), __ATOMIC_RELAXED);
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	if (ndead > 0) {
		Lck_Lock(&gv->reap_mtx);
		PTOK(pthread_cond_signal(&gv->reap_cond));
		Lck_Unlock(&gv->reap_mtx);
	}
	return (0);
}

/* Order of creation: oldest first (see drain()). */
static int
be_seq_cmp(const void *a, const void *b)
{
	const struct ghost_be *x = *(struct ghost_be * const *)a;
	const struct ghost_be *y = *(struct ghost_be * const *)b;

	return (x->seq < y->seq ? -1 : x->seq > y->seq);
}

/*
 * Put n entries of list l (linked by next) in an array sorted oldest
 * first. NULL when out of memory (the caller keeps the list order).
 */
static struct ghost_be **
be_sorted(struct ghost_be *l, unsigned n)
{
	struct ghost_be **v;
	unsigned i = 0;

	if (n == 0)
		return (NULL);
	v = malloc(n * sizeof *v);
	if (v == NULL)
		return (NULL);
	for (; l != NULL && i < n; l = l->next)
		v[i++] = l;
	assert(i == n);
	qsort(v, n, sizeof *v, be_seq_cmp);
	return (v);
}

/* The i-th of a batch: v[i] when sorted, else the next of list *l. */
static struct ghost_be *
be_nth(struct ghost_be * const *v, unsigned i, struct ghost_be **l)
{
	struct ghost_be *e;

	if (v != NULL)
		return (v[i]);
	e = *l;
	CHECK_OBJ_NOTNULL(e, GHOST_BE_MAGIC);
	*l = e->next;
	return (e);
}

static int
u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x < y ? -1 : x > y);
}

/* How many of the n sorted values in v are greater than k. */
static unsigned
n_above(const uint64_t *v, unsigned n, uint64_t k)
{
	unsigned lo = 0, hi = n, m;

	while (lo < hi) {
		m = lo + (hi - lo) / 2;
		if (v[m] <= k)
			lo = m + 1;
		else
			hi = m;
	}
	return (n - lo);
}

/*
 * Before the n backends of list gone (just retired, counted in n_drain)
 * are queued: give a new native backend to each kept one that many
 * retired ones (this batch and those still draining) were created after,
 * and return the old backends, as entries marked old on list *olds, for
 * the caller to queue with the retired ones. On the reaper thread, while
 * a request's VCL reference (gv->mk_ref, ghost_be_live()) keeps the VCL
 * warm: VRT_AddDirector() panics in a cold VCL, and a reference held
 * makes vcl.state cold wait (VCL_TEMP_BUSY).
 *
 * Why (Varnish 7.1.1): the release of each retired backend frees its VSC
 * segment with VSMW_Free(), which walks every VSM segment from the oldest
 * (new ones are appended), so it walks past every kept backend created
 * before it; ~0.1 us a segment here, 1.25 billion segments when every
 * other of 100,000 endpoints is dropped. A replacement is appended at the
 * end: the old one is released among the retired ones, oldest first, at
 * the head of the list. Its own cost is VCP_Ref()'s search of the
 * connection pools (newest first, ~10 ns a pool here, as far as the
 * endpoint's own pool, which the new backend shares: idle connections
 * stay) plus a backend's creation. So a kept backend is replaced when at
 * least replace_min retired ones were created after it and 8 times as
 * many as backends of any kind (be_seq: an upper bound of the pools in
 * front of its own), oldest first, within max_backends (the old one is
 * held until its release). Backends with a probe are not replaced (the
 * probe would start over). Entries only leave the map on this thread, so
 * those picked stay valid; e->dir is swapped under be_lock.
 */
static unsigned
be_replace(VRT_CTX, struct ghost_vcl *gv, struct ghost_be *gone, unsigned n,
    struct ghost_be **olds)
{
	struct ghost_be *e, **cand = NULL, *o;
	uint64_t *ds, top, seq;
	unsigned nd, i, b, nc = 0, after, held, room = ~0U, done = 0;
	int stopped = 0;
	VCL_BACKEND mine;
	double t0 = VTIM_mono();

	AN(ctx->vcl);
	nd = n + __atomic_load_n(&gv->n_drain, __ATOMIC_RELAXED);
	ds = malloc(nd * sizeof *ds);
	if (ds == NULL)
		return (0);
	i = 0;
	for (e = gone; e != NULL && i < nd; e = e->next)
		ds[i++] = e->seq;
	for (e = gv->drain; e != NULL && i < nd; e = e->next)
		ds[i++] = e->seq;
	nd = i;
	qsort(ds, nd, sizeof *ds, u64_cmp);
	top = __atomic_load_n(&be_seq, __ATOMIC_RELAXED);
	PTOK(pthread_rwlock_rdlock(&gv->be_lock));
	if (gv->n_be > 0)
		cand = malloc(gv->n_be * sizeof *cand);
	for (b = 0; cand != NULL && b < gv->be_nb; b++) {
		for (e = gv->be_hash[b]; e != NULL; e = e->next) {
			if (e->probe != 0 ||
			    __atomic_load_n(&e->dead, __ATOMIC_RELAXED))
				continue;
			after = n_above(ds, nd, e->seq);
			if (after >= gv->replace_min &&
			    8 * (uint64_t)after > top - e->seq)
				cand[nc++] = e;
		}
	}
	held = gv->n_be + __atomic_load_n(&gv->n_drain, __ATOMIC_RELAXED);
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	free(ds);
	if (gv->max_be > 0)
		room = held < gv->max_be ? gv->max_be - held : 0;
	if (nc > 1)
		qsort(cand, nc, sizeof *cand, be_seq_cmp);
	if (nc > room)
		nc = room;
	for (i = 0; i < nc; i++) {
		/*
		 * Each creation costs VCP_Ref()'s search of every pool (a
		 * ms at 100,000): keep the reaper's health looks on time
		 * meanwhile, and leave the rest to the release walk when a
		 * newer generation waits for its `live` check (or the VCL
		 * goes away): replacing only shortens that walk.
		 */
		if (__atomic_load_n(&gv->live_want, __ATOMIC_ACQUIRE) >
		    __atomic_load_n(&gv->live_gen, __ATOMIC_ACQUIRE) ||
		    __atomic_load_n(&gv->reap_stop, __ATOMIC_RELAXED)) {
			stopped = 1;
			break;
		}
		if ((__atomic_load_n(&gv->n_probed, __ATOMIC_RELAXED) > 0 ||
		    __atomic_load_n(&gv->n_ejected, __ATOMIC_RELAXED) > 0) &&
		    VTIM_real() >= gv->health_next) {
			health_tick(ctx, gv);
			gv->health_next = VTIM_real() + GHOST_HEALTH_TICK;
		}
		e = cand[i];
		o = be_alloc();
		if (o == NULL)
			break;
		mine = be_create(ctx, gv, e->addr, e->name, e->port, NULL);
		if (mine == NULL) {	/* the VCL is cooling */
			FREE_OBJ(o);
			break;
		}
		seq = __atomic_add_fetch(&be_seq, 1, __ATOMIC_RELAXED);
		PTOK(pthread_rwlock_wrlock(&gv->be_lock));
		o->dir = e->dir;
		o->seq = e->seq;
		/* (read without the lock too: ghost_be_get_memo()) */
		__atomic_store_n(&e->dir, mine, __ATOMIC_RELEASE);
		e->seq = seq;
		PTOK(pthread_rwlock_unlock(&gv->be_lock));
		o->old = 1;
		o->port = e->port;
		strcpy(o->addr, e->addr);
		strcpy(o->name, e->name);
		o->nl = e->nl;
		o->next = *olds;
		*olds = o;
		__atomic_add_fetch(&gv->n_drain, 1, __ATOMIC_RELAXED);
		GHOST_GAUGE(be_draining, 1);
		GHOST_STAT(be_created);
		GHOST_STAT(be_replaced);
		done++;
	}
	free(cand);
	if (done > 0 || nc > 0)
		VSL(SLT_VCL_Log, 0, "ghost: replaced %u of %u kept native "
		    "backends created before retired ones, in %.3f s (%s)%s",
		    done, nc, VTIM_mono() - t0,
		    gv->vcl_name != NULL ? gv->vcl_name : "", stopped ?
		    "; stopped for a newer generation's live check" : "");
	return (done);
}

/*
 * Retire backends marked dead whose grace has passed. Runs on the reaper
 * thread only. Retiring is two steps:
 *
 * 1. VRT_DisableDirector(): the backend is "deleted" for Varnish at once
 *    (gone from backend.list, new fetches on it fail); it is already out
 *    of our map, so no new request gets it.
 * 2. backend_idle_timeout + GHOST_DRAIN_MARGIN seconds later the
 *    creator's reference is dropped (drain()), oldest created first.
 *
 * Why wait: on 7.1.1 the final release of a backend whose connection pool
 * still has idle connections blocks until they reach backend_idle_timeout
 * (default 60 s; seen in tests). Keeping our reference past that makes
 * the final release cheap, and makes it ours (this thread) rather than a
 * worker's in nearly every case.
 */
static void
sweep(VRT_CTX, struct ghost_vcl *gv, double now)
{
	struct ghost_be **pp, *e, *gone = NULL, *olds = NULL, **v;
	struct ghost_be *list = NULL, **tail = &list;
	unsigned b, i, n = 0, nold = 0;
	double drain_s;
	int held;

	Lck_Lock(&gv->live_mtx);
	PTOK(pthread_rwlock_wrlock(&gv->be_lock));
	for (b = 0; b < gv->be_nb; b++) {
		pp = &gv->be_hash[b];
		while ((e = *pp) != NULL) {
			if (!__atomic_load_n(&e->dead, __ATOMIC_RELAXED)) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			e->next = gone;
			gone = e;
			n++;
			gv->n_be--;
			GHOST_GAUGE(be_live, -1);
			if (e->probe != 0)
				__atomic_sub_fetch(&gv->n_probed, 1,
				    __ATOMIC_RELAXED);
		}
	}
	__atomic_store_n(&gv->n_dead, 0, __ATOMIC_RELAXED);
	if (n > 0)	/* cached map entries: ghost_be_get_memo() */
		__atomic_add_fetch(&gv->be_epoch, 1, __ATOMIC_RELEASE);
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	Lck_Unlock(&gv->live_mtx);
	/* retired now, in creation order: out of backend.list, draining */
	v = be_sorted(gone, n);
	for (i = 0; i < n; i++) {
		e = be_nth(v, i, &gone);
		VSL(SLT_VCL_Log, 0, "ghost: retiring backend ghost.%s (%s)",
		    e->name, gv->vcl_name != NULL ? gv->vcl_name : "");
		VRT_DisableDirector(e->dir);
		__atomic_add_fetch(&gv->n_drain, 1, __ATOMIC_RELAXED);
		GHOST_GAUGE(be_draining, 1);
		e->next = NULL;
		*tail = e;
		tail = &e->next;
	}
	free(v);
	gone = list;
	Lck_Lock(&gv->reap_mtx);
	held = gv->mk_ref != NULL;
	Lck_Unlock(&gv->reap_mtx);
	if (n > 0 && held && gv->replace_min > 0)
		nold = be_replace(ctx, gv, gone, n, &olds);
	/* one batch, one drop_at: queued oldest first (else as found) */
	drain_s = cache_param->backend_idle_timeout + GHOST_DRAIN_MARGIN;
	for (e = olds; e != NULL && e->next != NULL; e = e->next)
		continue;
	if (e != NULL) {		/* one list: the retired, the old */
		e->next = gone;
		gone = olds;
	}
	v = be_sorted(gone, n + nold);
	for (i = 0; i < n + nold; i++) {
		e = be_nth(v, i, &gone);
		e->drop_at = now + drain_s;
		e->next = NULL;
		*gv->drain_tail = e;		/* FIFO: drop_at grows */
		gv->drain_tail = &e->next;
	}
	free(v);
}

/* Drop one retired backend's reference: its final release. */
static void
be_release(VRT_CTX, struct ghost_be *e)
{

	CHECK_OBJ_NOTNULL(e, GHOST_BE_MAGIC);
	VRT_delete_backend(ctx, &e->dir);
	GHOST_STAT(be_retired);
	FREE_OBJ(e);
}

/*
 * The final release of retired backends whose drain time has come, on the
 * reaper thread, until the monotonic time `until`: returns 1 when some
 * that are due remain (the reaper comes back at once, after a look at its
 * other work).
 *
 * What a release costs (Varnish 7.1.1, perf on the child): the backend's
 * VSC segment is freed by VSMW_Free(), which finds it by walking the
 * child's list of every VSM segment from the oldest, under the VSM lock;
 * ~94 % of the release's CPU at 50,000 backends. Releasing the oldest
 * created first (sweep() queues each batch in creation order) makes that
 * walk pass only the older backends that stay, never one about to go:
 * the least any order can cost. When the retired ones are older than those
 * that stay (an endpoint set replaced over time), each release is a
 * short walk; when they are interleaved with the kept ones, it costs
 * the number of kept ones older than it. docs/operations.md has the
 * arithmetic. The slices keep the reaper's `live` checks and health
 * looks on time during a long release, and no ghost lock is held.
 */
static int
drain(VRT_CTX, struct ghost_vcl *gv, double now, double until)
{
	struct ghost_be *e;
	double t0 = VTIM_mono();
	unsigned n = 0;

	while ((e = gv->drain) != NULL && e->drop_at <= now) {
		CHECK_OBJ(e, GHOST_BE_MAGIC);
		if (n > 0 && VTIM_mono() >= until)
			break;
		/* cold: cold_release() takes them, when it is safe */
		if (__atomic_load_n(&gv->cold, __ATOMIC_RELAXED))
			break;
		gv->drain = e->next;
		if (gv->drain == NULL)
			gv->drain_tail = &gv->drain;
		be_release(ctx, e);
		__atomic_sub_fetch(&gv->n_drain, 1, __ATOMIC_RELAXED);
		GHOST_GAUGE(be_draining, -1);
		n++;
	}
	if (n > 0)
		VSL(SLT_VCL_Log, 0, "ghost: released %u native backends in "
		    "%.3f s, %u draining (%s)", n, VTIM_mono() - t0,
		    __atomic_load_n(&gv->n_drain, __ATOMIC_RELAXED),
		    gv->vcl_name != NULL ? gv->vcl_name : "");
	return (e != NULL && e->drop_at <= now);
}

/*
 * The `live` check of generation gen, on the reaper thread: every held
 * endpoint, gv->live_page at a time, each page one round trip whose
 * answer goes to ws (reset after each page). Returns 0 when every page
 * was answered. Entries only leave the map under live_mtx (sweep(), held
 * here) or at DISCARD (after the reaper stopped): the snapshot is stable.
 */
static int
live_pass(struct ghost_vcl *gv, struct ws *ws, uint64_t gen, double now)
{
	struct live_arg la;
	struct ghost_rt rt;
	struct ghost_be **all = NULL, *e;
	uintptr_t snap;
	uint64_t agen;
	unsigned b, n = 0, off, page;
	int err = 0;

	INIT_OBJ(&la, LIVE_ARG_MAGIC);
	Lck_Lock(&gv->live_mtx);
	PTOK(pthread_rwlock_rdlock(&gv->be_lock));
	if (gv->n_be > 0)
		all = malloc(gv->n_be * sizeof *all);
	if (all != NULL)
		for (b = 0; b < gv->be_nb; b++)
			for (e = gv->be_hash[b]; e != NULL; e = e->next)
				all[n++] = e;
	else if (gv->n_be > 0)
		err = 1;
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	if (err) {
		VSL(SLT_Error, 0, "ghost: live: out of memory (%s)",
		    gv->vcl_name != NULL ? gv->vcl_name : "");
		Lck_Unlock(&gv->live_mtx);
		return (-1);
	}
	page = gv->live_page;
	if (page == 0 || page > GHOST_LIVE_PAGE_MAX)
		page = GHOST_LIVE_PAGE;
	snap = WS_Snapshot(ws);
	for (off = 0; off < n && !err; off += la.n) {
		la.eps = all + off;
		la.n = n - off < page ? n - off : page;
		memset(&rt, 0, sizeof rt);
		rt.enc = enc_live;
		rt.arg = &la;
		rt.enc_max = 64 + (size_t)la.n * 64;
		rt.timeout = gv->timeout > GHOST_LIVE_TMO ?
		    gv->timeout : GHOST_LIVE_TMO;
		agen = gen;
		if (ghost_roundtrip(gv, ws, &rt) ||
		    live_answer(gv, &la, rt.ans, rt.ans_len, &agen, now)) {
			VSL(SLT_Error, 0,
			    "ghost: live: %s (%s, endpoints %u-%u of %u)",
			    rt.why[0] ? rt.why : "bad answer",
			    gv->vcl_name != NULL ? gv->vcl_name : "",
			    off, off + la.n - 1, n);
			err = 1;
		}
		WS_Reset(ws, snap);
	}
	free(all);
	if (!err)
		__atomic_store_n(&gv->live_gen, gen, __ATOMIC_RELEASE);
	Lck_Unlock(&gv->live_mtx);
	return (err ? -1 : 0);
}

/*
 * Take every backend this VCL holds out of the map and the drain list
 * (the gauges follow): the list of them, linked by next; *np: how many.
 */
static struct ghost_be *
be_take_all(struct ghost_vcl *gv, unsigned *np)
{
	struct ghost_be *e, *all;
	unsigned b, n;

	PTOK(pthread_rwlock_wrlock(&gv->be_lock));
	all = gv->drain;
	n = __atomic_load_n(&gv->n_drain, __ATOMIC_RELAXED);
	GHOST_GAUGE(be_draining, -(int64_t)n);
	gv->drain = NULL;
	gv->drain_tail = &gv->drain;
	for (b = 0; b < gv->be_nb; b++) {
		while ((e = gv->be_hash[b]) != NULL) {
			gv->be_hash[b] = e->next;
			e->next = all;
			all = e;
			n++;
			GHOST_GAUGE(be_live, -1);
		}
	}
	free(gv->be_hash);
	gv->be_hash = NULL;
	gv->be_nb = 0;
	gv->n_be = 0;
	/* cached map entries: ghost_be_get_memo() */
	__atomic_add_fetch(&gv->be_epoch, 1, __ATOMIC_RELEASE);
	__atomic_store_n(&gv->n_drain, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&gv->n_dead, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&gv->n_probed, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&gv->n_ejected, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&gv->n_bad, 0, __ATOMIC_RELAXED);
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	*np = n;
	return (all);
}

/*
 * Release the n backends of list all, oldest created first (each release
 * then finds its VSC segment near the head of varnishd's list: linear in
 * the number of backends, where another order is quadratic, see drain()),
 * with no ghost lock held.
 */
static void
be_release_all(VRT_CTX, struct ghost_be *all, unsigned n)
{
	struct ghost_be **v;
	unsigned i;

	v = be_sorted(all, n);
	for (i = 0; i < n; i++)
		be_release(ctx, be_nth(v, i, &all));
	free(v);
}

/*
 * The VCL went cold (its COLD event, on the CLI thread): no request runs
 * in it any more, and its backends are of no use until it is warm again.
 * The reaper releases every one of them (cold_release()) once their idle
 * upstream connections are gone, and only then lets varnishd discard the
 * VCL (gv->cold_ref, a VRT_VCL_Prevent_Discard() hold taken at WARM):
 * vcl.discard answers at once, and varnishd discards the VCL at its
 * first CLI command after the release.
 *
 * Why not at vcl.discard, as before (Varnish 7.1.1): varnishd calls the
 * DISCARD event on its CLI thread, and the release of the last backend of
 * an endpoint whose connection pool holds idle connections (VCP_Rel())
 * shuts them down and then sleeps in steps of 20 ms until the waiter has
 * closed them: at least 20 ms per such endpoint, on the CLI thread. The
 * manager kills the child when one CLI answer takes longer than
 * cli_timeout (60 s). Measured: 500 endpoints the new VCL had not used
 * yet, 10.2 s for vcl.discard; 14,000, 55.3 s (the wait ends when the
 * waiter closes the connections at backend_idle_timeout, so the child
 * lives or dies by how backend_idle_timeout compares with cli_timeout),
 * and the CLI answers nothing meanwhile. Waiting
 * backend_idle_timeout + 1 s after the COLD event, by which time the
 * waiter has closed every idle connection of this VCL's use (other VCLs'
 * backends share the pools, and keep them), makes each release cheap,
 * and the reaper, not the CLI thread, does it. It also gives varnishd's
 * COLD event to the backends themselves (vcl_BackendEvent(), right after
 * ours in the same CLI command), which stops their probes, ample time to
 * finish: a probed backend released before it would be a panic
 * (VBP_Remove()).
 */
void
ghost_be_cold(VRT_CTX, struct ghost_vcl *gv)
{
	struct vclref *ref = NULL;
	unsigned n;
	int armed = 0;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	PTOK(pthread_rwlock_rdlock(&gv->be_lock));
	n = gv->n_be + __atomic_load_n(&gv->n_drain, __ATOMIC_RELAXED);
	PTOK(pthread_rwlock_unlock(&gv->be_lock));
	Lck_Lock(&gv->reap_mtx);
	if (n == 0) {
		/* nothing to release (also the COLD varnishd sends when
		 * a later WARM handler failed: the VCL is COLD already) */
		ref = gv->cold_ref;
		gv->cold_ref = NULL;
	} else if (gv->cold_ref != NULL && gv->cold_at == 0) {
		gv->cold_at = VTIM_real();
		__atomic_store_n(&gv->cold, 1, __ATOMIC_RELAXED);
		PTOK(pthread_cond_signal(&gv->reap_cond));
		armed = 1;
	}
	Lck_Unlock(&gv->reap_mtx);
	if (ref != NULL)
		VRT_VCL_Allow_Discard(&ref);
	if (armed)
		VSL(SLT_VCL_Log, 0, "ghost: %s went cold: its %u native "
		    "backends are released in %.0f s, then it can be "
		    "discarded", gv->vcl_name != NULL ? gv->vcl_name : "", n,
		    cache_param->backend_idle_timeout + 1);
}

/*
 * WARM (the CLI thread): hold the VCL against discard until the release
 * that follows its next COLD event (ghost_be_cold()).
 */
void
ghost_be_warm(VRT_CTX, struct ghost_vcl *gv)
{
	struct vclref *ref;
	int need;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	Lck_Lock(&gv->reap_mtx);
	need = gv->cold_ref == NULL;
	gv->cold_at = 0;
	__atomic_store_n(&gv->cold, 0, __ATOMIC_RELAXED);
	Lck_Unlock(&gv->reap_mtx);
	if (!need)
		return;
	ref = VRT_VCL_Prevent_Discard(ctx, GHOST_COLD_DESC);
	Lck_Lock(&gv->reap_mtx);
	AZ(gv->cold_ref);
	gv->cold_ref = ref;
	Lck_Unlock(&gv->reap_mtx);
}

/* The reaper's release of every backend of the cold VCL. */
static void
cold_release(VRT_CTX, struct ghost_vcl *gv)
{
	struct ghost_be *all;
	unsigned n;
	double t0 = VTIM_mono();

	Lck_Lock(&gv->live_mtx);
	all = be_take_all(gv, &n);
	Lck_Unlock(&gv->live_mtx);
	be_release_all(ctx, all, n);
	if (n > 0)
		VSL(SLT_VCL_Log, 0, "ghost: released %u native backends of "
		    "the cold VCL in %.3f s (%s)", n, VTIM_mono() - t0,
		    gv->vcl_name != NULL ? gv->vcl_name : "");
}

/*
 * VCL_EVENT_DISCARD (the CLI thread; the reaper has stopped, no request
 * uses this VCL): release what the VCL still holds, which is nothing
 * when it went cold after a WARM (cold_release() did it); then the VSM
 * cluster still filling.
 */
void
ghost_be_fini(VRT_CTX, struct ghost_vcl *gv)
{
	struct ghost_be *all;
	struct ghost_vsc *c;
	unsigned n;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	AZ(gv->reap_running);
	/* still held when vcl.load's warmup failed after our WARM */
	if (gv->cold_ref != NULL)
		VRT_VCL_Allow_Discard(&gv->cold_ref);
	gv->cold_at = 0;
	all = be_take_all(gv, &n);
	be_release_all(ctx, all, n);
	/* the cluster still filling: nothing creates backends any more */
	Lck_Lock(&gv->vsc_mtx);
	c = gv->vsc_cur;
	gv->vsc_cur = NULL;
	Lck_Unlock(&gv->vsc_mtx);
	if (c != NULL) {
		CHECK_OBJ(c, GHOST_VSC_MAGIC);
		assert(c->done == c->taken);
		VRT_VSM_Cluster_Destroy(ctx, &c->vc);
		FREE_OBJ(c);
	}
}

/*
 * Drop the VCL reference a request handed the reaper (ghost_be_live()).
 * Called with reap_mtx held; VRT_VCL_Allow_Cold() takes vcl_mtx, so it
 * runs with reap_mtx released (reap_mtx is never held while taking
 * another lock).
 */
static void
mk_unref(struct ghost_vcl *gv)
{
	struct vclref *ref;

	ref = gv->mk_ref;
	gv->mk_ref = NULL;
	if (ref == NULL)
		return;
	Lck_Unlock(&gv->reap_mtx);
	VRT_VCL_Allow_Cold(&ref);
	Lck_Lock(&gv->reap_mtx);
}

static void *
reaper(void *priv)
{
	struct ghost_vcl *gv;
	struct vrt_ctx ctx[1];
	struct vclref *ref;
	struct ws ws[1];
	void *wsmem;
	double now, wake, retry = 0;
	uint64_t want;
	int due, health;

	CAST_OBJ_NOTNULL(gv, priv, GHOST_VCL_MAGIC);
	/* named for top -H, perf and the scale suite (its CPU time) */
	(void)prctl(PR_SET_NAME, "ghost-reaper", 0, 0, 0);
	INIT_OBJ(ctx, VRT_CTX_MAGIC);
	ctx->vcl = gv->vcl;	/* be_replace() creates backends */
	/* answers of `live`: at most one frame */
	wsmem = malloc(GHOST_MAX_FRAME + 4096);
	if (wsmem != NULL)
		WS_Init(ws, "glv", wsmem, GHOST_MAX_FRAME + 4096);
	Lck_Lock(&gv->reap_mtx);
	while (!gv->reap_stop) {
		now = VTIM_real();
		if (gv->cold_at > 0) {
			/* cold: nothing but the cold release, when due */
			wake = gv->cold_at +
			    cache_param->backend_idle_timeout + 1;
			if (now < wake) {
				(void)Lck_CondWaitUntil(&gv->reap_cond,
				    &gv->reap_mtx, wake);
				continue;
			}
			Lck_Unlock(&gv->reap_mtx);
			cold_release(ctx, gv);
			Lck_Lock(&gv->reap_mtx);
			gv->cold_at = 0;
			__atomic_store_n(&gv->cold, 0, __ATOMIC_RELAXED);
			ref = gv->cold_ref;
			gv->cold_ref = NULL;
			if (ref != NULL) {
				/* varnishd may discard the VCL now */
				Lck_Unlock(&gv->reap_mtx);
				VRT_VCL_Allow_Discard(&ref);
				Lck_Lock(&gv->reap_mtx);
			}
			continue;
		}
		want = __atomic_load_n(&gv->live_want, __ATOMIC_ACQUIRE);
		if (want > __atomic_load_n(&gv->live_gen, __ATOMIC_ACQUIRE) &&
		    now >= retry) {
			Lck_Unlock(&gv->reap_mtx);
			if (wsmem == NULL) {
				VSL(SLT_Error, 0, "ghost: live: out of memory");
				retry = now + GHOST_LIVE_RETRY;
			} else if (live_pass(gv, ws, want, now))
				retry = now + GHOST_LIVE_RETRY;
			Lck_Lock(&gv->reap_mtx);
			/* nothing to sweep: no replacement, no hold */
			if (retry > now || !__atomic_load_n(&gv->n_dead,
			    __ATOMIC_RELAXED))
				mk_unref(gv);
			continue;
		}
		health = __atomic_load_n(&gv->n_probed, __ATOMIC_RELAXED) >
		    0 || __atomic_load_n(&gv->n_ejected, __ATOMIC_RELAXED) > 0;
		if (health && now >= gv->health_next) {
			Lck_Unlock(&gv->reap_mtx);
			health_tick(ctx, gv);
			gv->health_next = now + GHOST_HEALTH_TICK;
			Lck_Lock(&gv->reap_mtx);
			continue;
		}
		due = __atomic_load_n(&gv->n_dead, __ATOMIC_RELAXED) > 0;
		wake = due ? 1e-3 * (double)__atomic_load_n(
		    &gv->dead_deadline, __ATOMIC_RELAXED) : now + 5.0;
		if (health && gv->health_next < wake)
			wake = gv->health_next;
		if (gv->drain != NULL && gv->drain->drop_at < wake)
			wake = gv->drain->drop_at;
		if (retry > now && retry < wake)
			wake = retry;
		if (now >= wake) {
			Lck_Unlock(&gv->reap_mtx);
			if (due)
				sweep(ctx, gv, now);
			(void)drain(ctx, gv, now, VTIM_mono() +
			    GHOST_RELEASE_SLICE);
			Lck_Lock(&gv->reap_mtx);
			if (due)
				mk_unref(gv);
			continue;
		}
		(void)Lck_CondWaitUntil(&gv->reap_cond, &gv->reap_mtx, wake);
	}
	mk_unref(gv);
	Lck_Unlock(&gv->reap_mtx);
	free(wsmem);
	return (NULL);
}

int
ghost_reaper_start(struct ghost_vcl *gv)
{
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	if (gv->reap_running)
		return (0);
	gv->reap_stop = 0;
	if (pthread_create(&gv->reap_thr, NULL, reaper, gv))
		return (-1);
	gv->reap_running = 1;
	return (0);
}

void
ghost_reaper_stop(struct ghost_vcl *gv)
{
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	if (!gv->reap_running)
		return;
	Lck_Lock(&gv->reap_mtx);
	gv->reap_stop = 1;
	PTOK(pthread_cond_signal(&gv->reap_cond));
	Lck_Unlock(&gv->reap_mtx);
	PTOK(pthread_join(gv->reap_thr, NULL));
	gv->reap_running = 0;
}

/*
 * A request saw generation gen: have the reaper check which backends it
 * no longer references. Costs a request two atomics and, once per
 * generation, a signal.
 */
void
ghost_be_live(VRT_CTX, struct ghost_vcl *gv, uint64_t gen)
{
	struct vclref *ref = NULL;
	uint64_t want;
	int need;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	want = __atomic_load_n(&gv->live_want, __ATOMIC_RELAXED);
	do {
		if (gen <= want)
			return;
	} while (!__atomic_compare_exchange_n(&gv->live_want, &want, gen, 0,
	    __ATOMIC_RELEASE, __ATOMIC_RELAXED));
	/*
	 * Once per generation: hand the reaper a reference on this VCL
	 * (this request's VCL is referenced and warm, as VCL_Ref() wants),
	 * for be_replace(); the reaper drops it after the retirement.
	 */
	Lck_Lock(&gv->reap_mtx);
	need = gv->mk_ref == NULL && gv->replace_min > 0 && ctx->vcl != NULL;
	Lck_Unlock(&gv->reap_mtx);
	if (need)
		ref = VRT_VCL_Prevent_Cold(ctx, "ghost: backends replaced");
	Lck_Lock(&gv->reap_mtx);
	if (ref != NULL && gv->mk_ref == NULL) {
		gv->mk_ref = ref;
		ref = NULL;
	}
	PTOK(pthread_cond_signal(&gv->reap_cond));
	Lck_Unlock(&gv->reap_mtx);
	if (ref != NULL)
		VRT_VCL_Allow_Cold(&ref);
}

/* The machine's vm.max_map_count, or 0 when it cannot be read. */
static unsigned long
max_map_count(void)
{
	unsigned long v = 0;
	FILE *f;

	f = fopen("/proc/sys/vm/max_map_count", "r");
	if (f == NULL)
		return (0);
	if (fscanf(f, "%lu", &v) != 1)
		v = 0;
	(void)fclose(f);
	return (v);
}

/*
 * Descriptors left for everything but idle upstream connections (the
 * listeners, client connections, varnishd's own files) out of a limit of
 * lim: max(1024, lim / 8).
 */
static unsigned long
fd_reserve(unsigned long lim)
{
	return (lim / 8 > 1024 ? lim / 8 : 1024);
}

/*
 * vcl_init: the ceiling (docs/operations.md "Native backends"). A VCL may
 * hold B + B/16 + 1 backends (ceiling plus headroom). Each has up to an
 * idle descriptor with keep-alive upstreams, and a VSC segment, per
 * cluster of gv->vsc_per (or vsc_slots()) one memory map per warm VCL
 * (two while a VCL reload goes on) plus ~10000 maps for varnishd's own.
 * max_backends -1 (the default) takes the largest B whose descriptors fit
 * the limit beside fd_reserve(), at most GHOST_MAX_BE_AUTO; an explicit B
 * that does not fit either limit is a warning, not a failure: the ceiling
 * is what keeps the child alive, the limits only decide whether it is
 * reachable.
 */
void
ghost_be_limits(VRT_CTX, struct ghost_vcl *gv, long max_backends)
{
	struct rlimit rl;
	unsigned long maps, need, held, lim = 0, per;
	const char *vcl;

	CHECK_OBJ_NOTNULL(ctx, VRT_CTX_MAGIC);
	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	vcl = gv->vcl_name != NULL ? gv->vcl_name : "";
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		lim = (unsigned long)rl.rlim_cur;
	if (max_backends < 0) {
		need = GHOST_MAX_BE_AUTO;
		if (lim > 0)
			need = lim > 2 * fd_reserve(lim) ? (lim -
			    fd_reserve(lim) - 1) * 16 / 17 : lim / 2;
		if (need > GHOST_MAX_BE_AUTO)
			need = GHOST_MAX_BE_AUTO;
		gv->max_be = need > 0 ? (unsigned)need : 1;
		VSL(SLT_VCL_Log, 0, "ghost: max_backends %u from the "
		    "descriptor limit %lu (%s)", gv->max_be, lim, vcl);
	} else
		gv->max_be = (unsigned)max_backends;
	if (gv->max_be == 0) {
		VSL(SLT_Error, 0, "ghost: warning: max_backends 0 (%s): no "
		    "ceiling; past vm.max_map_count or the descriptor limit "
		    "the child panics", vcl);
		return;
	}
	held = (unsigned long)gv->max_be + gv->max_be / 16 + 1;
	per = vsc_slots(ctx, gv);
	maps = max_map_count();
	need = 2UL * (held / per + 1) + 10000;
	if (maps > 0 && need > maps) {
		VSL(SLT_Error, 0, "ghost: warning: max_backends %u (%lu "
		    "backends a VSM cluster) needs vm.max_map_count >= %lu "
		    "(2 warm VCLs), it is %lu: raise it (sysctl -w "
		    "vm.max_map_count=%lu) or lower max_backends",
		    gv->max_be, per, need, maps, 2 * need);
		if (ctx->msg != NULL)
			VSB_printf(ctx->msg, "vmod ghost: warning: max_backends "
			    "%u needs vm.max_map_count >= %lu, it is %lu\n",
			    gv->max_be, need, maps);
	}
	if (lim == 0)
		return;
	need = held + fd_reserve(lim);
	if (need > lim) {
		VSL(SLT_Error, 0, "ghost: warning: max_backends %u needs up "
		    "to %lu descriptors with keep-alive upstreams, the limit "
		    "is %lu: raise it (LimitNOFILE=%lu) or lower max_backends",
		    gv->max_be, need, lim, 2 * need);
		if (ctx->msg != NULL)
			VSB_printf(ctx->msg, "vmod ghost: warning: max_backends "
			    "%u needs %lu descriptors, the limit is %lu\n",
			    gv->max_be, need, lim);
	}
}

/*
 * libFuzzer target: the memo key builder of vmod-shim/reuse.c (included
 * whole: its key functions are static) on any answer and request.
 * Input: a 2-byte big-endian answer length, the answer (msgpack), then
 * the request as lines: host ("\0" for none), method, URL, listener
 * ("\0" for none), https (0/1), then "Name: value" header lines. Checks:
 * building a key twice gives the same bytes; a header the answer's deps
 * do not name does not change the key; every scope length probed fits
 * in the key built; the path edit of a reused answer (ghost_ans_fit,
 * ghost_ans_resolve) stays inside its strings. Seeds:
 * test/cshim/corpus/key, made by Go (protocol/cshim_seeds_test.go).
 * Built and run by test/fuzz.sh.
 */

#define _GNU_SOURCE	/* reuse.c's strchrnul(): before any system header */

#include <stdlib.h>

/* ghost.h hides what is declared after it: system headers first */
#include "reuse.c"
#include "hdr.h"

#define MAXHD		64
#define WS_SPACE	(64 * 1024)

/* Not on the fuzzed path (no memo table here), but reuse.c links them. */
int
ghost_memo_lookup(struct ghost_vcl *gv, struct ws *ws, uint64_t gen,
    const char *key, size_t klen, uint64_t h, uint8_t *buf, size_t bl,
    const uint8_t **val, size_t *vlen)
{
	(void)gv; (void)ws; (void)gen; (void)key; (void)klen; (void)h;
	(void)buf; (void)bl; (void)val; (void)vlen;
	return (0);
}

void
ghost_memo_insert(struct ghost_vcl *gv, uint64_t gen, const char *key,
    size_t klen, uint64_t h, const uint8_t *val, size_t vlen,
    ghost_memo_fix_f *fix)
{
	(void)gv; (void)gen; (void)key; (void)klen; (void)h; (void)val;
	(void)vlen;
	(void)fix;
}

/* memo.h's inline lookup calls these only with a memo table. */
void
ghost_memo_lock_wait(uint32_t *l)
{
	(void)l;
}

void
ghost_memo_entry_free(uint8_t *data)
{
	(void)data;
}

void
ghost_memo_vh_put(struct ghost_vcl *gv, uint64_t gen,
    const char *k, size_t kl, int p, const int32_t *sl, uint32_t nsl)
{
	(void)gv; (void)gen; (void)k; (void)kl; (void)p; (void)sl; (void)nsl;
}

/* memo_store()'s ban line name (cachekey.c, memo.c): not fuzzed here. */
const char *
ghost_norm_host(struct ws *ws, const char *host)
{
	(void)ws; (void)host;
	return (NULL);
}

uint64_t
ghost_hash(const void *p, size_t l, uint64_t seed)
{
	(void)p; (void)l;
	return (seed);
}

/* reuse.c's counters and rq.c's listener: vmod_stubs.c (the target sets
 * q's listener itself) */

/* Does the answer's deps.h name n? */
static int
deps_names(const struct ghost_deps *d, const char *n)
{
	struct mp_r r;
	const char *s;
	size_t l;
	uint32_t cnt;

	if (d->h == NULL)
		return (0);
	r.p = d->h;
	r.end = d->h_end;
	r.err = 0;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		mp_r_str(&r, &s, &l);
		if (l == strlen(n) && !strncasecmp(s, n, l))
			return (1);
	}
	return (0);
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char space[WS_SPACE];
	static int inited;
	struct ws ws[1];
	struct http hp[1];
	txt hd[MAXHD];
	char *line[MAXHD + 5], *k1, *k2, kbuf[64], ubuf[512];
	const char *p, *e, *nl, *k3;
	struct ghost_ans a;
	struct ghost_rq q;
	uint8_t *ans;
	size_t alen, kl1, kl2, kl3, base1, base2, n = 0, pl, sl;
	char why[256];
	struct mp_r r;
	uint32_t cnt;
	unsigned u;
	int edit;

	if (!inited) {
		ghost_hdr_init();
		inited = 1;
	}
	if (size < 2)
		return (0);
	alen = (size_t)data[0] << 8 | data[1];
	if (2 + alen > size)
		return (0);
	ans = malloc(alen + 1);		/* exact size for ASan */
	AN(ans);
	memcpy(ans, data + 2, alen);
	if (ghost_ans_decode(ans, alen, &a, why, sizeof why)) {
		free(ans);
		return (0);
	}
	/* the request's lines, each NUL terminated as varnishd keeps them */
	p = (const char *)data + 2 + alen;
	e = (const char *)data + size;
	while (p < e && n < MAXHD + 5) {
		nl = memchr(p, '\n', (size_t)(e - p));
		if (nl == NULL)
			nl = e;
		line[n] = strndup(p, (size_t)(nl - p));
		AN(line[n]);
		n++;
		p = nl + 1;
	}
	if (n < 5)
		goto out;
	memset(hp, 0, sizeof hp);
	hp->magic = HTTP_MAGIC;
	hp->hd = hd;
	hp->shd = MAXHD;
	memset(hd, 0, sizeof hd);
	hd[HTTP_HDR_METHOD].b = line[1];
	hd[HTTP_HDR_URL].b = line[2];
	hp->nhd = HTTP_HDR_FIRST;
	for (u = 5; u < n && hp->nhd < MAXHD - 1; u++) {
		hd[hp->nhd].b = line[u];
		hd[hp->nhd].e = line[u] + strlen(line[u]);
		hp->nhd++;
	}
	INIT_OBJ(&q, GHOST_RQ_MAGIC);
	q.hp = hp;
	q.host = line[0][0] == '\0' ? NULL : line[0];
	q.method = line[1];
	q.url = line[2];
	q.sock = line[3][0] == '\0' ? NULL : line[3];
	q.https = line[4][0] == '1';
	q.rec = line[4][0] == '2';	/* X-Ghost-Req-* lines stand for others */

	WS_Init(ws, "fuzz", space, sizeof space);
	/* in the workspace, and in a small buffer (or the workspace when
	 * the key does not fit in it): the same key */
	rq_path(&q, &p, &pl);
	k1 = memo_key(ws, &q, &a.deps, p, pl, &base1, &kl1, NULL, 0);
	k2 = memo_key(ws, &q, &a.deps, p, pl, &base2, &kl2, kbuf,
	    sizeof kbuf);
	assert((k1 == NULL) == (k2 == NULL));
	if (k1 != NULL) {
		assert(kl1 == kl2 && base1 == base2 && base1 <= kl1);
		AZ(memcmp(k1, k2, kl1));
		/* a header routing does not depend on leaves the key alone */
		if (!deps_names(&a.deps, "x-unrouted-fuzz") &&
		    hp->nhd < MAXHD) {
			hd[hp->nhd].b = TRUST_ME("X-Unrouted-Fuzz: 1");
			hd[hp->nhd].e = hd[hp->nhd].b + 18;
			hp->nhd++;
			k2 = memo_key(ws, &q, &a.deps, p, pl, &base2, &kl2,
			    kbuf, sizeof kbuf);
			if (k2 != NULL) {
				assert(kl1 == kl2 && base1 == base2);
				AZ(memcmp(k1, k2, kl1));
			}
			hp->nhd--;
		}
		/* every scope length probed fits in the key */
		if (a.deps.p) {
			assert(kl1 == base1 + 9 + pl);
			if (a.deps.sl != NULL) {
				r.p = a.deps.sl;
				r.end = a.deps.sl_end;
				r.err = 0;
				cnt = mp_r_arr(&r);
				while (cnt-- > 0 && !r.err) {
					sl = (size_t)mp_r_int(&r);
					if (sl > pl)
						continue;
					assert(key_scope(k1, base1, pl,
					    (int64_t)sl) <= kl1);
				}
			}
			assert(key_scope(k1, base1, pl, -1) == kl1);
		}
		/*
		 * a host with the usual deps: the key that memo_find_host()
		 * builds from the Host alone (key_usual()) is this one, with
		 * the same head (the host table's index is its hash)
		 */
		if (q.host != NULL && deps_usual(&a.deps) &&
		    9 + strlen(q.host) + 9 + pl <= sizeof ubuf) {
			kl3 = key_usual(ubuf, q.host, strlen(q.host), a.deps.p,
			    p, pl, &base2);
			assert(kl3 == kl1 && base2 == base1);
			AZ(memcmp(ubuf, k1, kl1));
		}
	}
	/* the deps key: the Host, or one NUL; never an answer key */
	k3 = deps_key(&q, &kl3);
	assert(k3 != NULL && kl3 > 0);
	assert(q.host == NULL ? kl3 == 1 && k3[0] == '\0' :
	    memchr(k3, '\0', kl3) == NULL);
	if (k1 != NULL)
		assert(kl1 < 4 || memchr(k1, '\0', 4) != NULL);
	/* a reused answer's path edit, recomputed for this request */
	ghost_ans_fit(&q, &a);
	edit = a.pe && (a.o == GHOST_ROUTE || a.o == GHOST_REDIRECT);
	if (ghost_ans_resolve(ws, &q, &a) == 0 && edit) {
		/* the recomputed string is the workspace's, NUL terminated */
		if (a.o == GHOST_ROUTE)
			assert(strlen(a.path) == a.path_len);
		else
			assert(strlen(a.loc) == a.loc_len);
	}
  out:
	while (n > 0)
		free(line[--n]);
	free(ans);
	return (0);
}

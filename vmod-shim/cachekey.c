/*
 * The cache-key URL of a request under its route's cache_policy (query
 * include/exclude; route.CacheURL in Go is the reference) and the
 * normalised host every stored object and every invalidation is scoped to.
 * Mechanical: ghostd's answer says which parameters.
 */

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"

#include "msgpack.h"
#include "ghost.h"
#include "cachekey.h"

#define MAX_PARAMS	1024	/* query parameters considered for the key */

/* Is name (n bytes) in the msgpack array of strings [b, e)? */
static int
in_list(const uint8_t *b, const uint8_t *e, const char *n, size_t nl)
{
	struct mp_r r;
	const char *s;
	size_t sl;
	uint32_t cnt;

	r.p = b; r.end = e; r.err = 0;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		mp_r_str(&r, &s, &sl);
		if (!r.err && sl == nl && !memcmp(s, n, nl))
			return (1);
	}
	return (0);
}

struct qparam {
	const char	*b;	/* the whole "name=value" text */
	unsigned	l;
	unsigned	nl;	/* length of the name */
	unsigned	i;	/* position: keeps the sort stable */
};

static int
qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	unsigned n = x->nl < y->nl ? x->nl : y->nl;
	int c = memcmp(x->b, y->b, n);

	if (c != 0)
		return (c);
	if (x->nl != y->nl)
		return (x->nl < y->nl ? -1 : 1);
	return (x->i < y->i ? -1 : 1);
}

/*
 * The URL a request is cached under (route.CacheURL in Go is the
 * reference): with the policy's query_params_include (qi) or
 * query_params_exclude (qx), the query's "&"-separated parameters are
 * filtered by name (the text before the first "=", byte for byte), empty
 * ones dropped, and the rest sorted by name, stably; no parameter left:
 * no "?". Otherwise the URL itself. NULL when the workspace is full.
 */
const char *
ghost_cache_url(struct ws *ws, const struct ghost_ans *a, const char *url)
{
	const char *q, *p, *amp, *eq;
	struct qparam *pv;
	unsigned n = 0, i, sz, need;
	char *o, *w;

	if (a == NULL || (a->qi == NULL && a->qx == NULL))
		return (url);
	q = strchr(url, '?');
	if (q == NULL)
		return (url);
	for (p = q + 1, i = 1; *p != '\0'; p++)
		if (*p == '&')
			i++;
	if (i > MAX_PARAMS)
		i = MAX_PARAMS;
	pv = WS_Alloc(ws, i * sizeof *pv);
	if (pv == NULL)
		return (NULL);
	for (p = q + 1; *p != '\0' && n < i; p = *amp ? amp + 1 : amp) {
		amp = strchr(p, '&');
		if (amp == NULL)
			amp = strchr(p, '\0');
		if (amp == p)
			continue;
		eq = memchr(p, '=', (size_t)(amp - p));
		pv[n].b = p;
		pv[n].l = (unsigned)(amp - p);
		pv[n].nl = (unsigned)((eq != NULL ? eq : amp) - p);
		pv[n].i = n;
		if (a->qi != NULL &&
		    !in_list(a->qi, a->qi_end, p, pv[n].nl))
			continue;
		if (a->qx != NULL && in_list(a->qx, a->qx_end, p, pv[n].nl))
			continue;
		n++;
	}
	if (n > 1)
		qsort(pv, n, sizeof *pv, qparam_cmp);
	need = (unsigned)(q - url) + 2;
	for (i = 0; i < n; i++)
		need += pv[i].l + 1;
	sz = WS_ReserveAll(ws);
	if (sz < need) {
		WS_Release(ws, 0);
		return (NULL);
	}
	o = w = WS_Reservation(ws);
	memcpy(w, url, (size_t)(q - url));
	w += q - url;
	for (i = 0; i < n; i++) {
		*w++ = i == 0 ? '?' : '&';
		memcpy(w, pv[i].b, pv[i].l);
		w += pv[i].l;
	}
	*w++ = '\0';
	WS_Release(ws, (unsigned)(w - o));
	return (o);
}

/*
 * The host invalidations are scoped to, as stored objects carry it: the
 * Host header lower-cased, without its port and one trailing dot. Only
 * hostname characters (letters, digits, "-", "_", ".") or a bracketed
 * IPv6 literal; NULL for anything else (so no value can leave the quoted
 * string of a ban expression or name another host). A Host already in
 * that form is returned as it is (no copy): callers may compare the
 * pointers to know.
 */
const char *
ghost_norm_host(struct ws *ws, const char *host)
{
	const char *p, *end;
	char *o;
	size_t l, i;
	unsigned up = 0;

	if (host == NULL)
		return (NULL);
	if (*host == '[') {
		end = strchr(host, ']');
		if (end == NULL)
			return (NULL);
		for (p = host + 1; p < end; p++) {
			if (!(*p == ':' || *p == '.' ||
			    (*p >= '0' && *p <= '9') ||
			    ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')))
				return (NULL);
			up |= (*p >= 'A' && *p <= 'F');
		}
		end++;
	} else {
		for (p = host; *p != '\0' && *p != ':'; p++) {
			if (*p >= 'a' && *p <= 'z')
				continue;
			if (!((*p >= '0' && *p <= '9') ||
			    (*p >= 'A' && *p <= 'Z') ||
			    *p == '-' || *p == '_' || *p == '.'))
				return (NULL);
			up |= (*p >= 'A' && *p <= 'Z');
		}
		end = p;
	}
	if (*end == ':') {
		for (p = end + 1; *p >= '0' && *p <= '9'; p++)
			continue;
		if (*p != '\0' || p == end + 1)
			return (NULL);
	} else if (*end != '\0')
		return (NULL);
	l = (size_t)(end - host);
	if (l > 0 && host[l - 1] == '.')
		l--;
	if (l == 0 || l > 253)
		return (NULL);
	if (!up && host[l] == '\0')
		return (host);	/* already normal */
	o = WS_Alloc(ws, (unsigned)l + 1);
	if (o == NULL)
		return (NULL);
	for (i = 0; i < l; i++)
		o[i] = (host[i] >= 'A' && host[i] <= 'Z') ?
		    (char)(host[i] | 0x20) : host[i];
	o[l] = '\0';
	return (o);
}


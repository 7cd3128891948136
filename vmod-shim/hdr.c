/*
 * Layer 0: header line helpers, and the table of the request headers a
 * fetch does not carry as the client sent them.
 */

#include "config.h"

#include <string.h>
#include <strings.h>

#include "cache/cache.h"

#include "msgpack.h"
#include "ghost.h"
#include "hdr.h"

/*
 * Build the "\<len>Name:" form; -1 if the name is too long. The length
 * byte is a (signed) char: names up to GHOST_HDR_MAX (126) bytes.
 */
int
ghost_hdr_fmt(char *buf, size_t bl, const char *name, size_t nl)
{
	if (nl == 0 || nl > GHOST_HDR_MAX || nl + 3 > bl)
		return (-1);
	buf[0] = (char)(nl + 1);
	memcpy(buf + 1, name, nl);
	buf[nl + 1] = ':';
	buf[nl + 2] = '\0';
	return (0);
}

/* Apply op to each [name, value] pair of the msgpack array in [p, e). */
void
ghost_hdr_pairs(struct http *hp, const uint8_t *p, const uint8_t *e,
    ghost_pair_f *op)
{
	struct mp_r r = { p, e, 0 };
	const char *n, *v;
	size_t nl, vl;
	uint32_t cnt;

	if (p == NULL)
		return;
	cnt = mp_r_arr(&r);
	while (cnt-- > 0 && !r.err) {
		(void)mp_r_arr(&r);
		mp_r_str(&r, &n, &nl);
		mp_r_str(&r, &v, &vl);
		if (!r.err)
			op(hp, n, nl, v, vl);
	}
}

/*
 * Value of header line t (after the blanks) if its name is name, given
 * lower case with its ':' in n bytes; NULL otherwise.
 */
const char *
ghost_line_val(const txt *t, const char *name, size_t n)
{
	const char *v;

	if ((size_t)(t->e - t->b) < n || strncasecmp(t->b, name, n))
		return (NULL);
	for (v = t->b + n; v < t->e && (*v == ' ' || *v == '\t'); v++)
		continue;
	return (v);
}

/*
 * Does line t say https: "X-Ghost-Proto: https", as ghost.recv() sets it
 * for a trusted front? The one https rule of routing and the hash.
 */
int
ghost_is_https(const txt *t)
{
	const char *v;

	/* cheap rejects first: the hash asks for every X- line of a hit */
	if (t->b == NULL || t->e - t->b < 14 + 5 || (t->b[8] | 0x20) != 'p')
		return (0);
	v = ghost_line_val(t, "x-ghost-proto:", 14);
	return (v != NULL && !strcasecmp(v, "https"));
}

/* ---- the recorded headers ------------------------------------------ */

/*
 * Request headers a fetch's backend request does not carry as the client
 * sent them: every header varnishd filters from a fetch (HTTPH_R_FETCH in
 * its own table: conditionals, Range, If-Range, hop-by-hop headers, ...),
 * Accept-Encoding (forced to gzip, or unset, with http_gzip_support) and
 * X-Varnish (varnishd adds its own). ghost.recv() records the client's
 * lines of these as X-Ghost-Req-<name>; a backend-side route() reads the
 * recorded lines instead of the bereq's.
 */
#define GHOST_NREC	48
static struct {
	const char	*n;
	size_t		l;
} rec_tbl[GHOST_NREC];
static unsigned rec_n;
#define REC_BITS	7
static uint8_t rec_slot[1U << REC_BITS];	/* 1 + index in rec_tbl, 0 = free;
						   open addressing by name hash */

void
ghost_hdr_init(void)
{
	static const struct {
		const char	*n;
		unsigned	f;
	} tbl[] = {
#define HTTPH(s, e, f)	{ s, f },
#include "tbl/http_headers.h"
		{ "Accept-Encoding", HTTPH_R_FETCH },
		{ "X-Varnish", HTTPH_R_FETCH },
	};
	unsigned i, k, n = 0;

	if (rec_n != 0)
		return;
	for (i = 0; i < sizeof tbl / sizeof tbl[0]; i++) {
		if (!(tbl[i].f & HTTPH_R_FETCH))
			continue;
		assert(n < GHOST_NREC);
		rec_tbl[n].n = tbl[i].n;
		rec_tbl[n].l = strlen(tbl[i].n);
		k = ghost_name_hash(rec_tbl[n].n, rec_tbl[n].l, REC_BITS);
		while (rec_slot[k] != 0)
			k = (k + 1) & ((1U << REC_BITS) - 1);
		rec_slot[k] = (uint8_t)(n + 1);
		n++;
	}
	rec_n = n;
}

int
ghost_hdr_recorded(const char *n, size_t nl)
{
	unsigned k, i;

	if (nl == 0)
		return (0);
	for (k = ghost_name_hash(n, nl, REC_BITS); rec_slot[k] != 0;
	    k = (k + 1) & ((1U << REC_BITS) - 1)) {
		i = rec_slot[k] - 1U;
		if (rec_tbl[i].l == nl && !strncasecmp(rec_tbl[i].n, n, nl))
			return (1);
	}
	return (0);
}

/*
 * Layer 0: header line helpers (hdr.c). See ghost.h for the layers.
 */

#ifndef GHOST_HDR_H
#define GHOST_HDR_H

#include <endian.h>
#include <string.h>
#include <strings.h>

#define X_GHOST		"x-ghost-"
#define X_GHOST_LEN	8
#define X_GHOST_REQ	"x-ghost-req-"
#define X_GHOST_REQ_LEN	12

/*
 * Varnish 7.1 header names as "\<len>Name:": the length byte (name + 1) is
 * a signed char, so at most 126 bytes (route.MaxHeaderName in ghostd).
 */
#define GHOST_HDR_MAX	126
#define GHOST_HDR_BUF	(GHOST_HDR_MAX + 3)

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

/*
 * The four bytes at p as one word, in string order (GHOST_W4()): one
 * load and one comparison where four byte tests were. The caller knows
 * the four bytes are there: a header line at least that long, or a
 * method ("GET" and its NUL; a shorter one is followed by the URL in
 * the receive buffer, or is a workspace copy, 8-byte aligned).
 */
static inline uint32_t
ghost_ld4(const char *p)
{
	uint32_t w;

	memcpy(&w, p, sizeof w);
	return (le32toh(w));
}

#define GHOST_W4(a, b, c, d)	((uint32_t)(uint8_t)(a) | \
	(uint32_t)(uint8_t)(b) << 8 | (uint32_t)(uint8_t)(c) << 16 | \
	(uint32_t)(uint8_t)(d) << 24)

int ghost_hdr_fmt(char *buf, size_t bl, const char *name, size_t nl);

/* What to do with one [name, value] pair (ghost_hdr_set, say). */
typedef void ghost_pair_f(struct http *, const char *n, size_t nl,
    const char *v, size_t vl);
void ghost_hdr_pairs(struct http *, const uint8_t *p, const uint8_t *e,
    ghost_pair_f *op);

/*
 * Replace every line of header n with one "n: v". Inline, so that the
 * files built without varnishd (test/cshim) need not link its http_*.
 */
static inline void
ghost_hdr_set(struct http *hp, const char *n, size_t nl, const char *v,
    size_t vl)
{
	char hdr[GHOST_HDR_BUF];

	if (ghost_hdr_fmt(hdr, sizeof hdr, n, nl))
		return;
	http_Unset(hp, hdr);
	http_PrintfHeader(hp, "%.*s: %.*s", (int)nl, n, (int)vl, v);
}
/*
 * Remove every line (from line from on) for which drop() is true, in one
 * pass, each logged
 * as unset the way http_Unset() does. Inline, so that a caller's drop()
 * is inlined too (ghost.deliver() tests every response line of every
 * cache hit).
 */
static inline void
ghost_strip_from(struct http *hp, unsigned from, int (*drop)(const txt *))
{
	unsigned u, w;

	CHECK_OBJ_NOTNULL(hp, HTTP_MAGIC);
	for (u = w = from; u < hp->nhd; u++) {
		if (hp->hd[u].b != NULL && drop(&hp->hd[u])) {
			if (hp->vsl != NULL)
				VSLbt(hp->vsl, (enum VSL_tag_e)(hp->logtag +
				    HTTP_HDR_UNSET - HTTP_HDR_METHOD),
				    hp->hd[u]);
			continue;
		}
		if (w != u) {
			hp->hd[w] = hp->hd[u];
			hp->hdf[w] = hp->hdf[u];
		}
		w++;
	}
	hp->nhd = (uint16_t)w;
}

static inline void
ghost_strip_if(struct http *hp, int (*drop)(const txt *))
{
	ghost_strip_from(hp, HTTP_HDR_FIRST, drop);
}

/*
 * Is header line t one of ours (X-Ghost-*, any case)? Inline: every
 * request line is tested by recv and by the decision's inputs, cache hits
 * included.
 */
static inline int
ghost_is_internal(const txt *t)
{
	return (t->b != NULL && (size_t)(t->e - t->b) >= X_GHOST_LEN &&
	    (t->b[0] | 0x20) == 'x' && t->b[1] == '-' &&
	    (t->b[2] | 0x20) == 'g' &&
	    strncasecmp(t->b, X_GHOST, X_GHOST_LEN) == 0);
}
const char *ghost_line_val(const txt *, const char *name, size_t n);
int ghost_is_https(const txt *);
void ghost_hdr_init(void);
int ghost_hdr_recorded(const char *n, size_t nl);

#endif /* GHOST_HDR_H */

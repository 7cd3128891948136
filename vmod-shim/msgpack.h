/*
 * Minimal msgpack codec for the ghostd wire protocol (docs/protocol.md).
 *
 * Writer: appends into a caller-owned buffer; overflow sets ->err and
 * further writes are ignored (the caller sizes the buffer first).
 * Reader: zero copy (strings point into the input), no malloc, no
 * recursion: mp_skip() walks nested values with a pending-item counter
 * bounded by MP_MAX_PENDING.
 *
 * Only what the protocol needs: nil, bool, ints, str, bin,
 * array, map, float (skipped), ext (skipped).
 */

#ifndef GHOST_MSGPACK_H
#define GHOST_MSGPACK_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define MP_MAX_PENDING	(1U << 20)

struct mp_w {
	uint8_t		*p;
	uint8_t		*end;
	int		err;
};

struct mp_r {
	const uint8_t	*p;
	const uint8_t	*end;
	int		err;
};

enum mp_type {
	MP_NONE = 0, MP_NIL, MP_BOOL, MP_INT, MP_STR, MP_ARR, MP_MAP, MP_OTHER
};

/* ---- writer ------------------------------------------------------- */

static inline void
mp_put(struct mp_w *w, const void *b, size_t l)
{
	if (w->err || (size_t)(w->end - w->p) < l) {
		w->err = 1;
		return;
	}
	memcpy(w->p, b, l);
	w->p += l;
}

static inline void
mp_put_be(struct mp_w *w, uint8_t tag, uint64_t v, unsigned n)
{
	uint8_t b[9];
	unsigned i;

	b[0] = tag;
	for (i = 0; i < n; i++)
		b[1 + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	mp_put(w, b, n + 1);
}

static inline void
mp_w_nil(struct mp_w *w)
{
	uint8_t b = 0xc0;
	mp_put(w, &b, 1);
}

static inline void
mp_w_bool(struct mp_w *w, int v)
{
	uint8_t b = v ? 0xc3 : 0xc2;
	mp_put(w, &b, 1);
}

static inline void
mp_w_uint(struct mp_w *w, uint64_t v)
{
	uint8_t b;

	if (v < 128) {
		b = (uint8_t)v;
		mp_put(w, &b, 1);
	} else if (v <= 0xff)
		mp_put_be(w, 0xcc, v, 1);
	else if (v <= 0xffff)
		mp_put_be(w, 0xcd, v, 2);
	else if (v <= 0xffffffffULL)
		mp_put_be(w, 0xce, v, 4);
	else
		mp_put_be(w, 0xcf, v, 8);
}

static inline void
mp_w_str(struct mp_w *w, const char *s, size_t l)
{
	uint8_t b;

	if (l < 32) {
		b = (uint8_t)(0xa0 | l);
		mp_put(w, &b, 1);
	} else if (l <= 0xff)
		mp_put_be(w, 0xd9, l, 1);
	else if (l <= 0xffff)
		mp_put_be(w, 0xda, l, 2);
	else
		mp_put_be(w, 0xdb, l, 4);
	if (l > 0)
		mp_put(w, s, l);
}

static inline void
mp_w_cstr(struct mp_w *w, const char *s)
{
	mp_w_str(w, s, strlen(s));
}

/* A string, or nil for NULL (absent). */
static inline void
mp_w_cstr_nil(struct mp_w *w, const char *s)
{
	if (s != NULL)
		mp_w_cstr(w, s);
	else
		mp_w_nil(w);
}

static inline void
mp_w_arr(struct mp_w *w, uint32_t n)
{
	uint8_t b;

	if (n < 16) {
		b = (uint8_t)(0x90 | n);
		mp_put(w, &b, 1);
	} else if (n <= 0xffff)
		mp_put_be(w, 0xdc, n, 2);
	else
		mp_put_be(w, 0xdd, n, 4);
}

static inline void
mp_w_map(struct mp_w *w, uint32_t n)
{
	uint8_t b;

	if (n < 16) {
		b = (uint8_t)(0x80 | n);
		mp_put(w, &b, 1);
	} else if (n <= 0xffff)
		mp_put_be(w, 0xde, n, 2);
	else
		mp_put_be(w, 0xdf, n, 4);
}

/* Upper bound of the encoded size of a string of length l. */
#define MP_STR_MAX(l)	((size_t)(l) + 5)

/* ---- reader ------------------------------------------------------- */

static inline uint64_t
mp_get_be(struct mp_r *r, unsigned n)
{
	uint64_t v = 0;
	unsigned i;

	if (r->err || (size_t)(r->end - r->p) < n) {
		r->err = 1;
		return (0);
	}
	for (i = 0; i < n; i++)
		v = (v << 8) | r->p[i];
	r->p += n;
	return (v);
}

static inline uint8_t
mp_byte(struct mp_r *r)
{
	if (r->err || r->p >= r->end) {
		r->err = 1;
		return (0xc1);	/* never used in msgpack */
	}
	return (*r->p++);
}

/* Type of the next value, without consuming it. */
static inline enum mp_type
mp_peek(const struct mp_r *r)
{
	uint8_t b;

	if (r->err || r->p >= r->end)
		return (MP_NONE);
	b = *r->p;
	if (b <= 0x7f || b >= 0xe0)
		return (MP_INT);
	if (b <= 0x8f)
		return (MP_MAP);
	if (b <= 0x9f)
		return (MP_ARR);
	if (b <= 0xbf)
		return (MP_STR);
	switch (b) {
	case 0xc0: return (MP_NIL);
	case 0xc2: case 0xc3: return (MP_BOOL);
	case 0xcc: case 0xcd: case 0xce: case 0xcf:
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: return (MP_INT);
	case 0xd9: case 0xda: case 0xdb: return (MP_STR);
	case 0xdc: case 0xdd: return (MP_ARR);
	case 0xde: case 0xdf: return (MP_MAP);
	default: return (MP_OTHER);
	}
}

/* Consume a nil if one is next; returns 1 if it was a nil. */
static inline int
mp_r_nil(struct mp_r *r)
{
	if (mp_peek(r) != MP_NIL)
		return (0);
	r->p++;
	return (1);
}

static inline int64_t
mp_r_int(struct mp_r *r)
{
	uint8_t b = mp_byte(r);
	uint64_t u;

	if (b <= 0x7f)
		return (b);
	if (b >= 0xe0)
		return ((int8_t)b);
	switch (b) {
	case 0xcc: return ((int64_t)mp_get_be(r, 1));
	case 0xcd: return ((int64_t)mp_get_be(r, 2));
	case 0xce: return ((int64_t)mp_get_be(r, 4));
	case 0xcf:
		u = mp_get_be(r, 8);
		if (u > INT64_MAX)
			r->err = 1;
		return ((int64_t)u);
	case 0xd0: return ((int8_t)mp_get_be(r, 1));
	case 0xd1: return ((int16_t)mp_get_be(r, 2));
	case 0xd2: return ((int32_t)mp_get_be(r, 4));
	case 0xd3: return ((int64_t)mp_get_be(r, 8));
	default:
		r->err = 1;
		return (0);
	}
}

static inline uint64_t
mp_r_uint(struct mp_r *r)
{
	uint8_t b;

	if (r->err || r->p >= r->end) {
		r->err = 1;
		return (0);
	}
	b = *r->p;
	if (b == 0xcf) {
		r->p++;
		return (mp_get_be(r, 8));
	}
	int64_t v = mp_r_int(r);
	if (v < 0)
		r->err = 1;
	return ((uint64_t)v);
}

static inline int
mp_r_bool(struct mp_r *r)
{
	uint8_t b = mp_byte(r);

	if (b == 0xc3)
		return (1);
	if (b != 0xc2)
		r->err = 1;
	return (0);
}

/* The next n bytes of the input (*l = n), or NULL (*l = 0) if short. */
static inline const uint8_t *
mp_take(struct mp_r *r, uint64_t n, size_t *l)
{
	const uint8_t *p = r->p;

	*l = 0;
	if (r->err || (uint64_t)(r->end - r->p) < n) {
		r->err = 1;
		return (NULL);
	}
	*l = (size_t)n;
	r->p += n;
	return (p);
}

/* String: *s points into the input, not NUL terminated. */
static inline void
mp_r_str(struct mp_r *r, const char **s, size_t *l)
{
	uint8_t b = mp_byte(r);
	uint64_t n;

	*s = "";
	*l = 0;
	if (b >= 0xa0 && b <= 0xbf)
		n = b & 0x1f;
	else if (b == 0xd9)
		n = mp_get_be(r, 1);
	else if (b == 0xda)
		n = mp_get_be(r, 2);
	else if (b == 0xdb)
		n = mp_get_be(r, 4);
	else {
		r->err = 1;
		return;
	}
	*s = (const char *)mp_take(r, n, l);
	if (*s == NULL)
		*s = "";
}

/* Bin (e.g. an encoded ring): *b points into the input. */
static inline void
mp_r_bin(struct mp_r *r, const uint8_t **b, size_t *l)
{
	uint8_t t = mp_byte(r);
	uint64_t n;

	*b = NULL;
	*l = 0;
	if (t == 0xc4)
		n = mp_get_be(r, 1);
	else if (t == 0xc5)
		n = mp_get_be(r, 2);
	else if (t == 0xc6)
		n = mp_get_be(r, 4);
	else {
		r->err = 1;
		return;
	}
	*b = mp_take(r, n, l);
}

static inline uint32_t
mp_r_arr(struct mp_r *r)
{
	uint8_t b = mp_byte(r);

	if (b >= 0x90 && b <= 0x9f)
		return (b & 0x0f);
	if (b == 0xdc)
		return ((uint32_t)mp_get_be(r, 2));
	if (b == 0xdd)
		return ((uint32_t)mp_get_be(r, 4));
	r->err = 1;
	return (0);
}

static inline uint32_t
mp_r_map(struct mp_r *r)
{
	uint8_t b = mp_byte(r);

	if (b >= 0x80 && b <= 0x8f)
		return (b & 0x0f);
	if (b == 0xde)
		return ((uint32_t)mp_get_be(r, 2));
	if (b == 0xdf)
		return ((uint32_t)mp_get_be(r, 4));
	r->err = 1;
	return (0);
}

static inline void
mp_advance(struct mp_r *r, uint64_t n)
{
	if (r->err || (uint64_t)(r->end - r->p) < n) {
		r->err = 1;
		return;
	}
	r->p += n;
}

/* Skip one complete value, however nested, without recursion. */
static inline void
mp_skip(struct mp_r *r)
{
	uint64_t pending = 1;
	uint8_t b;

	while (pending > 0 && !r->err) {
		pending--;
		b = mp_byte(r);
		if (r->err)
			return;
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 ||
		    b == 0xc3)
			continue;
		if (b <= 0x8f) {
			pending += 2U * (b & 0x0fU);
		} else if (b <= 0x9f) {
			pending += b & 0x0fU;
		} else if (b <= 0xbf) {
			mp_advance(r, b & 0x1fU);
		} else {
			switch (b) {
			case 0xc4: case 0xd9:
				mp_advance(r, mp_get_be(r, 1)); break;
			case 0xc5: case 0xda:
				mp_advance(r, mp_get_be(r, 2)); break;
			case 0xc6: case 0xdb:
				mp_advance(r, mp_get_be(r, 4)); break;
			case 0xcc: case 0xd0: mp_advance(r, 1); break;
			case 0xcd: case 0xd1: mp_advance(r, 2); break;
			case 0xca: case 0xce: case 0xd2: mp_advance(r, 4); break;
			case 0xcb: case 0xcf: case 0xd3: mp_advance(r, 8); break;
			case 0xd4: mp_advance(r, 2); break;
			case 0xd5: mp_advance(r, 3); break;
			case 0xd6: mp_advance(r, 5); break;
			case 0xd7: mp_advance(r, 9); break;
			case 0xd8: mp_advance(r, 17); break;
			case 0xc7: mp_advance(r, mp_get_be(r, 1) + 1); break;
			case 0xc8: mp_advance(r, mp_get_be(r, 2) + 1); break;
			case 0xc9: mp_advance(r, mp_get_be(r, 4) + 1); break;
			case 0xdc: pending += mp_get_be(r, 2); break;
			case 0xdd: pending += mp_get_be(r, 4); break;
			case 0xde: pending += 2 * mp_get_be(r, 2); break;
			case 0xdf: pending += 2 * mp_get_be(r, 4); break;
			default: r->err = 1; return;
			}
		}
		/* Every pending item needs at least one byte of input. */
		if (pending > MP_MAX_PENDING ||
		    pending > (uint64_t)(r->end - r->p))
			r->err = 1;
	}
}

/* Compare a decoded (non NUL terminated) string with a C string. */
static inline int
mp_streq(const char *s, size_t l, const char *c)
{
	return (strlen(c) == l && memcmp(s, c, l) == 0);
}

/*
 * An answer's groups ("g": [[weight, [[address, port], ...]], ...],
 * docs/protocol.md) when they hold one group of one endpoint, with a
 * weight: that endpoint, 0; else -1 (*addr, *al and *port may then be
 * set all the same).
 */
static inline int
mp_one_endpoint(const uint8_t *g, const uint8_t *g_end, const char **addr,
    size_t *al, unsigned *port)
{
	struct mp_r r = { g, g_end, 0 };

	if (g == NULL || mp_r_arr(&r) != 1 || mp_r_arr(&r) != 2 ||
	    mp_r_uint(&r) == 0 || mp_r_arr(&r) != 1 || mp_r_arr(&r) != 2)
		return (-1);
	mp_r_str(&r, addr, al);
	*port = (unsigned)mp_r_int(&r);
	return (!r.err && r.p == g_end ? 0 : -1);
}

/*
 * A map of string keys (every message of the protocol, and the maps in
 * them): f is called for each key whose value is not nil (nil means
 * absent) and reads the value, or returns 0 to have it skipped. Stops at
 * the first error (r->err).
 */
typedef int mp_field_f(struct mp_r *r, const char *k, size_t kl, void *priv);

static inline void
mp_r_fields(struct mp_r *r, mp_field_f *f, void *priv)
{
	const char *k;
	size_t kl;
	uint32_t n;

	n = mp_r_map(r);
	while (n-- > 0 && !r->err) {
		mp_r_str(r, &k, &kl);
		if (r->err)
			return;
		if (mp_r_nil(r))
			continue;
		if (!f(r, k, kl, priv))
			mp_skip(r);
	}
}

#endif /* GHOST_MSGPACK_H */

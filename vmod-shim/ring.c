/*
 * Layer 0: lookup in a consistent-hash ring that ghostd built
 * (route/ring: the package documents the ring and its encoding) and the
 * key hash both sides compute. route/ring/testdata/ring_vectors.txt
 * holds the vectors Go generates; test/cshim/ring_test.c checks this
 * file against them. Needs nothing of varnishd: the C test links it
 * alone.
 */

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ring.h"

uint64_t
ghost_ring_hash(const void *b, size_t l)
{
	const uint8_t *p = b;
	uint64_t h = 14695981039346656037ULL;

	while (l-- > 0) {
		h ^= *p++;
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (h);
}

static inline uint64_t
be64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return (be64toh(v));
}

static inline uint32_t
be32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return (be32toh(v));
}

int
ghost_ring_check(const uint8_t *pts, size_t len, uint32_t nmembers)
{
	size_t i, n;
	uint64_t prev = 0, h;

	if (pts == NULL || len == 0 || len % GHOST_RING_POINT != 0 ||
	    nmembers == 0 || nmembers > GHOST_RING_MAX_MEMBERS)
		return (-1);
	n = len / GHOST_RING_POINT;
	for (i = 0; i < n; i++) {
		h = be64(pts + i * GHOST_RING_POINT);
		if ((i > 0 && h < prev) ||
		    be32(pts + i * GHOST_RING_POINT + 8) >= nmembers)
			return (-1);
		prev = h;
	}
	return (0);
}

int64_t
ghost_ring_walk(const uint8_t *pts, size_t len, uint32_t nmembers,
    uint64_t h, ghost_ring_ok_f *ok, void *priv)
{
	uint64_t asked[GHOST_RING_MAX_MEMBERS / 64];
	size_t n, lo, hi, mid, k, i;
	uint32_t m;

	if (pts == NULL || len < GHOST_RING_POINT)
		return (-1);
	n = len / GHOST_RING_POINT;
	/* the first point at or after h; past the last: the first */
	lo = 0;
	hi = n;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (be64(pts + mid * GHOST_RING_POINT) < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == n)
		lo = 0;
	/* the owner: most walks end here, without the bitmap */
	m = be32(pts + lo * GHOST_RING_POINT + 8);
	if (m >= nmembers || m >= GHOST_RING_MAX_MEMBERS)
		return (-1);
	if (ok == NULL || ok(priv, m))
		return (m);
	memset(asked, 0, sizeof asked);
	asked[m / 64] |= 1ULL << (m % 64);
	for (k = 1, i = lo + 1 == n ? 0 : lo + 1; k < n;
	    k++, i = i + 1 == n ? 0 : i + 1) {
		m = be32(pts + i * GHOST_RING_POINT + 8);
		if (m >= nmembers || m >= GHOST_RING_MAX_MEMBERS)
			return (-1);
		if (asked[m / 64] & (1ULL << (m % 64)))
			continue;
		asked[m / 64] |= 1ULL << (m % 64);
		if (ok(priv, m))
			return (m);
	}
	return (-1);
}

/*
 * Layer 0: the consistent-hash ring's lookup (ring.c). See ghost.h.
 */

#ifndef GHOST_RING_H
#define GHOST_RING_H

#include <stddef.h>
#include <stdint.h>

/* route/ring: PointSize, MaxMembers */
#define GHOST_RING_POINT	12
#define GHOST_RING_MAX_MEMBERS	4096

/* ring.Hash(b): the key hash (FNV-1a 64, MurmurHash3's finaliser). */
uint64_t ghost_ring_hash(const void *b, size_t l);

/*
 * Is [pts, pts + len) a ring ring.Encode() could have written for
 * nmembers members (whole points, positions ascending, member indexes
 * below nmembers <= GHOST_RING_MAX_MEMBERS, at least one point)? 0 yes,
 * -1 no. Check once when the ring arrives; ghost_ring_walk() trusts it.
 */
int ghost_ring_check(const uint8_t *pts, size_t len, uint32_t nmembers);

/*
 * Accept member m? Nonzero yes. The walk asks each member at most once.
 */
typedef int ghost_ring_ok_f(void *priv, uint32_t m);

/*
 * ring.Walk(h, ok) of a checked ring of nmembers members: the first
 * member, going round the ring from the first point at or after h, that
 * ok accepts (ok NULL accepts all: ring.Lookup(h)); -1 when none.
 */
int64_t ghost_ring_walk(const uint8_t *pts, size_t len, uint32_t nmembers,
    uint64_t h, ghost_ring_ok_f *ok, void *priv);

#endif /* GHOST_RING_H */

/*
 * Layer 0: query string parameters (query.c). See ghost.h.
 */

#ifndef GHOST_QUERY_H
#define GHOST_QUERY_H

/*
 * The value of the first "name=value" pair of the query q (ql bytes,
 * without its '?') whose name is name, as route.queryValue finds it:
 * pairs split at '&', a pair without '=' has no name, nothing decoded.
 * 1 when found (*v, *vl set), else 0.
 */
int ghost_query_param(const char *q, size_t ql, const char *name, size_t nl,
    const char **v, size_t *vl);

#endif /* GHOST_QUERY_H */

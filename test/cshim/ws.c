/*
 * A task workspace for the C tests, with the semantics of varnishd's
 * cache_ws.c that the shim relies on (the shim is linked into varnishd,
 * these tests are not): allocations from the front, one reservation of
 * all that is left at a time, released by the bytes kept; snapshots to
 * reset to.
 */

#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cache/cache.h"

void
WS_Init(struct ws *ws, const char *id, void *space, unsigned len)
{
	memset(ws, 0, sizeof *ws);
	ws->magic = WS_MAGIC;
	snprintf(ws->id, sizeof ws->id, "%s", id);
	ws->s = ws->f = space;
	ws->e = ws->s + len;
}

void
WS_Assert(const struct ws *ws)
{
	CHECK_OBJ_NOTNULL(ws, WS_MAGIC);
	assert(ws->s <= ws->f && ws->f <= ws->e);
	assert(ws->r == NULL || (ws->f <= ws->r && ws->r <= ws->e));
}

unsigned
WS_ReserveAll(struct ws *ws)
{
	WS_Assert(ws);
	AZ(ws->r);
	ws->r = ws->e;
	return ((unsigned)(ws->r - ws->f));
}

void
WS_Release(struct ws *ws, unsigned bytes)
{
	WS_Assert(ws);
	AN(ws->r);
	assert(bytes <= (unsigned)(ws->r - ws->f));
	ws->f += bytes;
	ws->r = NULL;
}

uintptr_t
WS_Snapshot(struct ws *ws)
{
	WS_Assert(ws);
	AZ(ws->r);
	return ((uintptr_t)ws->f);
}

void
WS_Reset(struct ws *ws, uintptr_t pp)
{
	char *p = (char *)pp;

	WS_Assert(ws);
	AZ(ws->r);
	assert(p >= ws->s && p <= ws->f);
	ws->f = p;
}

void *
WS_Alloc(struct ws *ws, unsigned bytes)
{
	char *p;

	WS_Assert(ws);
	AZ(ws->r);
	if (bytes > (unsigned)(ws->e - ws->f))
		return (NULL);
	p = ws->f;
	ws->f += bytes;
	return (p);
}

void *
WS_Copy(struct ws *ws, const void *str, int len)
{
	char *p;

	if (len < 0)
		len = (int)strlen(str) + 1;
	p = WS_Alloc(ws, (unsigned)len);
	if (p != NULL)
		memcpy(p, str, (size_t)len);
	return (p);
}

const char *
WS_Printf(struct ws *ws, const char *fmt, ...)
{
	va_list ap;
	unsigned u;
	int n;
	char *p;

	u = WS_ReserveAll(ws);
	p = ws->f;
	va_start(ap, fmt);
	n = vsnprintf(p, u, fmt, ap);
	va_end(ap);
	if (n < 0 || (unsigned)n >= u) {
		WS_Release(ws, 0);
		return (NULL);
	}
	WS_Release(ws, (unsigned)n + 1);
	return (p);
}

/*
 * Layer 1: connections to ghostd: a mutex-protected LIFO pool per VCL, connect on
 * demand with the hello handshake, length-framed msgpack round trips with
 * a bound on the total time, one retry when a pooled connection turns out
 * to be dead (never after a timeout).
 */

#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "cache/cache.h"
#include "vtim.h"

#include "msgpack.h"
#include "ghost.h"
#include "conn.h"

#define CONN_RBUF_INIT	(16U * 1024U)
#define CONN_WBUF_INIT	(8U * 1024U)
#define CONN_BUF_MAX	(GHOST_MAX_FRAME + 4U)

struct ghost_conn {
	unsigned		magic;
#define GHOST_CONN_MAGIC	0x3c0a61e5
	int			fd;
	double			cur_tmo;
	uint8_t			*wbuf;
	size_t			wcap;
	uint8_t			*rbuf;
	size_t			rcap;
};

enum xfer_res { XFER_OK = 0, XFER_FAIL = -1, XFER_RETRY = -2 };

static void
conn_close(struct ghost_conn *c)
{
	CHECK_OBJ_NOTNULL(c, GHOST_CONN_MAGIC);
	if (c->fd >= 0)
		(void)close(c->fd);
	free(c->wbuf);
	free(c->rbuf);
	FREE_OBJ(c);
}

static int
buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	size_t n;
	uint8_t *p;

	if (need <= *cap)
		return (0);
	if (need > CONN_BUF_MAX)
		return (-1);
	n = *cap * 2;
	if (n < need)
		n = need;
	if (n > CONN_BUF_MAX)
		n = CONN_BUF_MAX;
	p = realloc(*buf, n);
	if (p == NULL)
		return (-1);
	*buf = p;
	*cap = n;
	return (0);
}

static int
conn_set_tmo(struct ghost_conn *c, double tmo)
{
	struct timeval tv;

	if (tmo == c->cur_tmo)
		return (0);
	if (tmo < 0.001)
		tmo = 0.001;
	tv.tv_sec = (time_t)tmo;
	tv.tv_usec = (suseconds_t)((tmo - (double)tv.tv_sec) * 1e6);
	if (setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
	    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv))
		return (-1);
	c->cur_tmo = tmo;
	return (0);
}

/* Make the socket timeouts no longer than what is left of the budget. */
static int
conn_budget(struct ghost_conn *c, double deadline, double tmo, char *why,
    size_t wl)
{
	double left = deadline - VTIM_mono();

	if (left <= 0) {
		snprintf(why, wl, "timeout after %.0f ms", tmo * 1e3);
		return (-1);
	}
	if (left < c->cur_tmo && conn_set_tmo(c, left)) {
		snprintf(why, wl, "setsockopt: %s", strerror(errno));
		return (-1);
	}
	return (0);
}

/*
 * Send wbuf[0..len) and read one frame into rbuf. XFER_RETRY only when the
 * peer was gone before any byte of the answer arrived (EPIPE, ECONNRESET,
 * EOF); a timeout or a bad frame is XFER_FAIL.
 */
static enum xfer_res
conn_xfer(struct ghost_conn *c, size_t len, double deadline, double tmo,
    size_t *alen, char *why, size_t wl)
{
	size_t off = 0, got = 0, need = 4;
	ssize_t n;
	uint32_t flen;

	while (off < len) {
		if (conn_budget(c, deadline, tmo, why, wl))
			return (XFER_FAIL);
		n = send(c->fd, c->wbuf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			snprintf(why, wl, "timeout after %.0f ms (send)",
			    tmo * 1e3);
			return (XFER_FAIL);
		}
		if (n < 0) {
			snprintf(why, wl, "send: %s", strerror(errno));
			return ((errno == EPIPE || errno == ECONNRESET) ?
			    XFER_RETRY : XFER_FAIL);
		}
		off += (size_t)n;
	}
	while (got < need) {
		if (conn_budget(c, deadline, tmo, why, wl))
			return (XFER_FAIL);
		n = recv(c->fd, c->rbuf + got, c->rcap - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			snprintf(why, wl, "timeout after %.0f ms", tmo * 1e3);
			return (XFER_FAIL);
		}
		if (n < 0) {
			snprintf(why, wl, "recv: %s", strerror(errno));
			return ((errno == ECONNRESET && got == 0) ?
			    XFER_RETRY : XFER_FAIL);
		}
		if (n == 0) {
			snprintf(why, wl, "connection closed by ghostd");
			return (got == 0 ? XFER_RETRY : XFER_FAIL);
		}
		got += (size_t)n;
		if (need == 4 && got >= 4) {
			flen = ((uint32_t)c->rbuf[0] << 24) |
			    ((uint32_t)c->rbuf[1] << 16) |
			    ((uint32_t)c->rbuf[2] << 8) | c->rbuf[3];
			if (flen == 0 || flen > GHOST_MAX_FRAME) {
				snprintf(why, wl, "bad frame length %u", flen);
				return (XFER_FAIL);
			}
			need = 4 + (size_t)flen;
			if (buf_reserve(&c->rbuf, &c->rcap, need)) {
				snprintf(why, wl, "out of memory");
				return (XFER_FAIL);
			}
		}
		if (got > need) {
			snprintf(why, wl, "protocol desync (%zu extra bytes)",
			    got - need);
			return (XFER_FAIL);
		}
	}
	*alen = need - 4;
	return (XFER_OK);
}

static size_t
frame(struct ghost_conn *c, size_t body)
{
	c->wbuf[0] = (uint8_t)(body >> 24);
	c->wbuf[1] = (uint8_t)(body >> 16);
	c->wbuf[2] = (uint8_t)(body >> 8);
	c->wbuf[3] = (uint8_t)body;
	return (body + 4);
}

/* The fields of a hello answer. */
struct hello_ans {
	const char		*t, *msg;
	size_t			tl, ml;
	int64_t			v;
};

static int v_matchproto_(mp_field_f)
hello_field(struct mp_r *r, const char *k, size_t kl, void *priv)
{
	struct hello_ans *a = priv;

	if (mp_streq(k, kl, "t") && mp_peek(r) == MP_STR)
		mp_r_str(r, &a->t, &a->tl);
	else if (mp_streq(k, kl, "v") && mp_peek(r) == MP_INT)
		a->v = mp_r_int(r);
	else if (mp_streq(k, kl, "msg") && mp_peek(r) == MP_STR)
		mp_r_str(r, &a->msg, &a->ml);
	else
		return (0);
	return (1);
}

/* Check a hello answer: {"t":"hello","v":1,...} or {"t":"error",...}. */
static int
hello_check(const uint8_t *p, size_t l, char *why, size_t wl)
{
	struct mp_r r = { p, p + l, 0 };
	struct hello_ans a;

	memset(&a, 0, sizeof a);
	a.v = -1;
	mp_r_fields(&r, hello_field, &a);
	if (r.err || a.t == NULL) {
		snprintf(why, wl, "bad hello answer");
		return (-1);
	}
	if (mp_streq(a.t, a.tl, "error")) {
		snprintf(why, wl, "%.*s", (int)a.ml,
		    a.msg != NULL ? a.msg : "hello refused");
		return (-1);
	}
	if (!mp_streq(a.t, a.tl, "hello")) {
		snprintf(why, wl, "bad hello answer (t=%.*s)", (int)a.tl,
		    a.t);
		return (-1);
	}
	if (a.v != GHOST_PROTO_VERSION) {
		snprintf(why, wl, "protocol version mismatch: ghostd speaks "
		    "%jd, client speaks %d", (intmax_t)a.v,
		    GHOST_PROTO_VERSION);
		return (-1);
	}
	return (0);
}

static struct ghost_conn *
conn_open(const struct ghost_vcl *gv, double deadline, double tmo, char *why,
    size_t wl)
{
	struct ghost_conn *c;
	struct sockaddr_un sun;
	struct mp_w w;
	size_t alen;

	if (strlen(gv->sock) >= sizeof sun.sun_path) {
		snprintf(why, wl, "socket path too long");
		return (NULL);
	}
	ALLOC_OBJ(c, GHOST_CONN_MAGIC);
	if (c == NULL) {
		snprintf(why, wl, "out of memory");
		return (NULL);
	}
	c->fd = -1;
	c->wbuf = malloc(CONN_WBUF_INIT);
	c->rbuf = malloc(CONN_RBUF_INIT);
	if (c->wbuf == NULL || c->rbuf == NULL) {
		snprintf(why, wl, "out of memory");
		conn_close(c);
		return (NULL);
	}
	c->wcap = CONN_WBUF_INIT;
	c->rcap = CONN_RBUF_INIT;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(why, wl, "socket: %s", strerror(errno));
		conn_close(c);
		return (NULL);
	}
	if (conn_set_tmo(c, tmo) ||
	    conn_budget(c, deadline, tmo, why, wl)) {
		if (*why == '\0')
			snprintf(why, wl, "setsockopt: %s", strerror(errno));
		conn_close(c);
		return (NULL);
	}
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, gv->sock);
	if (connect(c->fd, (void *)&sun, sizeof sun) != 0) {
		if (errno == EAGAIN || errno == EINPROGRESS)
			snprintf(why, wl, "connect %s: timeout", gv->sock);
		else
			snprintf(why, wl, "connect %s: %s", gv->sock,
			    strerror(errno));
		conn_close(c);
		return (NULL);
	}
	w.p = c->wbuf + 4;
	w.end = c->wbuf + c->wcap;
	w.err = 0;
	mp_w_map(&w, 3);
	mp_w_cstr(&w, "t");
	mp_w_cstr(&w, "hello");
	mp_w_cstr(&w, "v");
	mp_w_uint(&w, GHOST_PROTO_VERSION);
	mp_w_cstr(&w, "client");
	mp_w_cstr(&w, GHOST_CLIENT);
	AZ(w.err);
	if (conn_xfer(c, frame(c, (size_t)(w.p - c->wbuf - 4)), deadline,
	    tmo, &alen, why, wl) != XFER_OK ||
	    hello_check(c->rbuf + 4, alen, why, wl)) {
		conn_close(c);
		return (NULL);
	}
	return (c);
}

static struct ghost_conn *
pool_pop(struct ghost_vcl *gv)
{
	struct ghost_conn *c = NULL;

	Lck_Lock(&gv->pool_mtx);
	if (gv->npool > 0)
		c = gv->pool[--gv->npool];
	Lck_Unlock(&gv->pool_mtx);
	return (c);
}

static void
pool_push(struct ghost_vcl *gv, struct ghost_conn *c)
{
	CHECK_OBJ_NOTNULL(c, GHOST_CONN_MAGIC);
	Lck_Lock(&gv->pool_mtx);
	if (gv->warm && gv->npool < GHOST_POOL_MAX) {
		gv->pool[gv->npool++] = c;
		c = NULL;
	}
	Lck_Unlock(&gv->pool_mtx);
	if (c != NULL)
		conn_close(c);
}

void
ghost_pool_flush(struct ghost_vcl *gv)
{
	struct ghost_conn *c[GHOST_POOL_MAX];
	unsigned n, i;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	Lck_Lock(&gv->pool_mtx);
	n = gv->npool;
	memcpy(c, gv->pool, n * sizeof c[0]);
	gv->npool = 0;
	Lck_Unlock(&gv->pool_mtx);
	for (i = 0; i < n; i++)
		conn_close(c[i]);
}

/*
 * One request, one answer. The answer is copied into ws (rt->ans) before
 * the connection goes back to the pool. Returns 0, or -1 with rt->why.
 */
int
ghost_roundtrip(struct ghost_vcl *gv, struct ws *ws, struct ghost_rt *rt)
{
	struct ghost_conn *c;
	struct mp_w w;
	double deadline;
	size_t alen;
	enum xfer_res xr;
	int attempt, pooled;

	CHECK_OBJ_NOTNULL(gv, GHOST_VCL_MAGIC);
	AN(ws);
	rt->why[0] = '\0';
	rt->ans = NULL;
	rt->ans_len = 0;
	deadline = VTIM_mono() + rt->timeout;
	for (attempt = 0; attempt < 2; attempt++) {
		c = NULL;
		if (!rt->fresh && attempt == 0)
			c = pool_pop(gv);
		pooled = (c != NULL);
		if (c == NULL) {
			c = conn_open(gv, deadline, rt->timeout, rt->why,
			    sizeof rt->why);
			if (c == NULL)
				return (-1);
		} else if (conn_set_tmo(c, rt->timeout)) {
			snprintf(rt->why, sizeof rt->why, "setsockopt: %s",
			    strerror(errno));
			conn_close(c);
			return (-1);
		}
		if (buf_reserve(&c->wbuf, &c->wcap, rt->enc_max + 4)) {
			snprintf(rt->why, sizeof rt->why,
			    "request too large (%zu bytes)", rt->enc_max);
			conn_close(c);
			return (-1);
		}
		w.p = c->wbuf + 4;
		w.end = c->wbuf + c->wcap;
		w.err = 0;
		rt->enc(&w, rt->arg);
		if (w.err) {
			snprintf(rt->why, sizeof rt->why,
			    "request encoding overflow");
			conn_close(c);
			return (-1);
		}
		xr = conn_xfer(c, frame(c, (size_t)(w.p - c->wbuf - 4)),
		    deadline, rt->timeout, &alen, rt->why, sizeof rt->why);
		if (xr == XFER_OK) {
			/*
			 * Not WS_Copy(): an answer that does not fit must not
			 * mark the workspace overflowed, so that VCL can still
			 * answer with the reason.
			 */
			if (WS_ReserveAll(ws) >= alen) {
				memcpy(WS_Reservation(ws), c->rbuf + 4, alen);
				rt->ans = WS_Reservation(ws);
				WS_Release(ws, (unsigned)alen);
			} else
				WS_Release(ws, 0);
			rt->ans_len = alen;
			pool_push(gv, c);
			if (rt->ans == NULL) {
				snprintf(rt->why, sizeof rt->why,
				    "workspace overflow (%zu byte answer)",
				    alen);
				return (-1);
			}
			return (0);
		}
		conn_close(c);
		if (xr != XFER_RETRY || !pooled)
			return (-1);
	}
	return (-1);
}

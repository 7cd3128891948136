/*
 * Layer 2: a decision applied to HTTP headers, and the synthetic
 * responses (apply.c). See ghost.h.
 */

#ifndef GHOST_APPLY_H
#define GHOST_APPLY_H

void ghost_strip_internal(struct http *);
void ghost_merge_lines(struct http *);
void ghost_recv_scan(struct http *, int *xfp, int *ws, int rec_ae);
int ghost_recv_name_before(const struct http *, unsigned u, const char *b,
    size_t nl);
int ghost_recv_xfp_https(const txt *);
int ghost_recv_upgrade_ws(const txt *);
int ghost_recv_is_ae(const txt *);
void ghost_recv_add_ae(struct http *, const txt *ae);
void ghost_record(struct http *, const struct http *h0, int hdrs,
    int get_fetch);
void ghost_apply_req(VRT_CTX, struct http *, const struct ghost_ans *);
void ghost_apply_resp(VRT_CTX, struct http *, const struct ghost_ans *);

/*
 * Whether ghost_apply_resp() has anything to do for a: response filters,
 * cors, Vary merges, "not cacheable". Inline: most routes have none, and
 * a stored object then runs none of that code.
 */
static inline int
ghost_resp_ops(const struct ghost_ans *a)
{
	/* rss, rsa, rsr, has_cr, deps.h, cr_v or nc (answer.c) */
	return ((a->ops & GHOST_OPS_RESP) != 0);
}

void ghost_synth(VRT_CTX, struct http *, const struct ghost_task *);
const char *ghost_reason(VRT_CTX, const struct ghost_task *);

#endif /* GHOST_APPLY_H */

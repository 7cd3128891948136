/*
 * Layer 1: decoding of a route answer (answer.c). See ghost.h.
 */

#ifndef GHOST_ANSWER_H
#define GHOST_ANSWER_H

int ghost_ans_decode(const uint8_t *, size_t, struct ghost_ans *,
    char *why, size_t whylen);

/* mp_field_f of a probe map "hp" into a struct ghost_hp (strings point
 * into the decoded buffer) */
int ghost_probe_field(struct mp_r *, const char *k, size_t kl, void *priv);

/*
 * Whether ghost_apply_req() has anything to do for a: request filters, a
 * URL rewrite, a Host rewrite. Inline: most routes have none, and their
 * fetches then run none of that code. Here (layer 1): the decoder sums
 * it up in GHOST_OPS_PLAIN too.
 */
static inline int
ghost_req_ops(const struct ghost_ans *a)
{
	return (a->rqs != NULL || a->rqa != NULL || a->rqr != NULL ||
	    (a->path != NULL && a->path_len > 0) ||
	    (a->hst != NULL && a->hst_len > 0));
}

#endif /* GHOST_ANSWER_H */

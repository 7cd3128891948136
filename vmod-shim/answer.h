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

#endif /* GHOST_ANSWER_H */

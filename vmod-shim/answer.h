/*
 * Layer 1: decoding of a route answer (answer.c). See ghost.h.
 */

#ifndef GHOST_ANSWER_H
#define GHOST_ANSWER_H

int ghost_ans_decode(const uint8_t *, size_t, struct ghost_ans *,
    char *why, size_t whylen);

#endif /* GHOST_ANSWER_H */
